"""Slow is not dead: a real supervisor tree of two small actors, one that waits, one that counts.

The worker forwards market batches to the sink, which counts their ticks as processed. A batch
with a negative ``seq`` makes the worker take its time first: inside ``waiting`` (blocked) when
``seq == -1``, or just busy (slow) when ``seq == -2``, until the test's gate opens or, for a
positive ``recv_ns``, for that many milliseconds.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from messages.market import Tick
from messages.pipeline import MarketBatch
from messages.system import Crash
from settings import SettingsError, load_settings
from supervisors.actor import SupervisedActor
from supervisors.health import ActorStats, Counters
from supervisors.supervisor import ChildSpec, SupervisorSpec
from supervisors.system import System
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(30)

TICK = Tick("BTCUSD", 1_700_000_000_000_000_000, 99.0, 101.0, 100.0, 1.0)


def batch(ticks: int, seq: int = 1, millis: int = 0) -> MarketBatch:
    return MarketBatch(seq, millis, ticks=(TICK,) * ticks)


class Worker(SupervisedActor):
    """Forwards batches to the sink, taking its time first for a batch with a negative seq."""

    gate: threading.Event  # set per test on a subclass (see ``tree``)

    def handle(self, message: Any) -> Any:
        if isinstance(message, MarketBatch):
            gate = self.gate
            timeout = message.recv_ns / 1000 if message.recv_ns else 20.0
            if message.seq == -1:
                with self.waiting("a test lock"):
                    gate.wait(timeout)
            elif message.seq == -2:
                gate.wait(timeout)
            self.send("sink", message)
        return None


class Sink(SupervisedActor):
    """Counts the ticks it receives as processed."""

    def handle(self, message: Any) -> Any:
        if isinstance(message, MarketBatch):
            self.ctx.counters.add(ticks_processed=len(message.ticks))
        return None


def tree(gate: threading.Event) -> SupervisorSpec:
    """The test tree, its worker waiting on ``gate``."""
    worker = type("GatedWorker", (Worker,), {"gate": gate})
    return SupervisorSpec("root", "one_for_one", (
        SupervisorSpec("pair", "rest_for_one", (ChildSpec("sink", Sink), ChildSpec("worker", worker))),
    ))


def start(stuck_timeout_s: float = 0.5) -> tuple[System, threading.Event]:
    settings = load_settings(env={}, overrides={
        "supervisor.heartbeat_s": 0.02, "supervisor.heartbeat_timeout_s": 0.05,
        "supervisor.stuck_timeout_s": stuck_timeout_s, "supervisor.stop_timeout_s": 2.0,
    })
    gate = threading.Event()
    system = System(settings, "backtest", tree=tree(gate))
    system.start()
    return system, gate


def worker(system: System) -> dict[str, Any]:
    return system.health()["actors"]["worker"]


def test_a_blocked_actor_is_reported_and_never_replaced_however_long_it_waits() -> None:
    system, gate = start(stuck_timeout_s=0.3)
    try:
        system.registry.tell("worker", batch(3, seq=-1))
        system.registry.tell("worker", batch(4))
        blocked = wait_until(lambda: (w := worker(system))["condition"] == "blocked" and w, 10, "the worker blocked")
        assert blocked["on"] == "a test lock" and blocked["state"] == "running"
        # three times the stuck timeout, and still only blocked
        wait_until(lambda: worker(system)["for_s"] >= 0.9, 10, "a long wait")
        health = system.health()
        assert health["status"] == "degraded" and health["late"] == {"worker": "blocked"}
        assert system.fatal is None and worker(system)["restarts"] == 0 and system.counters.get("hangs") == 0
        gate.set()
        wait_until(lambda: system.counters.get("ticks_processed") == 7, 10, "both batches processed")
        wait_until(lambda: worker(system)["condition"] == "ok", 10, "the worker to answer again")
        assert system.counters.get("dead_letters") == 0
    finally:
        gate.set()
        system.stop()


def test_a_slow_actor_is_reported_in_its_message_and_keeps_its_output() -> None:
    system, gate = start(stuck_timeout_s=5.0)
    try:
        system.registry.tell("worker", batch(3, seq=-2))
        slow = wait_until(lambda: (w := worker(system))["condition"] == "slow" and w, 10, "the worker slow")
        assert slow["in"] == "MarketBatch" and slow["for_s"] >= 0.05
        gate.set()
        wait_until(lambda: system.counters.get("ticks_processed") == 3, 10, "the batch processed")
        assert worker(system)["restarts"] == 0 and system.counters.get("late_output_dropped") == 0
    finally:
        gate.set()
        system.stop()


def test_a_restart_waits_for_a_slow_sibling_to_finish_its_message() -> None:
    """rest_for_one: the sink's crash restarts the worker too; the worker is inside a 400 ms message
    (eight heartbeat timeouts): the restart waits for it instead of abandoning it."""
    system, gate = start(stuck_timeout_s=5.0)
    try:
        system.registry.tell("worker", batch(5, seq=-2, millis=400))
        wait_until(lambda: system.stats["worker"].busy_with == "MarketBatch", 10, "the worker inside its message")
        system.registry.tell("sink", Crash("test"))
        wait_until(lambda: system.counters.get("ticks_processed") == 5, 10, "the slow batch to reach the sink")
        wait_until(lambda: worker(system)["state"] == "running", 10, "the worker running again")
        c = system.counters.snapshot()
        assert c["dead_letters"] == 1 and c["hangs"] == 0 and c["late_output_dropped"] == 0
        assert worker(system)["restarts"] == 1 and system.fatal is None
    finally:
        gate.set()
        system.stop()


def test_a_stuck_actor_stops_the_system_and_everything_it_held_is_accounted() -> None:
    system, gate = start(stuck_timeout_s=0.3)
    try:
        system.registry.tell("worker", batch(3, seq=-2))   # stuck in this one
        system.registry.tell("worker", batch(5))
        system.registry.tell("worker", batch(6))
        assert system.stop_requested.wait(10)
        assert system.fatal is not None and "worker is stuck" in system.fatal and "MarketBatch" in system.fatal
        health = system.health()
        assert health["status"] == "failed" and health["actors"]["worker"]["state"] == "failed"
        c = system.counters.snapshot()
        assert c["hangs"] == 1 and c["dead_letters"] == 1 and c["ticks_dead_lettered"] == 3
        assert health["actors"]["worker"]["restarts"] == 0  # no second copy beside the stuck thread
        # the stuck thread wakes up: what it sends is dropped, counted and logged
        gate.set()
        wait_until(lambda: system.counters.get("late_output_dropped") == 1, 10, "the late output to be counted")
        system.stop()
        c = system.counters.snapshot()
        assert c["ticks_processed"] == 0 and c["ticks_dropped_at_stop"] == 11
        assert c["ticks_processed"] + c["ticks_dead_lettered"] + c["ticks_dropped_at_stop"] == 14
    finally:
        gate.set()
        system.stop()


def test_the_stuck_timeout_is_at_least_the_heartbeat_timeout() -> None:
    with pytest.raises(SettingsError, match="supervisor.stuck_timeout_s.*>= supervisor.heartbeat_timeout_s"):
        load_settings(env={}, overrides={"supervisor.heartbeat_timeout_s": 5, "supervisor.stuck_timeout_s": 1})
    with pytest.raises(SettingsError, match="backtest.window"):
        load_settings(env={}, overrides={"backtest.window": 0})


def test_health_tells_blocked_from_slow_from_busy() -> None:
    stats = ActorStats("a")
    assert stats.condition() == {"condition": "ok"}
    stats.late_since_ns, stats.slow_after_ns = 2_000_000_000, 1_000_000_000  # late; slow after 1 s in a message
    assert stats.condition() == {"condition": "busy"}
    stats.busy_with, stats.last_activity_ns = "Persist", 3_000_000_000  # 0.5 s in it: still moving on
    assert stats.condition(3_500_000_000) == {"condition": "busy"}
    stats.busy_with, stats.last_activity_ns = "MarketBatch", 1_000_000_000
    assert stats.condition(3_500_000_000) == {"condition": "slow", "in": "MarketBatch", "for_s": 2.5}
    stats.waiting, stats.waiting_since_ns = "the database lock", 2_000_000_000
    assert stats.condition(3_500_000_000) == {"condition": "blocked", "on": "the database lock", "for_s": 1.5}


def test_counters_wake_a_waiter_on_every_add() -> None:
    counters = Counters()
    seen = threading.Event()

    def waiter() -> None:
        if counters.wait_for(lambda c: c["bars_processed"] >= 10, 10):
            seen.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    counters.add(bars_processed=4)
    assert not seen.is_set()
    counters.add(bars_processed=6)
    assert seen.wait(5)
    thread.join(5)
    assert not counters.wait_for(lambda c: c["bars"] > 0, 0.01)
