"""Under a flood the live system keeps its memory bounded: the feed stops reading the ingress while
the pipeline is behind, health says so, every tick is accounted for, and it recovers by itself.
A `run.py live` process, flooded over real ZeroMQ by a publisher in this process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import zmq

from messages.codec import encode_tick
from messages.market import Tick
from tests.conftest import free_endpoint
from tests.helpers import ctl, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(180)

MINUTE = 60_000_000_000
T0 = 1_780_000_000_000_000_000
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def flood(count: int, first_seq: int = 1) -> list[list[bytes]]:
    """``count`` ticks, each closing a one-minute bar of its symbol (the store's worst case),
    numbered from ``first_seq`` under one ``src``."""
    out = []
    for i in range(first_seq - 1, first_seq - 1 + count):
        price = 100.0 + (i % 50) * 0.1
        out.append(encode_tick(Tick(SYMBOLS[i % 3], T0 + (i // 3) * MINUTE, price - 0.01, price + 0.01, price, 1.0,
                                    "flood", i + 1)))
    return out


class FloodPublisher:
    """A PUB with ZeroMQ's default send high-water mark, as a real feed has: what the system does
    not take is dropped here, and the system sees it as ``seq`` gaps."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        assert self.sock.poll(10_000), "no subscription arrived"
        self.sock.recv()

    def send(self, messages: list[list[bytes]]) -> None:
        send, more = self.sock.send, int(zmq.SNDMORE)
        for topic, payload in messages:
            send(topic, more)
            send(payload)

    def close(self) -> None:
        self.sock.close(0)


def test_a_flood_is_shown_in_health_accounted_for_and_recovered_from(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("[ingress]\nmax_in_flight = 500\nmax_store_backlog = 8\nrcvhwm = 2000\n"
                        "[control]\nsummary_s = 60\n")
    ingress, control = free_endpoint(), free_endpoint()
    process = start_cli("live", "--feed", "external", "--db", str(tmp_path / "live.db"), "--ingress", ingress,
                        "--control", control, "--events", free_endpoint(), "--settings", str(settings))
    publisher = None
    try:
        wait_for_control(control, process)
        publisher = FloodPublisher(ingress)
        sent = 120_000
        messages = flood(sent)
        sending = threading.Thread(target=publisher.send, args=(messages,))
        sending.start()
        seen: list[dict[str, Any]] = []

        def overloaded() -> bool:
            health = ctl(control, "health", timeout=10)
            seen.append(health)
            return health["status"] == "degraded" and health["overload"]["overloaded"]

        wait_until(overloaded, 60, "health to show the overload")
        overload = seen[-1]["overload"]
        assert overload["paused"] or overload["episodes"] >= 1
        sending.join(timeout=60)
        assert not sending.is_alive()

        # Recovers by itself: health healthy again, everything taken in processed
        def recovered() -> dict[str, Any] | None:
            health = ctl(control, "health", timeout=10)
            c = ctl(control, "metrics", timeout=10)["counters"]
            done = c["ticks_accepted"] == c["ticks_processed"] + c["ticks_dead_lettered"]
            return c if health["status"] == "healthy" and not health["overload"]["overloaded"] and done else None

        during = wait_until(recovered, 120, "the system to recover")
        # A last tick after the flood numbers everything before it: each tick sent was received or
        # counted in a seq gap
        publisher.send(flood(1, first_seq=sent + 1))
        c = wait_until(lambda: (m := ctl(control, "metrics")["counters"])["ticks_processed"] > during["ticks_processed"]
                       and m, 30, "the tick after the flood")
        assert c["ticks_received"] <= sent + 1
        assert c["ticks_received"] == c["ticks_accepted"] + c["ticks_rejected"]
        assert c["ticks_rejected"] == 0
        assert c["ticks_accepted"] == c["ticks_processed"] + c["ticks_dead_lettered"]
        assert c["ticks_received"] + c["seq_gaps"] == sent + 1
        assert c["seq_gaps"] > 0, "the flood should have outrun the bounds"
        assert ctl(control, "health")["status"] == "healthy"
        assert ctl(control, "shutdown")["ok"]
        assert process.wait(timeout=30) == 0
    finally:
        if publisher is not None:
            publisher.close()
        if process.poll() is None:
            process.kill()
        process.communicate()
