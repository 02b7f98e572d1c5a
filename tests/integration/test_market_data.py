"""Market data through a live system over real sockets: a dirty feed, the seam between stored
history and live data, cryptofeed's ZeroMQ backend, stale symbols and quiet markets."""

from __future__ import annotations

import math
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from actors.store.writer import Database
from messages.codec import packb
from messages.cryptofeed import encode_cryptofeed
from messages.market import Tick
from messages.system import Crash
from settings import Settings
from supervisors.deps import Deps
from supervisors.modes import load_backtest_bars
from supervisors.system import System
from tests.conftest import free_endpoint
from tests.helpers import ctl, wait_until

pytestmark = pytest.mark.timeout(90)

SEC = 1_000_000_000
MINUTE = 60 * SEC
T0 = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")
# These tests replay history far faster than real time; the market clock (latest tick + wall time)
# would close bars early if the test's own publisher thread stalled for longer than the grace.
REPLAY_GRACE = {"buffer.grace_s": 5.0}


def start_system(settings: Settings) -> System:
    cryptofeed = IngressSocket(settings.ingress.cryptofeed, 1_000_000) if settings.ingress.cryptofeed else None
    deps = Deps.of(settings, "live", ingress=IngressSocket(settings.ingress.endpoint, 1_000_000), cryptofeed=cryptofeed)
    system = System(settings, "live", deps)
    system.start()
    return system


def stored_bars(db: str, up_to: int | None = None) -> list[tuple]:
    query = "SELECT symbol, timeframe, ts, open, high, low, close, volume FROM bars"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(query + (" WHERE ts <= ?" if up_to else "") + " ORDER BY symbol, timeframe, ts",
                            (up_to,) if up_to else ()).fetchall()
    return rows


# ---------------------------------------------------------------------------------------------
# The dirty feed: every tick twice, shuffled within each second, 1% garbage, late ticks, silence

SILENCE_AT = 6_000          # index of the first tick after the publisher's silence
DATA_GAP = 60 * SEC         # the silence is a quiet minute in the data too
SILENCE_S = 10.0
GARBAGE = [b"\xc1not msgpack", packb([1, 2]), packb({"symbol": "BTCUSD", "ts": 5, "bid": 2.0, "ask": 1.0}),
           packb({"symbol": "BTCUSD", "ts": 5, "last": -1.0}), packb({"symbol": "BTCUSD", "last": 1.0})]
GARBAGE_REASONS = ("not_msgpack", "not_a_map", "crossed_quote", "bad_price", "missing_field")


def clean_ticks(n: int = 10_000) -> list[Tick]:
    """Three symbols, a tick every 400 ms, ~68 minutes of data with a quiet minute at SILENCE_AT."""
    out = []
    for i in range(n):
        k = i // 3
        price = 100.0 * (1 + 0.05 * math.sin(k / 150)) + 0.37 * math.sin(i) + i % 3
        ts = T0 + i * 400_000_000 + (DATA_GAP if i >= SILENCE_AT else 0)
        out.append(Tick(SYMBOLS[i % 3], ts, round(price - 0.01, 4), round(price + 0.01, 4), round(price, 4),
                        round(0.1 + (i % 7) * 0.13, 2)))
    return out


