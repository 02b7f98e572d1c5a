"""Chaos: a live system fed by an outside publisher while actors are crashed and one is slow."""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from messages.market import Tick
from messages.system import Crash, Hang
from settings import Settings
from supervisors.deps import Deps
from supervisors.system import System
from tests.helpers import ctl, wait_until

pytestmark = pytest.mark.timeout(120)

VICTIMS = ("feed", "buffer", "feature", "model", "strategy", "executor", "store")
MINUTE = 60_000_000_000
T0 = 1_717_200_000_000_000_000
TOTAL = 30_000


def publish(endpoint: str, ready: threading.Event, sent: list[int], stop: threading.Event) -> None:
    publisher = Publisher(endpoint)
    publisher.wait_for_subscriber()
    ready.set()
    symbols = ("BTCUSD", "ETHUSD", "SOLUSD")
    for i in range(TOTAL):
        if stop.is_set():
            break
        k = i // 3
        price = 100.0 * (1 + 0.03 * math.sin(k / 150)) + 0.01 * (k % 7)
        publisher.send_tick(Tick(symbols[i % 3], T0 + k * (MINUTE // 10), price - 0.01, price + 0.01, price, 1.0, "chaos", i + 1))
        sent[0] = i + 1
        if i % 500 == 0:
            stop.wait(0.005)  # pace the publisher so crashes land while ticks flow
    publisher.close()


def test_fifty_crashes_and_a_slow_actor_lose_nothing(live_settings: Settings) -> None:
    settings = live_settings.with_values({
        "supervisor.max_restarts": 500, "supervisor.heartbeat_s": 0.1, "supervisor.heartbeat_timeout_s": 0.5,
        "control.allow_fault_injection": True,
    })
    system = System(settings, "live", Deps.of(settings, "live",
                                              ingress=IngressSocket(settings.ingress.endpoint, 1_000_000)))
    system.start()
    stop, ready, sent = threading.Event(), threading.Event(), [0]
    publisher = threading.Thread(target=publish, args=(settings.ingress.endpoint, ready, sent, stop), daemon=True)
    publisher.start()
    try:
        assert ready.wait(10)
        crashes = 0
        for round_ in range(8):
            for victim in VICTIMS:
                if crashes == 50:
                    break
                target = system.counters.get("ticks_received") + 300
                wait_until(lambda: system.counters.get("ticks_received") >= min(target, TOTAL) or sent[0] == TOTAL,
                           30, "ticks to flow")
                system.registry.tell(victim, Crash(f"chaos round {round_}"))
                crashes += 1
        assert crashes == 50
        # let the last restarts finish first: a restart that stops the model while it executes the
        # Hang would consume the hang instead of showing it
        wait_until(lambda: system.counters.get("dead_letters") == 50, 20, "every crash to be handled")
        wait_until(lambda: all(a["state"] == "running" for a in system.health()["actors"].values()), 20,
                   "every actor to run again")
        restarts = system.health()["actors"]["model"]["restarts"]
        # 3 s inside one message, six times the heartbeat timeout: slow, not dead
        system.registry.tell("model", Hang(3.0))
        slow = wait_until(lambda: (a := system.health()["actors"]["model"])["condition"] == "slow" and a, 10,
                          "health to show the model slow")
        assert slow["in"] == "Hang" and slow["for_s"] >= 0.5 and slow["state"] == "running"
        assert system.health()["status"] == "degraded" and system.health()["late"]["model"] == "slow"
        wait_until(lambda: system.health()["actors"]["model"]["condition"] == "ok", 20, "the model to answer again")
        assert system.health()["actors"]["model"]["restarts"] == restarts  # never replaced
        assert system.counters.get("hangs") == 0
        publisher.join(timeout=60)
        assert sent[0] == TOTAL
        wait_until(lambda: system.counters.get("ticks_received") == TOTAL, 30, "every tick to arrive")
        assert system.drain(timeout=30)
        wait_until(lambda: system.health()["status"] == "healthy", 20, "health to return to all running")

        health = ctl(settings.control.endpoint, "health")
        assert health["status"] == "healthy"
        for name in VICTIMS:
            assert health["actors"][name]["state"] == "running"
            assert health["actors"][name]["restarts"] >= 7, (name, health["actors"][name])
        assert health["actors"]["model"]["restarts"] >= 7  # 7 crashes (+ rest_for_one)
        c = system.counters.snapshot()
        assert c["ticks_received"] == TOTAL == c["ticks_accepted"] + c["ticks_rejected"]
        assert c["ticks_rejected"] == 0
        # every accepted tick was processed or dead-lettered; crashes hit fault messages, not data
        assert c["ticks_processed"] + c["ticks_dead_lettered"] == c["ticks_accepted"]
        assert c["dead_letters"] == 50 and c["ticks_dropped_at_stop"] == 0 and c["late_output_dropped"] == 0
        assert c["orders"] > 0
        stored_dead = sqlite3.connect(settings.store.db).execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        assert stored_dead == 50
        db = sqlite3.connect(settings.store.db)
        orders = db.execute("SELECT COUNT(*), COUNT(DISTINCT client_id) FROM orders").fetchone()
        assert orders[0] == orders[1] == c["orders"]   # no order twice
        fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        assert fills == c["fills"]
    finally:
        stop.set()
        system.stop()


def test_a_stuck_actor_stops_the_system_with_every_tick_accounted(live_settings: Settings) -> None:
    settings = live_settings.with_values({
        "supervisor.heartbeat_s": 0.05, "supervisor.heartbeat_timeout_s": 0.1, "supervisor.stuck_timeout_s": 1.0,
    })
    system = System(settings, "live", Deps.of(settings, "live",
                                              ingress=IngressSocket(settings.ingress.endpoint, 1_000_000)))
    system.start()
    stop, ready, sent = threading.Event(), threading.Event(), [0]
    publisher = threading.Thread(target=publish, args=(settings.ingress.endpoint, ready, sent, stop), daemon=True)
    try:
        system.registry.tell("buffer", Hang(2.5))  # stuck past the 1 s patience; ticks pile up behind it
        publisher.start()
        assert ready.wait(10)
        assert system.stop_requested.wait(20)
        assert system.fatal is not None and "buffer is stuck" in system.fatal and "inside Hang" in system.fatal
        assert system.health()["actors"]["buffer"]["state"] == "failed"
        stop.set()
        publisher.join(timeout=30)
        system.stop()
        c = system.counters.snapshot()
        assert c["hangs"] == 1 and c["dead_letters"] == 1  # the Hang itself, carrying no tick
        assert c["ticks_accepted"] > 0 and c["ticks_dropped_at_stop"] > 0
        assert c["ticks_received"] == c["ticks_accepted"] + c["ticks_rejected"]
        assert c["ticks_accepted"] == c["ticks_processed"] + c["ticks_dead_lettered"] + c["ticks_dropped_at_stop"]
    finally:
        stop.set()
        system.stop()
