"""A live system in this process, fed by an outside publisher over real loopback sockets."""

from __future__ import annotations

import math
import threading

import pytest
import zmq

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from messages.codec import packb, unpackb
from messages.market import Tick
from messages.system import Crash, Query
from settings import Settings
from supervisors.deps import Deps
from supervisors.system import StartupError, System
from tests.helpers import ctl, wait_until

pytestmark = pytest.mark.timeout(60)

MINUTE = 60_000_000_000
T0 = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z


def start_system(settings: Settings) -> System:
    system = System(settings, "live", Deps.of(settings, "live",
                                              ingress=IngressSocket(settings.ingress.endpoint, 100_000)))
    system.start()
    return system


def ticks(n: int, symbols: tuple[str, ...] = ("BTCUSD", "ETHUSD", "SOLUSD"), per_minute: int = 20) -> list[Tick]:
    """Deterministic ticks: a slow sine wave per symbol, ``per_minute`` ticks per symbol per minute."""
    out = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        k = i // len(symbols)
        price = 100.0 * (1 + 0.05 * math.sin(k / (per_minute * 15))) + (i % len(symbols))
        out.append(Tick(symbol, T0 + k * (MINUTE // per_minute), price - 0.01, price + 0.01, price, 1.0, "test", i + 1))
    return out


MALFORMED = [
    [b"tick.BTCUSD", b"\xc1not msgpack"],
    [b"tick.BTCUSD", packb([1, 2, 3])],
    [b"tick.BTCUSD", packb({"symbol": "BTCUSD", "ts": 5, "bid": 2.0, "ask": 1.0})],
    [b"tick.BTCUSD", packb({"symbol": "BTCUSD", "ts": 5, "last": float("nan")})],
    [b"tick.BTCUSD", packb({"symbol": "BTCUSD", "ts": 5, "last": -1.0})],
    [b"tick.BTCUSD", packb({"symbol": "BTCUSD", "last": 1.0})],
    [b"nonsense"],
    [b"quote.BTCUSD", packb({"symbol": "BTCUSD", "ts": 5, "last": 1.0})],
    [b"tick.BTCUSD", b"x" * (64 * 1024 + 1)],
    [b"bar.BTCUSD", packb({"symbol": "BTCUSD", "ts": 5, "timeframe": "1m", "open": 1.0, "high": 0.5,
                           "low": 1.0, "close": 1.0, "volume": 1.0})],
]


def test_every_message_from_an_outside_publisher_is_accounted_for(live_settings: Settings) -> None:
    system = start_system(live_settings)
    try:
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        valid = ticks(3000)
        for i, tick in enumerate(valid):
            publisher.send_tick(tick)
            if i % 300 == 0:
                publisher.send_frames(MALFORMED[(i // 300) % len(MALFORMED)])
        sent_bad = 10
        endpoint = live_settings.control.endpoint

        def all_received() -> dict | None:
            metrics = ctl(endpoint, "metrics")
            c = metrics["counters"]
            assert c["ticks_received"] + c["bars_received"] == c["ticks_accepted"] + c["ticks_rejected"] + c["bars_accepted"] + c["bars_rejected"]
            return c if c["ticks_received"] + c["bars_received"] == len(valid) + sent_bad else None

        counters = wait_until(all_received, 20, "every message to be received")
        assert counters["ticks_accepted"] == len(valid)
        assert counters["ticks_received"] == counters["ticks_accepted"] + counters["ticks_rejected"]
        assert counters["bars_rejected"] == 1
        assert counters["rejected_by_reason"] == {
            "not_msgpack": 1, "not_a_map": 1, "crossed_quote": 1, "non_finite": 1, "bad_price": 1,
            "missing_field": 1, "bad_frames": 1, "bad_topic": 1, "oversized": 1, "bad_ohlc": 1,
        }
        assert counters["seq_gaps"] == 0
        publisher.close()
        assert system.drain(timeout=10)
        counters = ctl(endpoint, "metrics")["counters"]
        assert counters["ticks_processed"] == len(valid)
        assert counters["bars"] > 0
        health = ctl(endpoint, "health")
        assert health["status"] == "healthy"
        assert set(health["actors"]) == {"feed", "buffer", "feature", "model", "strategy", "executor", "store", "control"}
        for name, record in health["actors"].items():
            assert record["state"] == "running", name
            assert set(record) == {"state", "restarts", "mailbox", "processed", "errors", "last_activity_ns",
                                   "condition"}
            assert record["condition"] == "ok", name
    finally:
        system.stop()


def test_metrics_time_every_ingress_batch_at_every_stage_down_to_the_decision(live_settings: Settings) -> None:
    system = start_system(live_settings)
    endpoint = live_settings.control.endpoint
    try:
        assert ctl(endpoint, "metrics")["latency"] == {"samples": 0}
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        sent = ticks(900)
        for start in range(0, 900, 150):  # six groups, each received before the next is sent
            for tick in sent[start:start + 150]:
                publisher.send_tick(tick)
            wait_until(lambda n=start + 150: ctl(endpoint, "metrics")["counters"]["ticks_accepted"] == n, 20,
                       "the ticks")
        publisher.close()
        assert system.drain(timeout=10)
        timed = ctl(endpoint, "metrics")["latency_by_stage"]["feed"]["samples"]
        # Quiet now: the feed sends the clock batches that close bars on quiet intervals; wait for
        # the buffer to handle two (health counts every message an actor handled: the timed batches,
        # the drain marker, then the clock batches).
        wait_until(lambda: ctl(endpoint, "health")["actors"]["buffer"]["processed"] >= timed + 3, 20,
                   "clock batches to reach the buffer")
        metrics = ctl(endpoint, "metrics")
        assert metrics["counters"]["ticks_processed"] == 900
        stages = metrics["latency_by_stage"]
        assert list(stages) == ["feed", "buffer", "feature", "model", "strategy", "executor"]
        assert metrics["latency"] == stages["executor"]
        # Every stage timed the same batches (the feed's clock batches are not timed), and each batch
        # is done later at each stage than at the one before: every percentile grows down the pipeline.
        assert len({lat["samples"] for lat in stages.values()}) == 1
        assert 6 <= stages["feed"]["samples"] <= 900
        for key in ("p50_us", "p99_us", "max_us"):
            figures = [lat[key] for lat in stages.values()]
            assert figures == sorted(figures) and figures[0] > 0, key
    finally:
        system.stop()


def test_seq_gaps_are_counted_per_publisher(live_settings: Settings) -> None:
    system = start_system(live_settings)
    try:
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        for seq in (1, 2, 3, 7, 8, 20):  # 3 missing, then 11 missing
            publisher.send_tick(Tick("BTCUSD", T0 + seq, 1.0, 1.1, 1.05, 0.0, "a", seq))
        publisher.send_tick(Tick("BTCUSD", T0 + 99, 1.0, 1.1, 1.05, 0.0, "b", 1))
        wait_until(lambda: ctl(live_settings.control.endpoint, "metrics")["counters"]["ticks_received"] == 7, 10, "ticks")
        assert ctl(live_settings.control.endpoint, "metrics")["counters"]["seq_gaps"] == 14
        publisher.close()
    finally:
        system.stop()


@pytest.mark.parametrize("victim", ["feed", "buffer", "feature", "model", "strategy", "executor", "store"])
def test_an_actor_that_raises_is_restarted_and_the_pipeline_keeps_flowing(live_settings: Settings, victim: str) -> None:
    system = start_system(live_settings)
    try:
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        stream = ticks(1200)
        for tick in stream[:600]:
            publisher.send_tick(tick)
        wait_until(lambda: system.counters.get("ticks_received") == 600, 10, "first half")
        system.registry.tell(victim, Crash("test"))
        for tick in stream[600:]:
            publisher.send_tick(tick)
        wait_until(lambda: system.counters.get("ticks_received") == 1200, 10, "second half")
        assert system.drain(timeout=10)
        health = system.health()
        assert health["status"] == "healthy"
        assert health["actors"][victim]["restarts"] == 1
        assert health["actors"][victim]["state"] == "running"
        c = system.counters.snapshot()
        assert c["dead_letters"] == 1          # the Crash message itself
        assert c["ticks_dead_lettered"] == 0   # nothing queued behind it was lost
        assert c["ticks_processed"] == c["ticks_accepted"] == 1200
        publisher.close()
    finally:
        system.stop()


def test_the_feed_answers_its_mailbox_while_a_flood_of_ticks_keeps_its_sockets_busy(live_settings: Settings) -> None:
    system = start_system(live_settings)
    stop = threading.Event()

    def flood() -> None:
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        stream = ticks(3_000)
        while not stop.is_set():
            for tick in stream[:300]:
                publisher.send_tick(tick)
        publisher.close()

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        wait_until(lambda: system.counters.get("ticks_received") > 1_000, 10, "the flood to arrive")
        feed = system.registry.address("feed")
        for _ in range(5):
            assert feed.ask(Query("feed"), timeout=2.0)["watch"] == sorted(live_settings.feed.symbols)
        assert system.watch(("XRPUSD",), ()) == sorted((*live_settings.feed.symbols, "XRPUSD"))
    finally:
        stop.set()
        flooder.join(timeout=10)
        system.stop()


def test_control_socket_answers_malformed_requests_with_errors(live_settings: Settings) -> None:
    system = start_system(live_settings)
    try:
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(live_settings.control.endpoint)
        for payload, fragment in (
            ([b"\xc1\xc1"], "not msgpack"), ([packb([1, 2])], "not a msgpack map"), ([packb({"x": 1})], '"cmd"'),
            ([packb({"cmd": "fly"})], "unknown command"), ([packb({"cmd": "ping"}), b"more"], "one frame"),
            ([packb({"cmd": "crash", "actor": "feed"})], "fault injection is off"),
            ([packb({"cmd": "restart", "actor": "nobody"})], '"actor" must be one of'),
            ([packb({"cmd": "subscribe", "symbols": 5})], '"symbols"'),
        ):
            sock.send_multipart(payload)
            reply = unpackb(sock.recv())
            assert reply["ok"] is False and fragment in reply["error"], (payload, reply)
        sock.close()
        assert ctl(live_settings.control.endpoint, "ping") == {"ok": True, "pong": True}
        assert system.health()["status"] == "healthy"
        positions = ctl(live_settings.control.endpoint, "positions")
        assert positions["ok"] and positions["cash"] == live_settings.executor.cash
    finally:
        system.stop()


def test_subscribe_and_unsubscribe_change_the_watch_list(live_settings: Settings) -> None:
    system = start_system(live_settings)
    try:
        endpoint = live_settings.control.endpoint
        assert ctl(endpoint, "unsubscribe", symbols="SOLUSD")["symbols"] == ["BTCUSD", "ETHUSD"]
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        publisher.send_tick(Tick("SOLUSD", T0, 1.0, 1.1, 1.05))
        publisher.send_tick(Tick("BTCUSD", T0, 1.0, 1.1, 1.05))
        wait_until(lambda: system.counters.get("ticks_received") == 2, 10, "two ticks")
        assert system.counters.snapshot()["rejected_by_reason"] == {"unobserved_symbol": 1}
        assert ctl(endpoint, "subscribe", symbols="SOLUSD,XRPUSD")["symbols"] == ["BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD"]
        publisher.close()
    finally:
        system.stop()


def test_a_port_in_use_is_a_clear_startup_error(live_settings: Settings) -> None:
    blocker = zmq.Context.instance().socket(zmq.REP)
    blocker.setsockopt(zmq.LINGER, 0)
    blocker.bind(live_settings.control.endpoint)
    try:
        with pytest.raises(StartupError, match="control failed to start: .*cannot bind control"):
            start_system(live_settings)
    finally:
        blocker.close()


def test_the_kill_switch_shows_in_health_and_on_the_events_socket(live_settings: Settings) -> None:
    settings = live_settings.with_values({"executor.daily_loss_pct": 1.0, "executor.allocation": 1.0})
    system = start_system(settings)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(settings.control.events)
    try:
        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        # a rise (the fast average crosses above the slow one: buy), then a fall of 10% within the day
        prices = [100.0 - 0.01 * i for i in range(40)] + [100.0 + i for i in range(1, 15)] + [114.0 - 1.5 * i for i in range(1, 30)]
        for k, price in enumerate(prices):
            for symbol in ("BTCUSD", "ETHUSD", "SOLUSD"):
                publisher.send_tick(Tick(symbol, T0 + k * MINUTE, price - 0.01, price + 0.01, price, 1.0))
        wait_until(lambda: system.health()["risk"]["halted"], 20, "the kill switch")
        health = ctl(settings.control.endpoint, "health")
        assert health["status"] == "degraded"
        assert "daily loss" in health["risk"]["reason"]
        events = []
        while sub.poll(100):
            events.append(sub.recv_multipart())
        topics = [topic.decode() for topic, _ in events]
        assert "health.executor" in topics
        kill = [unpackb(body) for topic, body in events if topic == b"health.executor"]
        assert any(e.get("change") == "kill_switch" for e in kill)
        assert any(t.startswith("order.") for t in topics)
        publisher.close()
    finally:
        sub.close()
        system.stop()