def shuffled_twice(ticks: list[Tick], rng: random.Random) -> list[Tick]:
    by_second: dict[int, list[Tick]] = {}
    for tick in ticks + ticks:
        by_second.setdefault(tick.ts // SEC, []).append(tick)
    out: list[Tick] = []
    for second in sorted(by_second):
        group = by_second[second]
        rng.shuffle(group)
        out += group
    return out


def test_a_dirty_feed_gives_the_clean_feeds_bars_and_counts_what_was_wrong(live_settings: Settings,
                                                                            tmp_path: Path) -> None:
    settings = live_settings.with_values({"feed.stale_s": 3.0, **REPLAY_GRACE})
    clean = clean_ticks()
    cut = max(t.ts for t in clean) // MINUTE * MINUTE   # bars closing by then were closed by ticks

    # the clean stream, once, in order
    reference = settings.with_values({"store.db": str(tmp_path / "clean.db"), "ingress.endpoint": free_endpoint(),
                                      "control.endpoint": free_endpoint(), "control.events": free_endpoint()})
    system = start_system(reference)
    try:
        publisher = Publisher(reference.ingress.endpoint)
        publisher.wait_for_subscriber()
        for seq, tick in enumerate(clean, start=1):
            publisher.send_tick(tick._replace(src="pub", seq=seq))
        publisher.close()
        wait_until(lambda: system.counters.get("ticks_received") == len(clean), 30, "the clean stream")
        assert system.drain(timeout=20)
        assert system.counters.get("ticks_duplicate") == system.counters.get("ticks_late") == 0
    finally:
        system.stop()
    expected = stored_bars(reference.store.db, cut)

    # the dirty stream
    rng = random.Random(2024)
    noisy = shuffled_twice(clean, rng)
    split = next(i for i, t in enumerate(noisy) if t.ts >= clean[SILENCE_AT].ts)
    late = [Tick("BTCUSD", T0 + 30 * SEC + k, 1.0, 1.5, 1.25 + k, 9.0) for k in range(25)]  # a bar long closed
    system = start_system(settings)
    endpoint = settings.control.endpoint
    try:
        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        seq = sent = garbage = 0

        def send(ticks: list[Tick]) -> None:
            nonlocal seq, sent, garbage
            for tick in ticks:
                seq += 2 if seq in (999, 7_777, 15_000) else 1    # three numbers skipped: three "lost" messages
                publisher.send_tick(tick._replace(src="pub", seq=seq))
                sent += 1
                if sent % 100 == 0:
                    publisher.send_frames([b"tick.BTCUSD", GARBAGE[garbage % len(GARBAGE)]])
                    garbage += 1

        send(noisy[:split])
        wait_until(lambda: system.counters.get("ticks_received") == split + garbage, 30, "the first part")
        silent_since = time.monotonic()
        health = wait_until(lambda: (h := ctl(endpoint, "health"))["stale"] == list(SYMBOLS) and h, 15,
                            "every symbol to be stale")
        assert health["status"] == "degraded"
        assert all(a["state"] == "running" for a in health["actors"].values())
        threading.Event().wait(max(0.0, SILENCE_S - (time.monotonic() - silent_since)))   # the rest of the silence
        send(noisy[split:split + 100] + late + noisy[split + 100:])
        publisher.close()
        total = len(noisy) + len(late) + garbage
        wait_until(lambda: system.counters.get("ticks_received") == total, 30, "every message")
        assert system.drain(timeout=20)
        health = ctl(endpoint, "health")
        assert (health["status"], health["stale"]) == ("healthy", [])
        c = ctl(endpoint, "metrics")["counters"]
    finally:
        system.stop()

    assert garbage == 200                                # 1% of the 20,000 ticks
    assert c["ticks_received"] == total == c["ticks_accepted"] + c["ticks_rejected"]
    assert c["ticks_rejected"] == garbage
    assert c["rejected_by_reason"] == {reason: 40 for reason in GARBAGE_REASONS}
    assert c["ticks_duplicate"] == len(clean)            # every tick was sent twice
    assert c["ticks_late"] == len(late)
    assert c["stale_episodes"] == len(SYMBOLS)           # the silence, once per symbol
    assert c["seq_gaps"] == 3
    assert c["ticks_processed"] == c["ticks_accepted"] and c["ticks_dead_lettered"] == 0
    got = stored_bars(settings.store.db, cut)
    assert {tf for _, tf, *_ in expected} == {"1m", "5m", "15m", "1h"}
    assert len(expected) > 250
    assert got == expected                               # identical bars, every timeframe


# ---------------------------------------------------------------------------------------------
# History and live as one series


def minute_ticks(start_min: int, end_min: int, step_s: int = 5) -> list[Tick]:
    """Every symbol every ``step_s`` seconds from ``start_min`` (inclusive) to ``end_min`` (exclusive)."""
    out = []
    for s in range(start_min * 60, end_min * 60, step_s):
        for j, symbol in enumerate(SYMBOLS):
            price = 100.0 + 10 * j + 3 * math.sin(s / 400) + (s % 7) * 0.01
            out.append(Tick(symbol, T0 + s * SEC, price - 0.01, price + 0.01, price, 1.0))
    return out


def run_live(settings: Settings, ticks: list[Tick], before_ticks=None) -> tuple[dict, dict]:
    system = start_system(settings)
    try:
        extra = before_ticks(system) if before_ticks else None
        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        for tick in ticks:
            publisher.send_tick(tick)
        publisher.close()
        wait_until(lambda: system.counters.get("ticks_received") == len(ticks), 20, "every tick")
        assert system.drain(timeout=20)
        return system.counters.snapshot(), extra
    finally:
        system.stop()


def test_live_continues_the_stored_series_with_no_duplicate_or_missing_bar_at_the_seam(live_settings: Settings) -> None:
    # ma_model reads the model, so a model exists to see the history
    settings = live_settings.with_values({"buffer.lookback": 50, "strategy.name": "ma_model", **REPLAY_GRACE})
    first = minute_ticks(0, 40) + [Tick(s, T0 + 40 * MINUTE, 99.0, 99.5, 99.25, 1.0) for s in SYMBOLS]
    counters, _ = run_live(settings, first)
    assert counters["ticks_late"] == 0
    before = stored_bars(settings.store.db)
    assert max(ts for _, tf, ts, *_ in before if tf == "1m") == T0 + 40 * MINUTE

    def warmed(system: System) -> dict:
        # before the first live tick: the stored bars went down the pipeline, and nothing traded on them
        models = wait_until(lambda: system.query("model", "models") or None, 10, "the history to reach the model")
        return {"models": models, "signals": system.counters.get("signals"), "orders": system.counters.get("orders")}

    second = ([Tick("BTCUSD", T0 + 39 * MINUTE + 30 * SEC, 1.0, 2.0, 1.5, 5.0)]   # late: its bar is stored
              + minute_ticks(40, 62)[3:])                                           # 40:00 itself was sent before
    counters, extra = run_live(settings, second, warmed)
    assert extra["signals"] == extra["orders"] == 0
    assert extra["models"]["BTCUSD/1m"]["updates"] > 0 and "BTCUSD/15m" not in extra["models"]  # only what trades
    assert counters["ticks_late"] == 1

    after = stored_bars(settings.store.db)
    assert [row for row in after if row[2] <= T0 + 40 * MINUTE] == before    # stored history untouched
    lengths = {"1m": MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "1h": 60 * MINUTE}
    for symbol in SYMBOLS:
        for timeframe, length in lengths.items():
            times = [ts for s, tf, ts, *_ in after if s == symbol and tf == timeframe]
            assert times == list(range(times[0], times[-1] + 1, length)), (symbol, timeframe)  # none missing
        one = {ts: row for s, tf, ts, *row in after if s == symbol and tf == "1m"}
        for timeframe in ("15m", "1h"):  # the bars spanning the seam are whole: stored + live 1m bars
            end = T0 + (45 if timeframe == "15m" else 60) * MINUTE
            parts = [one[t] for t in range(end - lengths[timeframe] + MINUTE, end + 1, MINUTE)]
            bar = next(row for s, tf, ts, *row in after if s == symbol and tf == timeframe and ts == end)
            assert bar == [parts[0][0], max(p[1] for p in parts), min(p[2] for p in parts), parts[-1][3],
                           math.fsum(p[4] for p in parts)]

    # the store brought the columnar copy up to date when it stopped, so a backtest reads it alone
    db = Database(settings.store.db)
    try:
        assert db.bar_copy_state().current
        pd.testing.assert_frame_equal(db.read_bars(None, None, None), db.read_bar_rows(None, None, None),
                                      check_exact=True)
    finally:
        db.close()
    # a backtest from the database replays exactly what live built: each symbol's finest timeframe
    replay, source = load_backtest_bars(None, settings.store.db, T0, None, None)
    assert source.startswith("database")
    assert sorted(map(tuple, replay[["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]]
                      .itertuples(index=False))) == [row for row in after if row[1] == "1m"]
    hourly, _ = load_backtest_bars(None, settings.store.db, T0, None, None, "1h")
    assert set(hourly["timeframe"]) == {"1h"} and len(hourly) == len(SYMBOLS)


# ---------------------------------------------------------------------------------------------
# cryptofeed


def cryptofeed_settings(settings: Settings) -> Settings:
    return settings.with_values({"ingress.cryptofeed": free_endpoint(),
                                 "feed.symbols": ["BINANCE:BTC-USDT", "COINBASE:ETH-USD"]})


def test_frames_in_cryptofeeds_format_feed_the_pipeline(live_settings: Settings) -> None:
    settings = cryptofeed_settings(live_settings)
    system = start_system(settings)
    try:
        publisher = Publisher(settings.ingress.cryptofeed)
        publisher.wait_for_subscriber()
        for i in range(180):
            publisher.send_frames(encode_cryptofeed("ticker", {
                "exchange": "BINANCE", "symbol": "BTC-USDT", "bid": 100.0 + i, "ask": 100.5 + i,
                "timestamp": 1717200000.0 + i, "receipt_timestamp": 1717200000.2 + i}))
        publisher.send_frames(encode_cryptofeed("trades", {
            "exchange": "COINBASE", "symbol": "ETH-USD", "side": "sell", "amount": 2.0, "price": 3000.0, "id": "9",
            "type": None, "timestamp": 1717200000.5, "receipt_timestamp": 1717200000.6}))
        publisher.send_frames(encode_cryptofeed("book", {"exchange": "BINANCE", "symbol": "BTC-USDT"}))
        publisher.send_frames([b"BINANCE-ticker-BTC-USDT {broken"])
        publisher.close()
        wait_until(lambda: system.counters.get("ticks_received") == 183, 10, "every message")
        assert system.drain(timeout=10)
        c = system.counters.snapshot()
        assert (c["ticks_accepted"], c["ticks_rejected"]) == (181, 2)
        assert c["rejected_by_reason"] == {"unsupported_channel": 1, "not_json": 1}
        assert c["ticks_processed"] == 181
    finally:
        system.stop()
    bars = [row for row in stored_bars(settings.store.db, T0 + 2 * MINUTE) if row[1] == "1m"]
    assert [(s, ts, o, h, low, close, v) for s, _, ts, o, h, low, close, v in bars] == [
        ("BINANCE:BTC-USDT", T0 + MINUTE, 100.25, 159.25, 100.25, 159.25, 0.0),
        ("BINANCE:BTC-USDT", T0 + 2 * MINUTE, 160.25, 219.25, 160.25, 219.25, 0.0),
        # the trade's minute was closed by the market clock (the ticker ran on), then a quiet minute
        ("COINBASE:ETH-USD", T0 + MINUTE, 3000.0, 3000.0, 3000.0, 3000.0, 2.0),
        ("COINBASE:ETH-USD", T0 + 2 * MINUTE, 3000.0, 3000.0, 3000.0, 3000.0, 0.0)]


def test_cryptofeeds_own_zeromq_backend_feeds_the_ingress(live_settings: Settings) -> None:
    pytest.importorskip("cryptofeed.backends.zmq")
    settings = cryptofeed_settings(live_settings)
    system = start_system(settings)
    port = settings.ingress.cryptofeed.rsplit(":", 1)[1]
    script = Path(__file__).with_name("cryptofeed_backend.py")
    process = subprocess.Popen([sys.executable, str(script), port, "150", "40"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def probed() -> bool:  # a probe from each backend: its connection is up
            reasons = system.counters.snapshot()["rejected_by_reason"]
            return reasons.get("unobserved_symbol", 0) >= 3 and reasons.get("bad_timestamp", 0) >= 3

        wait_until(lambda: probed() or process.poll() is not None, 30, "cryptofeed's backends to connect")
        assert process.poll() is None, process.stderr.read()
        process.stdin.write("trades\n")
        process.stdin.flush()
        wait_until(lambda: system.counters.get("ticks_accepted") == 40, 20, "the trades")
        process.stdin.write("tickers\n")
        process.stdin.flush()
        wait_until(lambda: system.counters.get("ticks_accepted") == 190, 20, "the tickers")
        assert system.drain(timeout=10)
        c = system.counters.snapshot()
        assert set(c["rejected_by_reason"]) == {"unobserved_symbol", "bad_timestamp"}  # only the probes
        assert c["ticks_processed"] == 190
    finally:
        if process.poll() is None:
            process.stdin.close()
            process.wait(timeout=10)
        system.stop()
    bars = {(s, tf): (o, h, low, close, v) for s, tf, ts, o, h, low, close, v in stored_bars(settings.store.db)
            if ts == T0 + MINUTE}
    assert bars[("BINANCE:BTC-USDT", "1m")] == (64000.25, 64016.25, 64000.25, 64000.25 + 59 % 17, 0.0)
    assert bars[("COINBASE:ETH-USD", "1m")] == (3000.25, 3004.25, 3000.25, 3000.25 + 39 % 5, 20.0)


# ---------------------------------------------------------------------------------------------
# Stale symbols and quiet markets


def keep_publishing(endpoint: str, symbols: list[str], stop: threading.Event) -> None:
    """Publish a tick for each symbol in ``symbols`` (a list the test may change) every 50 ms."""
    publisher = Publisher(endpoint)
    publisher.wait_for_subscriber()
    k = 0
    while not stop.wait(0.05):
        k += 1
        for symbol in list(symbols):
            publisher.send_tick(Tick(symbol, T0 + k * SEC, 1.0, 1.1, 1.05, 1.0))
    publisher.close()


def test_a_symbol_without_data_is_stale_in_health_until_its_ticks_resume(live_settings: Settings) -> None:
    settings = live_settings.with_values({"feed.stale_s": 2.0})
    system = start_system(settings)
    endpoint = settings.control.endpoint
    symbols, stop = ["BTCUSD"], threading.Event()
    thread = threading.Thread(target=keep_publishing, args=(settings.ingress.endpoint, symbols, stop), daemon=True)
    thread.start()
    try:
        health = wait_until(lambda: (h := ctl(endpoint, "health"))["stale"] == ["ETHUSD", "SOLUSD"] and h, 10,
                            "two stale symbols")
        assert health["status"] == "degraded"
        assert ctl(endpoint, "metrics")["counters"]["stale_episodes"] == 2
        symbols.append("ETHUSD")
        wait_until(lambda: ctl(endpoint, "health")["stale"] == ["SOLUSD"], 10, "ETHUSD to be fresh again")
        ctl(endpoint, "unsubscribe", symbols="SOLUSD")
        health = wait_until(lambda: (h := ctl(endpoint, "health"))["stale"] == [] and h, 10, "no stale symbol")
        assert health["status"] == "healthy"
        ctl(endpoint, "subscribe", symbols="XRPUSD")
        wait_until(lambda: ctl(endpoint, "health")["stale"] == ["XRPUSD"], 10, "the new symbol to be stale")
        assert ctl(endpoint, "metrics")["counters"]["stale_episodes"] == 3
    finally:
        stop.set()
        thread.join(timeout=10)
        system.stop()


def test_a_quiet_market_closes_its_bar_by_the_clock_and_a_later_tick_for_it_is_late(live_settings: Settings) -> None:
    settings = live_settings.with_values({"buffer.grace_s": 0.2, "feed.symbols": ["BTCUSD"], "store.ticks": True})
    system = start_system(settings)
    try:
        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        for k, price in enumerate((10.0, 12.0, 9.0, 11.0)):
            publisher.send_tick(Tick("BTCUSD", T0 + 59 * SEC + k * 200_000_000, price, price, price, 1.0))
        # no later tick: the market clock (last tick + wall time) passes 00:01:00 + grace
        wait_until(lambda: system.counters.get("bars") >= 1, 10, "the bar to close by the clock")
        publisher.send_tick(Tick("BTCUSD", T0 + 59_900_000_000, 50.0, 50.0, 50.0, 1.0))
        wait_until(lambda: system.counters.get("ticks_received") == 5, 10, "the late tick")
        assert system.drain(timeout=10)
        assert system.counters.get("ticks_late") == 1
        publisher.close()
    finally:
        system.stop()
    (bar, *_) = stored_bars(settings.store.db)
    assert bar == ("BTCUSD", "1m", T0 + MINUTE, 10.0, 12.0, 9.0, 11.0, 4.0)
    with sqlite3.connect(settings.store.db) as conn:   # the ticks the bar was built from; not the late one
        assert [row[0] for row in conn.execute("SELECT last FROM ticks ORDER BY ts")] == [10.0, 12.0, 9.0, 11.0]


def test_buffer_crashes_between_ticks_of_open_bars_change_no_bar(live_settings: Settings) -> None:
    stream = clean_ticks(2_400)  # 16 minutes of three symbols; each crash lands inside open bars

    def run(settings: Settings, crash_after: tuple[int, ...]) -> tuple[list[tuple], dict]:
        system = start_system(settings)
        try:
            publisher = Publisher(settings.ingress.endpoint)
            publisher.wait_for_subscriber()
            for i, tick in enumerate(stream, start=1):
                publisher.send_tick(tick)
                if i in crash_after:
                    wait_until(lambda: system.counters.get("ticks_processed") == i, 10, "the ticks before the crash")
                    system.registry.tell("buffer", Crash("test"))
            wait_until(lambda: system.counters.get("ticks_received") == len(stream), 20, "every tick")
            assert system.drain(timeout=20)
            publisher.close()
            counters = system.counters.snapshot()
        finally:
            system.stop()
        return stored_bars(settings.store.db, up_to=stream[-1].ts - MINUTE), counters

    settings = live_settings.with_values(REPLAY_GRACE)
    clean, _ = run(settings, ())
    crashed_settings = settings.with_values({
        "store.db": settings.store.db.replace("live.db", "crashed.db"), "ingress.endpoint": free_endpoint(),
        "control.endpoint": free_endpoint(), "control.events": free_endpoint()})
    crashed, counters = run(crashed_settings, (350, 1_001, 1_700))
    assert counters["dead_letters"] == 3 and counters["ticks_dead_lettered"] == 0
    assert counters["ticks_processed"] == len(stream)
    assert len(clean) > 30 and crashed == clean
