"""Hostile input over the real sockets: times far from the clock, the watch list's bounds, exposure."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import zmq

from actors.control.security import generate_keypair, ingress_security, load_curve
from actors.feed.actor import IngressSocket
from actors.feed.publisher import CompressedClock, Publisher, run_simulator
from messages.codec import decode_ingress, encode_bar, encode_tick, packb, unpackb
from messages.market import Bar, Tick
from settings import Settings
from supervisors.deps import Deps
from supervisors.system import System
from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, wait_until

pytestmark = pytest.mark.timeout(90)

SEC = 1_000_000_000
MINUTE = 60 * SEC
YEAR = 365 * 86_400 * SEC
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def start_system(settings: Settings, ingress: IngressSocket | None = None) -> System:
    system = System(settings, "live", Deps.of(settings, "live",
                                              ingress=ingress or IngressSocket(settings.ingress.endpoint, 100_000)))
    system.start()
    return system


def valid_ticks(start_ns: int, minutes: int) -> list[Tick]:
    """Every symbol every 3 s: each minute has ticks of every symbol (no empty bar is ever due)."""
    out = []
    for k in range(minutes * 20):
        for j, symbol in enumerate(SYMBOLS):
            price = 100.0 + j + (k % 50) * 0.01
            ts = start_ns + 2 * SEC + k * 3 * SEC
            out.append(Tick(symbol, ts, price - 0.01, price + 0.01, price, 1.0, "valid", k * 3 + j))
    return out


def hostile(ts: int, symbol: str = "BTCUSD") -> Tick:
    return Tick(symbol, ts, 100.0, 100.02, 100.01, 1.0)


def received(endpoint: str, count: int) -> dict:
    def done() -> dict | None:
        counters = ctl(endpoint, "metrics")["counters"]
        return counters if counters["ticks_received"] + counters["bars_received"] >= count else None
    return wait_until(done, 30, f"{count} messages received")


def stored_bars(db: str) -> list[tuple[str, str, int, float]]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT symbol, timeframe, ts, volume FROM bars ORDER BY ts").fetchall()


def test_hostile_times_are_rejected_by_reason_and_valid_ticks_flow_also_after_a_restart(
        live_settings: Settings, tmp_path: Path) -> None:
    now = time.time_ns()
    start = (now - 3600 * SEC) // MINUTE * MINUTE  # an hour ago, well inside the clock's window
    first, second = valid_ticks(start, 10), valid_ticks(start + 10 * MINUTE, 10)
    far_bar = Bar("ETHUSD", now + 10 * YEAR, "1m", 100.0, 101.0, 99.0, 100.5, 1.0)
    bad = [encode_tick(hostile(2**63 - 1)), encode_tick(hostile(now + 10 * YEAR)), encode_tick(hostile(1)),
           encode_tick(hostile(now + 10 * YEAR, "SOLUSD")), encode_bar(far_bar)]
    live_settings = live_settings.with_values({"buffer.grace_s": 0.2})
    endpoint = live_settings.control.endpoint
    db = live_settings.store.db
    system = start_system(live_settings)
    try:
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        for frames in bad[:3]:  # before any valid tick, then in the middle of the flow
            publisher.send_frames(frames)
        for i, tick in enumerate(first):
            publisher.send_tick(tick)
            if i == len(first) // 2:
                for frames in bad[3:]:
                    publisher.send_frames(frames)
        publisher.close()
        counters = received(endpoint, len(first) + len(bad))
        assert counters["rejected_by_reason"] == {"future_timestamp": 4, "old_timestamp": 1}
        assert (counters["ticks_rejected"], counters["bars_rejected"]) == (4, 1)
        assert counters["ticks_accepted"] == len(first)
        assert system.drain(timeout=20)
        counters = ctl(endpoint, "metrics")["counters"]
        assert counters["ticks_processed"] == len(first)
        assert counters["ticks_late"] == counters["ticks_refused"] == 0
        assert counters["bars"] > 0
        last_close = first[-1].ts // MINUTE * MINUTE + MINUTE
        # the last bar closes by the market clock (grace 0.2 s) and is stored before the stop
        wait_until(lambda: len([b for b in stored_bars(db) if b[1] == "1m" and b[2] == last_close]) == 3, 20,
                   "the last bars to be stored")
    finally:
        system.stop()
    bars = stored_bars(db)
    assert bars and all(ts <= (last_close // 86_400_000_000_000 + 1) * 86_400_000_000_000 for _, _, ts, _ in bars)
    assert [b for b in bars if b[1] == "1m" and (b[2] > last_close or b[3] == 0.0)] == []  # no filler, none ahead
    assert {b[0] for b in bars if b[1] == "1m"} == set(SYMBOLS)

    restarted = live_settings.with_values({"ingress.endpoint": free_endpoint(), "control.endpoint": free_endpoint(),
                                           "control.events": free_endpoint()})
    endpoint = restarted.control.endpoint
    system = start_system(restarted)
    try:
        publisher = Publisher(restarted.ingress.endpoint)
        publisher.wait_for_subscriber()
        publisher.send_frames(bad[1])
        for tick in second:
            publisher.send_tick(tick)
        publisher.close()
        counters = received(endpoint, len(second) + 1)
        assert counters["ticks_accepted"] == len(second) and counters["rejected_by_reason"] == {"future_timestamp": 1}
        assert system.drain(timeout=20)
        counters = ctl(endpoint, "metrics")["counters"]
        assert counters["ticks_processed"] == len(second)
        assert counters["ticks_late"] == counters["ticks_refused"] == 0
    finally:
        system.stop()
    after = [b for b in stored_bars(db) if b[1] == "1m"]
    closes = sorted({ts for _, _, ts, _ in after})
    assert closes[-1] > last_close and [b for b in after if b[3] == 0] == []
    assert closes == list(range(closes[0], closes[-1] + MINUTE, MINUTE))  # one series across the restart


def test_subscribe_validates_like_the_wire_and_changes_nothing_on_an_error(live_settings: Settings) -> None:
    settings = live_settings.with_values({"feed.max_symbols": 5})
    system = start_system(settings)
    endpoint = settings.control.endpoint
    try:
        def listed() -> list[str]:
            return system.query("feed", "watch")["watch"]

        for symbols, error in ((["ADAUSD", "BAD SYMBOL"], "bad symbol 'BAD SYMBOL'"), (["X" * 33], "bad symbol"),
                               ("ADAUSD,DOT\u00e9", "bad symbol"), ([5], '"symbols" must be'),
                               (["A", "B", "C"], "6 symbols to watch, over the limit of 5")):
            reply = ctl(endpoint, "subscribe", symbols=symbols)
            assert reply["ok"] is False and error in reply["error"], (symbols, reply)
            assert listed() == sorted(SYMBOLS)
        reply = ctl(endpoint, "subscribe", symbols="ADA.USD,DOT-USD")
        assert reply["symbols"] == sorted((*SYMBOLS, "ADA.USD", "DOT-USD"))
        reply = ctl(endpoint, "unsubscribe", symbols=[*SYMBOLS, "ADA.USD", "DOT-USD"])
        assert reply == {"ok": True, "symbols": []}

        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        ts = time.time_ns() - MINUTE
        publisher.send_tick(hostile(ts, "BTCUSD"))
        counters = received(endpoint, 1)
        assert counters["rejected_by_reason"] == {"unobserved_symbol": 1}  # empty means nothing, not everything

        assert ctl(endpoint, "subscribe", symbols="*")["symbols"] == ["*"]
        reply = ctl(endpoint, "unsubscribe", symbols="BTCUSD")
        assert reply["ok"] is False and "unsubscribe *" in reply["error"] and listed() == ["*"]
        for i in range(7):  # with *, at most feed.max_symbols distinct symbols are taken
            publisher.send_tick(hostile(ts + i, f"S{i}"))
        publisher.send_tick(hostile(ts + 7, "S0"))
        counters = received(endpoint, 9)
        assert counters["ticks_accepted"] == 6 and counters["rejected_by_reason"]["symbol_limit"] == 2
        assert ctl(endpoint, "unsubscribe", symbols="*") == {"ok": True, "symbols": []}
        publisher.close()
    finally:
        system.stop()


def test_an_ingress_off_loopback_without_curve_is_refused_in_one_line(tmp_path: Path) -> None:
    port = free_endpoint().rsplit(":", 1)[1]
    result = run_cli("live", "--feed", "external", "--ingress", f"tcp://0.0.0.0:{port}", "--control", free_endpoint(),
                     "--events", free_endpoint(), "--db", str(tmp_path / "unused.db"), "--duration", "5",
                     "--log-level", "WARNING")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to bind tcp://0.0.0.0:" in lines[0] and "--insecure-ingress" in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # refused before the database or its lock was touched
    with pytest.raises(ValueError, match="requires CURVE"):
        ingress_security(("tcp://127.0.0.1:1", "tcp://10.0.0.1:2"), "", "", False)
    assert ingress_security(("tcp://10.0.0.1:2",), "", "", True) is None
    assert ingress_security(("tcp://127.0.0.1:1", "ipc:///tmp/x"), "", "", False) is None


def test_a_curve_ingress_takes_ticks_from_a_known_key_only(live_settings: Settings, tmp_path: Path) -> None:
    server_public, server_secret = generate_keypair(tmp_path / "server", "server")
    _, client_secret = generate_keypair(tmp_path / "clients", "feeder")
    keys = ingress_security(("tcp://0.0.0.0:1",), str(server_secret), str(tmp_path / "clients"), False)
    assert keys == load_curve(str(server_secret), str(tmp_path / "clients"))
    endpoint = live_settings.ingress.endpoint
    system = start_system(live_settings, IngressSocket(endpoint, 1000, keys))
    plain = Publisher(endpoint)
    secure = zmq.Context.instance().socket(zmq.XPUB)
    try:
        with pytest.raises(TimeoutError):
            plain.wait_for_subscriber(timeout=1.0)  # no CURVE: the handshake never completes
        public, secret = zmq.auth.load_certificate(str(client_secret))
        secure.curve_secretkey, secure.curve_publickey = secret, public
        secure.curve_serverkey = zmq.auth.load_certificate(str(server_public))[0]
        secure.setsockopt(zmq.LINGER, 2000)
        secure.connect(endpoint)
        assert secure.poll(10_000)
        secure.recv()
        ts = time.time_ns() - MINUTE
        for i in range(3):
            secure.send_multipart(encode_tick(hostile(ts + i)))
        plain.send_tick(hostile(ts + 10))
        counters = received(live_settings.control.endpoint, 3)
        assert counters["ticks_accepted"] == 3
        secure.send_multipart([b"tick.BTCUSD", packb({"symbol": "BTCUSD", "ts": ts + 20, "last": 1.0})])
        counters = received(live_settings.control.endpoint, 4)
        assert counters["ticks_received"] == 4  # the plain publisher's tick never arrived
    finally:
        secure.close(0)
        plain.close()
        system.stop()


def test_oversized_requests_and_frames_are_refused_and_later_ones_served(live_settings: Settings) -> None:
    system = start_system(live_settings)
    endpoint = live_settings.control.endpoint
    try:
        for size, answered in ((100 * 1024, True), (2 * 1024 * 1024, False)):
            sock = zmq.Context.instance().socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send(packb({"cmd": "ping", "pad": "x" * size}))
            if answered:  # read, and refused with an error
                assert sock.poll(5000)
                assert "request too large" in unpackb(sock.recv())["error"]
            else:  # over the socket's MAXMSGSIZE: cut off by ZeroMQ, never read into memory
                assert not sock.poll(1000)
            sock.close(0)
        assert ctl(endpoint, "ping") == {"ok": True, "pong": True}

        ts = time.time_ns() - MINUTE
        big = Publisher(live_settings.ingress.endpoint)
        big.wait_for_subscriber()
        big.send_frames([b"tick.BTCUSD", b"x" * (100 * 1024)])  # over 64 KiB: read and rejected
        big.send_frames([b"tick.BTCUSD", b"x" * (2 * 1024 * 1024)])  # over MAXMSGSIZE: the peer is cut off
        big.close()
        publisher = Publisher(live_settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        publisher.send_tick(hostile(ts))
        publisher.close()
        counters = received(endpoint, 2)
        assert counters["rejected_by_reason"] == {"oversized": 1} and counters["ticks_accepted"] == 1
        assert system.health()["status"] == "healthy"
    finally:
        system.stop()


@pytest.mark.parametrize("compressed", [False, True])
def test_the_simulator_never_stamps_a_tick_ahead_of_the_clock_it_is_judged_by(compressed: bool) -> None:
    endpoint = free_endpoint()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.bind(endpoint)
    origin = time.time_ns() - SEC  # a second back: at 600x the wall clock is overtaken within 2 ms
    clock = CompressedClock(origin, 600.0) if compressed else None
    stop = threading.Event()
    sender = threading.Thread(target=run_simulator, args=(endpoint, SYMBOLS, 20_000.0, 600.0, 7, stop, 2000, origin),
                              kwargs={"clock": clock})
    sender.start()
    try:
        stamps = []
        while len(stamps) < 2000:
            assert sub.poll(10_000), f"{len(stamps)} ticks arrived"
            frames = sub.recv_multipart()
            judge = clock.now_ns() if clock is not None else time.time_ns()
            tick = decode_ingress(frames)
            assert isinstance(tick, Tick) and tick.ts <= judge
            stamps.append(tick.ts)
        assert stamps == sorted(stamps) and stamps[0] == origin
        # compressed: 2000 ticks at 20,000/s span 60 simulated seconds; capped: they stop at the wall clock
        assert (stamps[-1] - origin >= 59 * SEC) if compressed else (stamps[-1] - origin < 10 * SEC)
    finally:
        stop.set()
        sender.join(timeout=10)
        sub.close(0)
