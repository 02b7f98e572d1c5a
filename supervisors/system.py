"""A running system: the supervision tree, its registry and counters, and the control view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import pykka
from loguru import logger

from messages.pipeline import Drain
from messages.system import ChildFailed, Crash, Hang, Heartbeat, Publish, Query, Watch
from settings import Settings
from supervisors.accounting import market_load, record_dead_letter
from supervisors.actor import ChildContext
from supervisors.clock import Clock, LiveClock
from supervisors.deps import Deps
from supervisors.errors import StartupError
from supervisors.health import ActorStats, Counters
from supervisors.owned import FeedView, Owned, RiskView, VenueView
from supervisors.registry import Registry
from supervisors.spec import RestartChild, StopChildren, SupervisorSpec
from supervisors.supervisor import Supervisor
from supervisors.tree import PIPELINE, tree_for

__all__ = ["StartupError", "System"]

V = TypeVar("V")


class System:
    """Builds, runs and stops the actor tree of one mode; also the control socket's view of it."""

    def __init__(self, settings: Settings, mode: str, deps: Deps | None = None,
                 clock: Clock | None = None, tree: SupervisorSpec | None = None) -> None:
        """``deps``: what the actors are given (``Deps.of(settings, mode)`` when None; the system sets
        itself as ``view``). ``tree``: the supervision tree to run instead of the mode's own (drills and tests)."""
        self.settings = settings
        self.mode = mode
        self.clock = clock or LiveClock()
        self.registry = Registry(on_drop=self._dropped_after_stop)
        self.counters = Counters()
        self.deps = replace(deps or Deps.of(settings, mode), view=self)
        self.tree = tree or tree_for(mode, venue=settings.venue.trades)
        self.actor_names = tuple(self.tree.workers())
        self.owners: dict[str, str] = {}
        self.supervisor_specs: dict[str, SupervisorSpec] = {}
        self._index(self.tree)
        self._publish_health = self.deps.events
        self.stats = {name: ActorStats(name, self._state_changed) for name in (*self.supervisor_specs, *self.actor_names)}
        self.owned = {name: Owned() for name in self.actor_names}  # each actor's own slot, outliving incarnations
        self.parked: dict[str, list[Any]] = {}
        self.checkpoints: dict[str, Any] = {}
        self.supervisors: dict[str, pykka.ActorRef] = {}
        self.fault_injection = settings.control.allow_fault_injection
        self.stop_requested = threading.Event()
        self.stop_reason = ""
        self.fatal: str | None = None
        self.durability: str | None = None  # why records can no longer be stored
        self.started = False
        self.root: pykka.ActorRef | None = None
        self.sources: dict[str, Callable[[], dict[str, Any]]] = {}  # market data sources beside the tree: their views

    def _index(self, spec: SupervisorSpec) -> None:
        self.supervisor_specs[spec.name] = spec
        for child in spec.children:
            if isinstance(child, SupervisorSpec):
                self._index(child)
            else:
                self.owners[child.name] = spec.name

    # -- the runtime supervisors share ----------------------------------------------------------------

    def make_context(self, name: str, stats: ActorStats, report: Callable[[ChildFailed], None],
                     instance: int) -> ChildContext:
        """A fresh context for one incarnation of a worker."""
        return ChildContext(name, self.registry, stats, self.counters, self.settings, self.clock, self.mode,
                            report, self.deps, self.owned[name], self.checkpoints, instance)

    def _state_changed(self, stats: ActorStats, old: str) -> None:
        """Publish every state change on the events socket under ``health.<name>``."""
        if self._publish_health:
            self.registry.tell("control", Publish(f"health.{stats.name}", {
                "actor": stats.name, "change": "state", "from": old, "state": stats.state, "restarts": stats.restarts,
            }))

    def register_supervisor(self, name: str, ref: pykka.ActorRef) -> None:
        """Record the current incarnation of a supervisor."""
        self.supervisors[name] = ref

    def give_up(self, reason: str) -> None:
        """The root gave up, or an actor is stuck: stop the system (the first reason is kept)."""
        if self.fatal is not None:
            return
        self.fatal = reason
        if self.started:
            logger.critical("stopping the system: {}", reason)
        self.request_stop(reason)

    def orphaned(self, failed: ChildFailed) -> None:
        """A child failed after its supervisor stopped: dead-letter its message and park its queue, so
        the stop accounts for them."""
        record_dead_letter(self, failed.name, failed.error, failed.failed)
        self.parked.setdefault(failed.name, []).extend(failed.pending)

    def durability_failed(self, reason: str) -> None:
        """The store can no longer keep records: say so in health and stop the system."""
        self.durability = reason
        self.give_up(reason)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start every actor and wait until each answers; StartupError if one cannot start."""
        self.root = Supervisor.start(self.tree, self, None)
        deadline = time.monotonic() + timeout
        for name in self.actor_names:
            address = self.registry.address(name)
            while True:
                if self.fatal:
                    self.stop()
                    raise StartupError(self.fatal)
                try:
                    address.ask(Heartbeat(), timeout=0.5)
                    break
                except (pykka.ActorDeadError, pykka.Timeout):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise StartupError(f"{name} did not start within {timeout:g}s") from None
                    self.stop_requested.wait(0.01)
        self.started = True
        logger.info("{} system started: {}", self.mode, ", ".join(self.actor_names))

    def request_stop(self, reason: str) -> None:
        """Ask the running system to stop (from any thread)."""
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()

    def drain(self, timeout: float) -> bool:
        """Push a marker through the pipeline; True once everything before it is processed and stored."""
        done = pykka.ThreadingFuture()
        self.registry.tell("feed", Drain(done))
        try:
            return bool(done.get(timeout=timeout))
        except pykka.Timeout:
            logger.error("the pipeline did not drain within {:g}s", timeout)
            return False

    def stop(self) -> None:
        """Stop every actor in reverse start order and release the sockets."""
        self._publish_health = False
        root = self.root
        if root is not None and root.is_alive():
            timeout = self.settings.supervisor.stop_timeout_s
            try:
                root.ask(StopChildren(timeout), timeout=timeout * (len(self.actor_names) + len(self.supervisor_specs)))
            except pykka.Timeout:
                logger.error("actors did not stop in time")
            for ref in self.supervisors.values():
                if ref.is_alive():
                    ref.stop(block=True, timeout=timeout)
        self._account_stop()
        for sock in (self.deps.ingress, self.deps.cryptofeed):
            if sock is not None:
                sock.close()

    def _account_stop(self) -> None:
        """Count what will never be handled: messages still parked for an incarnation that will not
        start (the root gave up, an actor is stuck) and held at addresses no supervisor closed.
        Every accepted tick is then processed, dead-lettered or in ``ticks_dropped_at_stop``."""
        messages: list[Any] = []
        for name in self.actor_names:
            messages += [envelope.message for envelope in self.parked.pop(name, [])]
            messages += self.registry.address(name).close()
        self.count_dropped(messages)

    def _dropped_after_stop(self, message: Any) -> None:
        """A message told to an actor already stopped (a stop does not drain): count what it carried."""
        self.count_dropped([message])

    def count_dropped(self, messages: list[Any]) -> None:
        """Count the ticks and bars in messages that will never be handled because the system stops."""
        ticks = bars = 0
        for message in messages:
            t, b = market_load(message)
            ticks, bars = ticks + t, bars + b
        if ticks or bars:
            self.counters.add(ticks_dropped_at_stop=ticks, bars_dropped_at_stop=bars)
            logger.error("{:,} ticks and {:,} bars that could no longer be handled were dropped at stop (counted)",
                         ticks, bars)

    # -- the control view ----------------------------------------------------------------------------

    def _node(self, spec: SupervisorSpec) -> dict[str, Any]:
        node = self.stats[spec.name]
        children: dict[str, Any] = {}
        for child in spec.children:
            if isinstance(child, SupervisorSpec):
                children[child.name] = self._node(child)
            else:
                children[child.name] = {"type": "worker", "kind": child.kind, "state": self.stats[child.name].state,
                                        "restarts": self.stats[child.name].restarts}
        return {"type": "supervisor", "strategy": spec.strategy, "state": node.state, "restarts": node.restarts,
                "children": children}

    def health(self) -> dict[str, Any]:
        """The health tree: status, every actor's record, the supervisors with their children, the
        stale symbols and the feed's flow control (a stale symbol or an overloaded pipeline makes a
        running system degraded)."""
        actors = {name: self.stats[name].snapshot(self.registry.address(name).mailbox()) for name in self.actor_names}
        states = {a["state"] for a in actors.values()} | {self.stats[s].state for s in self.supervisor_specs}
        halt = self._shown("executor", RiskView) or RiskView()
        feed = self._shown("feed", FeedView) or FeedView()
        risk = {"halted": halt.halted, "reason": halt.reason, "strategies_stopped": dict(halt.strategies),
                "symbols_halted": dict(halt.symbols)}
        venue = self._shown("venue", VenueView)
        stale = list(feed.stale)
        late = {name: a["condition"] for name, a in actors.items() if a["condition"] != "ok"}
        overload = feed.flow.view(time.monotonic_ns()) if feed.flow is not None else {"overloaded": False}
        sources = {name: view() for name, view in self.sources.items()}
        down = [name for name, source in sources.items() if source.get("state") == "reconnecting"]
        if self.fatal or "failed" in states:
            status = "failed"
        elif (states <= {"running"} and not halt.halted and not halt.strategies and not stale and not late
              and not overload["overloaded"] and not halt.symbols and not (venue and venue.breaker_open)
              and not down):
            status = "healthy"
        else:
            status = "degraded"
        return {"status": status, "mode": self.mode, "actors": actors, "risk": risk, "stale": stale, "late": late,
                "overload": overload, "publishers": dict(feed.publishers), "sources": sources,
                "durability": {"ok": self.durability is None, "reason": self.durability or ""},
                "fatal": self.fatal, "tree": {"root": self._node(self.tree)},
                **({"venue": {"id": venue.venue, "breaker_open": venue.breaker_open, "failures": venue.failures,
                              "last_error": venue.last_error, "open_orders": venue.open_orders,
                              "stops_held": venue.stops_held, "updates_via": venue.updates_via}}
                   if venue is not None else {})}

    def _shown(self, actor: str, kind: type[V]) -> V | None:
        """The view ``actor`` shows, if it runs in this tree and showed a ``kind``."""
        owned = self.owned.get(actor)
        return owned.shown(kind) if owned is not None else None

    def _stages(self) -> list[str]:
        """The actors in pipeline order, those off the pipeline last."""
        return sorted(self.actor_names, key=lambda n: PIPELINE.index(n) if n in PIPELINE else len(PIPELINE))

    def metrics(self) -> dict[str, Any]:
        """Counters; latency from ingress receive to the executor's decision, and to the end of each
        stage that timed a batch (in pipeline order), over each one's last 10,000 ingress batches."""
        stages = {name: self.stats[name].latency.summary() for name in self._stages()}
        return {"counters": self.counters.snapshot(), "latency": stages.get("executor", {"samples": 0}),
                "latency_by_stage": {name: lat for name, lat in stages.items() if lat["samples"]}}

    def latency_histograms(self, bounds_ns: Any) -> dict[str, tuple[int, list[int], int]]:
        """For each stage that timed a batch (pipeline order), over the same window as ``metrics``:
        ``(samples, counts under each of bounds_ns, sum in ns)`` (see LatencyWindow.histogram)."""
        histograms = {name: self.stats[name].latency.histogram(bounds_ns) for name in self._stages()}
        return {name: histogram for name, histogram in histograms.items() if histogram[0]}

    def query(self, actor: str, what: str) -> Any:
        """Ask an actor for a read-only view."""
        try:
            return self.registry.address(actor).ask(Query(what), timeout=2.0)
        except pykka.ActorDeadError as exc:
            raise LookupError(f"{actor} is restarting; try again") from exc
        except pykka.Timeout as exc:
            raise TimeoutError(f"{actor} did not answer within 2s") from exc

    def ask(self, actor: str, message: Any) -> Any:
        """Ask an actor to act on ``message`` and return its answer (the control socket's manual orders)."""
        try:
            return self.registry.address(actor).ask(message, timeout=10.0)
        except pykka.ActorDeadError as exc:
            raise LookupError(f"{actor} is restarting; try again") from exc
        except pykka.Timeout as exc:
            raise TimeoutError(f"{actor} did not answer within 10s") from exc

    def watch(self, add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
        """Change the feed's watch list; return the new list."""
        try:
            return self.registry.address("feed").ask(Watch(add, remove), timeout=2.0)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            raise LookupError("the feed is not available") from exc

    def restart(self, actor: str) -> None:
        """Replace an actor with a fresh incarnation, keeping its queue and state."""
        self.supervisors[self.owners[actor]].tell(RestartChild(actor))

    def crash(self, actor: str) -> None:
        """Fault injection: make an actor raise on its next message."""
        self.registry.tell(actor, Crash(f"crash injected over the control socket into {actor}"))

    def hang(self, actor: str, seconds: float) -> None:
        """Fault injection: make an actor block on its next message."""
        self.registry.tell(actor, Hang(seconds))

    def shutdown(self, reason: str) -> None:
        """Stop the system (the runner notices and stops cleanly)."""
        logger.info(reason)
        self.request_stop(reason)


