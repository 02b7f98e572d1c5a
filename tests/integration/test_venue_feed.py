"""``live --feed venue`` as a real subprocess against the loopback Binance double with tickers
(tests/doubles/binance_ticker.py), through ccxt itself, every request rebased onto the double
(``--venue-url``): without the double's websocket the feed falls back to REST polling; with it, ccxt.pro
streams Binance's ticker events.

Real data: the double's BTC/USDT and ETH/USDT last prices walk through the monthly BTCUSD closes shipped
inside the ``backtesting`` package (backtesting.test.BTCUSD, 2012-2024, a public export), one close per
100 ms of the double's clock.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import zmq
from backtesting.test import BTCUSD

from messages.codec import unpackb

from tests.doubles.binance_ticker import TickerBinance
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(90)

TICKER = "/api/v3/ticker/24hr"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
SETTINGS = """
[feed]
stale_s = 1.5
[buffer]
timeframe = "1s"
timeframes = ["1s", "1m"]
[store]
ticks = true
[venue]
poll_s = 0.2
backoff_s = 0.1
feed_backoff_max_s = 0.5
timeout_s = 2.0
"""


@pytest.fixture
def venue(request: pytest.FixtureRequest) -> Iterator[TickerBinance]:
    """The double, its prices walking through real BTCUSD closes; with its websocket when the test's
    parameter says ``websocket``."""
    websocket = getattr(request, "param", "rest") == "websocket"
    with TickerBinance(SYMBOLS, path=tuple(BTCUSD["Close"].astype(float)), websocket=websocket) as double:
        yield double


def _args(venue: TickerBinance, tmp_path: Path, endpoints: dict[str, str], *extra: str,
          symbols: str = ",".join(SYMBOLS)) -> list[str]:
    settings = tmp_path / "settings.toml"
    settings.write_text(SETTINGS)
    return ["live", "--feed", "venue", "--venue", "binance", "--venue-url", venue.url, "--symbols", symbols,
            "--db", str(tmp_path / "venue.db"), "--settings", str(settings), "--ingress", endpoints["ingress"],
            "--control", endpoints["control"], "--events", endpoints["events"], *extra]


class Live:
    """A ``live --feed venue`` process and its control socket."""

    def __init__(self, process: subprocess.Popen[str], control: str) -> None:
        self.process, self.control = process, control

    def counters(self) -> dict[str, Any]:
        return ctl(self.control, "metrics")["counters"]

    def health(self) -> dict[str, Any]:
        return ctl(self.control, "health")

    def stop(self) -> tuple[str, str]:
        """Shut down through the control socket; return stdout and stderr after a clean exit."""
        assert ctl(self.control, "shutdown")["ok"]
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        return out, err


@pytest.fixture
def live(venue: TickerBinance, tmp_path: Path, endpoints: dict[str, str]) -> Iterator[Live]:
    process = start_cli(*_args(venue, tmp_path, endpoints, "--paper"))
    try:
        wait_for_control(endpoints["control"], process, timeout=30)
        yield Live(process, endpoints["control"])
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _grown(live: Live, ticks: int, bars: int) -> dict[str, Any] | None:
    c = live.counters()
    return c if c["ticks_accepted"] >= ticks and c["bars"] >= bars else None


def test_the_venues_tickers_become_ticks_and_bars_in_the_pipeline(live: Live, venue: TickerBinance,
                                                                  tmp_path: Path) -> None:
    first = wait_until(lambda: _grown(live, 8, 4), 30, "ticks and bars from the venue")
    wait_until(lambda: _grown(live, first["ticks_accepted"] + 4, first["bars"] + 2), 30, "more ticks and bars")
    health = live.health()
    assert {a["state"] for a in health["actors"].values()} == {"running"}
    feed = health["sources"]["venue_feed"]
    assert (feed["venue"], feed["state"], feed["via"], feed["outages"]) == ("binance", "up", "rest", 0)
    out, err = live.stop()
    assert "no websocket" in err and "polling REST" in err  # the double has none: rebased, it never left loopback
    assert venue.count(TICKER, 200) >= 4
    assert {r.path for r in venue.requests} <= {TICKER, "/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo",
                                                  "/dapi/v1/exchangeInfo"}
    with sqlite3.connect(tmp_path / "venue.db") as conn:
        ticks = pd.read_sql_query("SELECT symbol, ts, bid, ask, last, src FROM ticks ORDER BY symbol, ts", conn)
        bars = pd.read_sql_query("SELECT symbol, ts, open, high, low, close FROM bars WHERE timeframe='1s' "
                                 "ORDER BY symbol, ts", conn)
    assert set(ticks["symbol"]) == set(SYMBOLS) and set(ticks["src"]) == {"venue:binance"}
    # each tick is the double's ticker at the venue's own time: the real close it stood at, bid/ask a cent away
    for row in ticks.itertuples():
        bid, ask, last, ts_ms = venue.quote_at(row.symbol.replace("/", ""), row.ts // 1_000_000)
        assert (row.bid, row.ask, row.last, row.ts) == (bid, ask, last, ts_ms * 1_000_000)
    assert f"ticks     received {len(ticks):,}" in out
    # the 1s bars are the ticks' OHLC per second (close times, right-aligned)
    closed = bars.groupby("symbol")["ts"].max().to_dict()
    ticks["close_ts"] = (ticks["ts"] // 1_000_000_000 + 1) * 1_000_000_000
    expected = (ticks[ticks["close_ts"] <= ticks["symbol"].map(closed)]
                .groupby(["symbol", "close_ts"])["last"].agg(["first", "max", "min", "last"]).reset_index())
    expected.columns = ["symbol", "ts", "open", "high", "low", "close"]
    traded = bars.merge(expected[["symbol", "ts"]], on=["symbol", "ts"])  # seconds without a tick are filled bars
    pd.testing.assert_frame_equal(traded.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    assert len(expected) >= 4


@pytest.mark.parametrize("venue", ["rest", "websocket"], indirect=True)
def test_the_exchange_going_away_shows_stale_and_reconnecting_then_it_recovers(live: Live, venue: TickerBinance,
                                                                              request: pytest.FixtureRequest,
                                                                              endpoints: dict[str, str]) -> None:
    via = request.node.callspec.params["venue"]
    events = zmq.Context.instance().socket(zmq.SUB)
    events.setsockopt(zmq.LINGER, 0)
    events.setsockopt(zmq.SUBSCRIBE, b"health.venue_feed")
    events.connect(endpoints["events"])
    wait_until(lambda: _grown(live, 4, 2), 30, "ticks and bars from the venue")
    assert live.health()["sources"]["venue_feed"]["via"] == via
    venue.away()

    def down() -> dict[str, Any] | None:
        h = live.health()
        return h if set(h["stale"]) == set(SYMBOLS) and h["sources"]["venue_feed"]["state"] == "reconnecting" else None

    health = wait_until(down, 20, "both symbols stale and the feed reconnecting")
    assert health["status"] == "degraded"
    assert health["sources"]["venue_feed"]["failures"] >= 1 and health["sources"]["venue_feed"]["last_error"]
    during = live.counters()
    assert during["stale_episodes"] == 2
    if via == "rest":  # as ctl health prints it
        shown = run_cli("ctl", "health", "--control", endpoints["control"]).stdout
        assert "status: degraded" in shown and "stale: BTC/USDT, ETH/USDT" in shown
        assert "venue_feed: binance reconnecting via rest for " in shown and "(last error: " in shown
    venue.back()

    def up() -> dict[str, Any] | None:
        h = live.health()
        return h if not h["stale"] and h["sources"]["venue_feed"]["state"] == "up" else None

    health = wait_until(up, 20, "the feed up and the symbols fresh again")
    assert health["sources"]["venue_feed"]["outages"] == 1 and health["sources"]["venue_feed"]["via"] == via
    wait_until(lambda: _grown(live, during["ticks_accepted"] + 4, during["bars"] + 2), 30, "bars after the outage")
    published = []
    while events.poll(0):
        published.append(unpackb(events.recv_multipart()[1]))
    events.close()
    assert [(e["change"], e["state"], e["outages"]) for e in published] == [("outage", "reconnecting", 1),
                                                                           ("recovered", "up", 1)]
    _, err = live.stop()
    assert err.count("no answer") == 1 and err.count(f"data again through {via}") == 1  # once each, not per try
    assert "data again from" in err  # the feed actor: the symbols are fresh again
    assert ("polling REST" in err) == (via == "rest")
    if via == "websocket":
        assert venue.streams >= 2 and venue.count(TICKER) == 0  # reconnected, never polled


def test_no_tick_is_sent_twice_when_the_prices_do_not_change(live: Live, venue: TickerBinance) -> None:
    wait_until(lambda: _grown(live, 4, 0), 30, "ticks from the venue")
    venue.hold()
    polls = venue.count(TICKER, 200)
    wait_until(lambda: venue.count(TICKER, 200) >= polls + 4, 30, "four more polls of held prices")
    # the first poll after the hold may still bring the held tickers; the next ones repeat them
    wait_until(lambda: live.health()["sources"]["venue_feed"]["repeats_dropped"] >= 6, 30, "repeats dropped")
    out, _ = live.stop()
    served = venue.served
    assert len(set(served)) < len(served)  # the same tickers were served again and again
    assert f"ticks     received {len(set(served)):,}  accepted {len(set(served)):,}" in out


@pytest.mark.parametrize(("symbols", "message"), [
    ("BTC/USDT,DOGE/USDT", "binance lists no DOGE/USDT; symbols are ccxt's, e.g. BTC/USDT"),
    ("BTCUSDT", "binance lists no BTCUSDT"),
])
def test_a_symbol_the_venue_does_not_list_is_one_line_and_exit_2(venue: TickerBinance, tmp_path: Path,
                                                                 endpoints: dict[str, str], symbols: str,
                                                                 message: str) -> None:
    result = run_cli(*_args(venue, tmp_path, endpoints, symbols=symbols))
    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if "error" in line]
    assert message in line and "Traceback" not in result.stderr
    assert not (tmp_path / "venue.db").exists()  # nothing started, nothing written
    assert venue.count(TICKER) == 0
