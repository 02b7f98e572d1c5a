"""What actors are given and what they own: the run's frozen ``Deps``, each actor's kept state across its
restarts, and the typed views ``health`` reads, over a real supervision tree of small actors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from actors.feed.flow import FlowControl
from messages.pipeline import MarketBatch
from messages.system import Query
from settings import load_settings
from supervisors.actor import ChildContext, SupervisedActor
from supervisors.clock import LiveClock
from supervisors.deps import Deps
from supervisors.health import ActorStats, Counters
from supervisors.owned import FeedView, Owned, RiskView
from supervisors.registry import Registry
from supervisors.supervisor import ChildSpec, SupervisorSpec
from supervisors.system import System
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(30)


@dataclasses.dataclass
class Tally:
    batches: int = 0


class Counting(SupervisedActor):
    """Counts the batches it handled in state it keeps across its restarts; answers a query with the count."""

    def setup(self) -> None:
        self.tally = self.ctx.keep(Tally, Tally)

    def handle(self, message: Any) -> Any:
        if isinstance(message, MarketBatch):
            self.tally.batches += 1
        elif isinstance(message, Query):
            return self.tally.batches
        return None


class Showing(SupervisedActor):
    """Shows whatever view it is sent."""

    def handle(self, message: Any) -> Any:
        self.ctx.show(message)
        return True


def start(tree: SupervisorSpec) -> System:
    settings = load_settings(env={}, overrides={"supervisor.heartbeat_s": 0.05})
    system = System(settings, "backtest", tree=tree)
    system.start()
    return system


@pytest.fixture
def counting() -> Iterator[System]:
    system = start(SupervisorSpec("root", "one_for_one", (ChildSpec("a", Counting), ChildSpec("b", Counting))))
    yield system
    system.stop()


@pytest.fixture
def showing() -> Iterator[System]:
    system = start(SupervisorSpec("root", "one_for_one", (ChildSpec("feed", Showing), ChildSpec("executor", Showing))))
    yield system
    system.stop()


def test_the_deps_of_a_run_default_to_the_settings_and_mode_and_cannot_change() -> None:
    settings = load_settings(env={}, overrides={"store.db": "x.db", "feed.symbols": ["BTCUSD"]})
    live = Deps.of(settings, "live")
    assert (live.run, live.db_path, live.symbols, live.events, live.ingress) == ("live", "x.db", ("BTCUSD",), True, None)
    backtest = Deps.of(settings, "backtest", symbols=("ETHUSD",), db_path="y.db")
    assert (backtest.run, backtest.db_path, backtest.symbols, backtest.events) == ("backtest", "y.db", ("ETHUSD",), False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        backtest.run = "live"  # type: ignore[misc]
    with pytest.raises(LookupError, match="'replay'"):
        backtest.need("replay")
    with pytest.raises(TypeError):
        Deps.of(settings, "live", resources={})


def test_the_system_gives_every_actor_the_same_deps_with_itself_as_view(counting: System) -> None:
    assert counting.deps.view is counting and counting.deps.run == "backtest"
    assert counting.make_context("a", ActorStats("a"), lambda failure: None, 9).deps is counting.deps


def test_kept_state_outlives_a_restart_and_belongs_to_its_actor_alone(counting: System) -> None:
    for name, batches in (("a", 2), ("b", 1)):
        for _ in range(batches):
            counting.registry.tell(name, MarketBatch(1, 0))
    assert counting.query("a", "tally") == 2
    counting.crash("a")
    wait_until(lambda: counting.stats["a"].restarts == 1 and counting.stats["a"].state == "running", 10,
               "a to restart")
    counting.registry.tell("a", MarketBatch(2, 0))
    assert counting.query("a", "tally") == 3  # the restarted incarnation took the same state
    assert counting.query("b", "tally") == 1


def test_health_reads_the_views_the_feed_and_the_executor_show(showing: System) -> None:
    assert showing.health()["status"] == "healthy"
    flow = FlowControl(7, 3)
    assert showing.registry.address("feed").ask(FeedView(("ETHUSD",), flow), timeout=5)
    assert showing.registry.address("executor").ask(RiskView(True, "daily loss"), timeout=5)
    health = showing.health()
    assert health["status"] == "degraded" and health["stale"] == ["ETHUSD"]
    assert health["risk"] == {"halted": True, "reason": "daily loss", "strategies_stopped": {}, "symbols_halted": {}}
    assert (health["overload"]["overloaded"], health["overload"]["max_in_flight"]) == (False, 7)
    flow.admit(7, 0, 1)  # the feed's flow control pauses: health reads it as it is now
    assert showing.health()["overload"]["paused"]
    assert showing.registry.address("feed").ask(FeedView(), timeout=5)
    assert showing.health()["stale"] == [] and showing.health()["overload"] == {"overloaded": False}


def test_a_retired_incarnation_shows_nothing_and_kept_state_is_made_once() -> None:
    settings = load_settings(env={})
    owned = Owned()
    ctx = ChildContext("feed", Registry(), ActorStats("feed"), Counters(), settings, LiveClock(), "live",
                       lambda failure: None, Deps.of(settings, "live"), owned)
    ctx.show(FeedView(("BTCUSD",)))
    ctx.retired = True
    ctx.show(FeedView(("ETHUSD",)))
    shown = owned.shown(FeedView)
    assert shown is not None and shown.stale == ("BTCUSD",) and owned.shown(RiskView) is None
    tally = ctx.keep(Tally, Tally)
    assert ctx.keep(Tally, Tally) is tally
    assert ctx.keep(dict, dict) == {} and owned.kept is not tally
