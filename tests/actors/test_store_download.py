"""The download's parts: which spans are missing, endpoints rebased, retries through real ccxt against the
Binance double, and the catalog (gaps, export, delete) on real sqlite files.

Real data: GOOG daily bars shipped inside the ``backtesting`` package (backtesting.test, a public Yahoo
export).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.pro
import numpy as np
import pandas as pd
import pytest
from backtesting.test import GOOG

from actors.store import catalog
from actors.store.download import missing_spans
from actors.store.exchange import Retry, VenueError, open_venue, rebase_urls
from actors.store.history import load_bar_file
from actors.store.writer import Database
from messages.market import BarFrame
from supervisors.errors import DataError
from tests.doubles.binance import BinanceDouble

pytestmark = pytest.mark.timeout(30)

M = 60 * 10**9  # a minute in ns


@pytest.fixture
def venue() -> Iterator[BinanceDouble]:
    with BinanceDouble() as double:
        yield double


@pytest.mark.parametrize("stored, start, end, spans", [
    ([], 0, 10 * M, [(0, 10 * M)]),
    ([], 10 * M, 10 * M, []),
    ([M * i for i in range(1, 11)], 0, 10 * M, []),  # all there
    ([M * i for i in range(4, 11)], 0, 10 * M, [(0, 3 * M)]),  # the head is missing
    ([M * i for i in range(1, 8)], 0, 10 * M, [(7 * M, 10 * M)]),  # the tail
    ([M * i for i in range(1, 11) if i not in (4, 5)], 0, 10 * M, [(3 * M, 5 * M)]),  # a gap of two bars
    ([M * i for i in range(1, 8)], 0, 7 * M + M // 2, []),  # no further bar closes by the end
    ([M * i for i in range(-5, 3)] + [20 * M], 0, 5 * M, [(2 * M, 5 * M)]),  # bars outside the range do not count
])
def test_missing_spans(stored: list[int], start: int, end: int, spans: list[tuple[int, int]]) -> None:
    assert missing_spans(np.array(stored, dtype=np.int64), M, start, end) == spans


def _urls(api: Any) -> list[str]:
    if isinstance(api, dict):
        return [u for value in api.values() for u in _urls(value)]
    if isinstance(api, list):
        return [u for value in api for u in _urls(value)]
    return [api] if isinstance(api, str) and "://" in api else []


@pytest.mark.parametrize("venue_id", ["binance", "kraken", "okx", "bybit", "coinbase"])
def test_rebase_moves_every_rest_and_websocket_endpoint_onto_the_url(venue_id: str) -> None:
    original = getattr(ccxt.pro, venue_id)().urls["api"]
    rebased = _urls(rebase_urls(original, "http://127.0.0.1:9/proxy"))
    assert len(rebased) == len(_urls(original)) > 0
    assert any(u.startswith("ws://") for u in rebased)  # ccxt.pro's websocket endpoints are among them
    assert {(p.scheme, p.netloc, p.path.split("/")[1]) for p in map(urlsplit, rebased)} <= {
        ("http", "127.0.0.1:9", "proxy"), ("ws", "127.0.0.1:9", "proxy")}, rebased
    secure = _urls(rebase_urls(original, "https://testnet.example.com"))
    assert {(p.scheme, p.netloc) for p in map(urlsplit, secure)} == {("https", "testnet.example.com"),
                                                                     ("wss", "testnet.example.com")}


def test_a_rebased_venue_is_served_by_the_double_alone(venue: BinanceDouble) -> None:
    exchange = open_venue("binance", venue.url, timeout_s=5)
    assert exchange.enableRateLimit
    exchange.load_markets()
    bars = exchange.fetch_ohlcv("BTC/USDT", "1h", 1_704_067_200_000, 3)
    assert [b[0] for b in bars] == [1_704_067_200_000 + i * 3_600_000 for i in range(3)]
    assert [r.path for r in venue.requests] == ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo",
                                                "/dapi/v1/exchangeInfo", "/api/v3/klines"]


def test_an_unknown_venue_is_refused_in_one_line() -> None:
    with pytest.raises(DataError, match="unknown venue 'binanse'; did you mean binance"):
        open_venue("binanse")


def test_retries_back_off_with_jitter_then_fail_in_one_line(venue: BinanceDouble) -> None:
    exchange = open_venue("binance", venue.url, timeout_s=5)
    venue.fail("/api/v3/time", 503, times=4)
    waits: list[float] = []
    retry = Retry(retries=3, backoff_s=1.0, sleep=waits.append, rng=random.Random(7))
    with pytest.raises(VenueError) as failed:
        retry.call(exchange, "fetch_time", exchange.fetch_time)
    assert str(failed.value).startswith("binance: fetch_time failed after 4 tries: ")
    assert "\n" not in str(failed.value)
    assert [0.5 <= waits[0] <= 1, 1 <= waits[1] <= 2, 2 <= waits[2] <= 4] == [True] * 3
    assert len(set(waits)) == 3 and retry.retried == 3
    assert venue.count("/api/v3/time", 503) == 4


def test_a_retry_waits_as_long_as_the_venue_asks(venue: BinanceDouble) -> None:
    exchange = open_venue("binance", venue.url, timeout_s=5)
    venue.fail("/api/v3/time", 429, retry_after=7)
    waits: list[float] = []
    assert Retry(backoff_s=0.01, sleep=waits.append).call(exchange, "fetch_time", exchange.fetch_time) > 0
    assert waits == [7.0]


def test_an_error_a_repeat_cannot_cure_is_not_repeated(venue: BinanceDouble) -> None:
    exchange = open_venue("binance", venue.url, timeout_s=5)
    waits: list[float] = []
    with pytest.raises(VenueError, match="refused: BadSymbol"):
        Retry(sleep=waits.append).call(exchange, "klines", lambda: exchange.publicGetKlines(
            {"symbol": "NOPEUSDT", "interval": "1m"}))
    assert waits == [] and venue.count("/api/v3/klines", 400) == 1


def _goog(db: Database) -> pd.DataFrame:
    closes = (GOOG.index + pd.Timedelta(days=1)).tz_localize("UTC").as_unit("ns").asi8  # close: the next midnight
    columns = {k.lower(): GOOG[k].to_numpy() for k in ("Open", "High", "Low", "Close", "Volume")}
    db.write_frames([BarFrame.from_columns("GOOG", "1d", ts=closes, **columns)])
    db.commit()
    return pd.DataFrame({"ts": closes, **columns})


def test_the_catalog_counts_gaps_of_real_daily_bars(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    bars = _goog(db)
    days = np.diff(bars["ts"].to_numpy()) // (86_400 * 10**9)
    [series] = catalog.list_series(db)
    assert (series.rows, series.first_ts, series.last_ts) == (2148, bars["ts"].iloc[0], bars["ts"].iloc[-1])
    assert (series.gaps, series.missing, series.source) == (int((days > 1).sum()), int((days - 1).sum()), None)
    assert series.gaps > 400  # weekends and holidays: counted, not judged
    _, gaps = catalog.find_gaps(db, "GOOG")
    assert len(gaps) == series.gaps and sum(g.missing for g in gaps) == series.missing
    first = int(np.flatnonzero(days > 1)[0])
    assert gaps[0] == catalog.Gap(int(bars["ts"].iloc[first]), int(bars["ts"].iloc[first + 1]), int(days[first] - 1))
    db.close()


def test_a_daily_series_at_local_midnight_has_no_gap_where_daylight_saving_moves_it(tmp_path: Path) -> None:
    days = pd.date_range("2024-03-01", "2024-03-20", freq="D", tz="America/New_York")  # DST starts on 03-10
    db = Database(tmp_path / "x.db")
    for symbol, chosen in (("ALL", days), ("HOLE", days.delete(12))):
        ts = chosen.tz_convert("UTC").as_unit("ns").asi8
        ones = np.ones(len(ts))
        db.write_frames([BarFrame.from_columns(symbol, "1d", ts=ts, open=ones, high=ones, low=ones, close=ones,
                                               volume=ones)])
    db.commit()
    found = {s.symbol: (s.gaps, s.missing) for s in catalog.list_series(db)}
    assert found == {"ALL": (0, 0), "HOLE": (1, 1)}
    db.close()


@pytest.mark.parametrize("name", ["goog.csv", "goog.csv.gz", "goog.parquet"])
def test_an_export_reads_back_as_the_stored_bars(tmp_path: Path, name: str) -> None:
    db = Database(tmp_path / "x.db")
    bars = _goog(db)
    series, path = catalog.export_series(db, "GOOG", tmp_path / name)
    db.close()
    back = load_bar_file(path, symbol="GOOG")
    assert series.rows == len(back) == 2148
    assert set(back["timeframe"]) == {"1d"}
    pd.testing.assert_frame_equal(back[list(bars.columns)], bars.astype({"volume": np.float64}))


def test_export_and_delete_refuse_what_is_not_there(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    _goog(db)
    with pytest.raises(DataError, match="name a .csv, .csv.gz or .parquet file"):
        catalog.export_series(db, "GOOG", tmp_path / "goog.xlsx")
    with pytest.raises(DataError, match=r"no 1h bars of GOOG in .*; stored: 1d"):
        catalog.delete_series(db, "GOOG", "1h")
    with pytest.raises(DataError, match=r"no bars of MSFT in .*; stored: GOOG"):
        catalog.delete_series(db, "MSFT")
    assert catalog.list_series(db)[0].rows == 2148  # nothing deleted
    [deleted] = catalog.delete_series(db, "GOOG")
    assert deleted.rows == 2148 and catalog.list_series(db) == []
    assert db.read_bars(["GOOG"], None, None).empty  # the columnar copy forgot it too
    db.close()


def test_text_table_aligns_columns() -> None:
    table = catalog.text_table(["name", "rows"], [["a", "1"], ["long name", "1,000"]], right={1})
    assert table.splitlines() == ["name        rows", "a              1", "long name  1,000"]
