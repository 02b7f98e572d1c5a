"""``run.py download`` and ``run.py data`` as real subprocesses, against the loopback Binance double
(tests/doubles/binance.py) through ccxt itself, on real sqlite files.

Real data, shipped inside the ``backtesting`` package (backtesting.test, public Yahoo/Kaggle exports):
EURUSD hourly bars served by the double and downloaded as they are; GOOG daily bars ingested beside
downloaded series, for ``data list``.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from backtesting.test import EURUSD, GOOG

from tests.doubles.binance import BinanceDouble
from tests.helpers import run_cli, start_cli, wait_until

pytestmark = pytest.mark.timeout(120)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, ms
MINUTE = 60_000
CLOCK = T0 + 600 * MINUTE + 30_000  # 10:00:30: bars up to 10:00 closed, the 10:00 one forming
KLINES = "/api/v3/klines"
NS = 1_000_000


@pytest.fixture
def venue() -> Iterator[BinanceDouble]:
    """The double, paging 200 bars at most, its clock at 2024-01-01T10:00:30Z."""
    with BinanceDouble(page_max=200, clock_start_ms=CLOCK) as double:
        yield double


def download(venue: BinanceDouble, db: Path, *extra: str, symbols: str = "BTC/USDT,ETH/USDT",
             start: str = "2024-01-01", timeframe: str = "1m"):
    return run_cli("download", "--venue", "binance", "--symbols", symbols, "--timeframe", timeframe, "--from", start,
                   "--db", str(db), "--venue-url", venue.url, "--backoff", "0.01", *extra)


def stored(db: Path, symbol: str) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT ts, open, high, low, close, volume FROM bars WHERE symbol=? AND "
                                 "timeframe='1m' ORDER BY ts", conn, params=(symbol,))


def served(symbol_id: str, first_open_ms: int, count: int) -> pd.DataFrame:
    """What the double serves for these opens, as stored bars (close times in ns)."""
    rows = [BinanceDouble.bar(symbol_id, first_open_ms + i * MINUTE, MINUTE) for i in range(count)]
    return pd.DataFrame({"ts": [(r[0] + MINUTE) * NS for r in rows],
                         **{name: [float(r[k]) for r in rows] for k, name in enumerate(
                             ("open", "high", "low", "close", "volume"), start=1)}})


def test_download_stores_every_bar_of_a_multi_page_range_through_a_429(venue: BinanceDouble, tmp_path: Path) -> None:
    venue.fail(KLINES, 429)
    result = download(venue, tmp_path / "x.db")
    assert result.returncode == 0, result.stderr
    for symbol, market_id in (("BTC/USDT", "BTCUSDT"), ("ETH/USDT", "ETHUSDT")):
        pd.testing.assert_frame_equal(stored(tmp_path / "x.db", symbol), served(market_id, T0, 600))
    assert venue.count(KLINES, 429) == 1
    assert venue.count(KLINES, 200) == 6  # 600 bars in pages of 200, per symbol
    assert "600 new bars from 3 page request(s)" in result.stdout
    assert "DDoSProtection" in result.stderr or "RateLimitExceeded" in result.stderr  # the retry was logged


def test_the_forming_candle_is_never_stored(tmp_path: Path) -> None:
    with BinanceDouble(clock_start_ms=CLOCK) as venue:
        result = download(venue, tmp_path / "x.db", symbols="BTC/USDT", start="2024-01-01T09:00:00Z")
        [request] = [r for r in venue.requests if r.path == KLINES]
    assert result.returncode == 0, result.stderr
    # one page from 09:00 up to the double's clock: it held the bar opening at 10:00, still forming
    assert int(request.query["limit"]) == 1000
    bars = stored(tmp_path / "x.db", "BTC/USDT")
    assert len(bars) == 60
    assert bars["ts"].iloc[-1] == (T0 + 600 * MINUTE) * NS  # 10:00, the last closed bar


def test_a_second_identical_download_asks_for_at_most_the_newest_page(venue: BinanceDouble, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert download(venue, db).returncode == 0
    before = venue.count(KLINES)
    again = download(venue, db)
    assert again.returncode == 0, again.stderr
    assert venue.count(KLINES) == before  # nothing new has closed yet: nothing asked
    assert "0 new bars from 0 page request(s)" in again.stdout
    venue.set_clock(CLOCK + 5 * MINUTE)  # five more bars close
    later = download(venue, db)
    assert later.returncode == 0, later.stderr
    asked = [r for r in venue.requests if r.path == KLINES][before:]
    assert len(asked) == 2  # the newest page of each symbol
    assert all(T0 + 599 * MINUTE < int(r.query["startTime"]) <= T0 + 600 * MINUTE for r in asked)  # from 10:00 on
    pd.testing.assert_frame_equal(stored(db, "ETH/USDT"), served("ETHUSDT", T0, 605))


def test_downloaded_bars_backtest_as_the_same_bars_from_a_file(venue: BinanceDouble, tmp_path: Path) -> None:
    assert download(venue, tmp_path / "x.db", symbols="BTC/USDT").returncode == 0
    # the same bars as a vendor file of the venue's klines: open times in ms, written here, not by us
    klines = pd.DataFrame([BinanceDouble.bar("BTCUSDT", T0 + i * MINUTE, MINUTE)[:6] for i in range(600)],
                          columns=["timestamp", "open", "high", "low", "close", "volume"])
    klines.to_csv(tmp_path / "klines.csv", index=False)
    ingested = run_cli("ingest", str(tmp_path / "klines.csv"), "--symbol", "BTC/USDT", "--ts-label", "open",
                       "--timeframe", "1m", "--db", str(tmp_path / "file.db"))
    assert ingested.returncode == 0, ingested.stderr
    exported = run_cli("data", "export", "BTC/USDT", "--out", str(tmp_path / "export.parquet"),
                       "--db", str(tmp_path / "x.db"))
    assert exported.returncode == 0, exported.stderr
    reports = []
    for source in (["--db", str(tmp_path / "x.db")], ["--db", str(tmp_path / "file.db")],
                   ["--data", str(tmp_path / "export.parquet"), "--db", str(tmp_path / "run.db")]):
        result = run_cli("backtest", "--from", "2024-01-01", "--symbols", "BTC/USDT", "--json", *source)
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert reports[0]["summary"]["trades"] > 3
    assert reports[0] == reports[1] == reports[2]


def test_real_hourly_bars_download_as_they_are_and_backtest_as_the_file(tmp_path: Path) -> None:
    hour = 3_600_000
    opens = EURUSD.index.tz_localize("UTC").as_unit("ms").asi8
    klines = [BinanceDouble.kline(int(t), hour, *row) for t, row in
              zip(opens, EURUSD[["Open", "High", "Low", "Close", "Volume"]].itertuples(index=False), strict=True)]
    db = tmp_path / "x.db"
    with BinanceDouble(clock_start_ms=1_519_862_400_000, recorded={"EUR/USD": ("1h", klines)}) as venue:  # 2018-03-01
        result = download(venue, db, symbols="EUR/USD", timeframe="1h", start="2017-04-01")
        assert result.returncode == 0, result.stderr
        assert venue.count(KLINES) == 6  # 5,000 bars, 1,000 a page, then one finding nothing after the last
    with sqlite3.connect(db) as conn:
        bars = pd.read_sql_query("SELECT ts, open, high, low, close, volume FROM bars ORDER BY ts", conn)
    expected = EURUSD.rename(columns=str.lower).reset_index(drop=True).astype({"volume": float})
    pd.testing.assert_frame_equal(bars.drop(columns="ts"), expected)
    assert (bars["ts"].to_numpy() == (opens + hour) * NS).all()  # close times
    steps = pd.Series(opens).diff().dropna() // hour
    [series] = json.loads(run_cli("data", "list", "--db", str(db), "--json").stdout)
    assert (series["rows"], series["gaps"], series["missing"], series["source"]) == (
        5000, int((steps > 1).sum()), int((steps - 1).sum()), "binance")
    file = tmp_path / "eurusd.csv"
    EURUSD.rename(columns=str.lower).rename_axis("ts").to_csv(file)  # the vendor file: open times
    assert run_cli("ingest", str(file), "--symbol", "EUR/USD", "--ts-label", "open", "--timeframe", "1h",
                   "--db", str(tmp_path / "file.db")).returncode == 0
    reports = [run_cli("backtest", "--from", "2017-01-01", "--json", "--db", str(path))
               for path in (db, tmp_path / "file.db")]
    assert [r.returncode for r in reports] == [0, 0], reports[0].stderr
    ours, theirs = (json.loads(r.stdout) for r in reports)
    assert ours["summary"]["trades"] > 20 and ours == theirs


def test_500s_past_the_retries_fail_in_one_line_and_keep_what_was_stored(venue: BinanceDouble, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    venue.fail(KLINES, 500, times=3, after=1)
    result = download(venue, db, "--retries", "2", "--log-level", "ERROR", symbols="BTC/USDT")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("run.py: error: binance: fetch_ohlcv BTC/USDT 1m after 2024-01-01T03:20:00Z failed "
                           "after 3 tries: OperationFailed: binance {\"code\": -1000"), line
    assert len(stored(db, "BTC/USDT")) == 200  # the first page, committed as it arrived
    resumed = download(venue, db, symbols="BTC/USDT")
    assert resumed.returncode == 0, resumed.stderr
    assert "400 new bars from 2 page request(s)" in resumed.stdout
    pd.testing.assert_frame_equal(stored(db, "BTC/USDT"), served("BTCUSDT", T0, 600))


def test_ctrl_c_keeps_the_pages_fetched_and_the_same_command_resumes(venue: BinanceDouble, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    venue.delay(KLINES, 30, after=1)  # the second page is slow: Ctrl-C comes while it is awaited
    process = start_cli("download", "--venue", "binance", "--symbols", "BTC/USDT", "--timeframe", "1m", "--from",
                        "2024-01-01", "--db", str(db), "--venue-url", venue.url, "--timeout", "60")
    try:
        wait_until(lambda: venue.count(KLINES) >= 1 and len(stored(db, "BTC/USDT")) == 200, 60,
                   "the first page stored")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "interrupted: the pages fetched so far are stored; the same command resumes" in err
    assert len(stored(db, "BTC/USDT")) == 200
    resumed = download(venue, db, symbols="BTC/USDT")
    assert resumed.returncode == 0, resumed.stderr
    assert "400 new bars" in resumed.stdout
    pd.testing.assert_frame_equal(stored(db, "BTC/USDT"), served("BTCUSDT", T0, 600))


def test_a_slow_reply_times_out_and_is_repeated(venue: BinanceDouble, tmp_path: Path) -> None:
    venue.delay(KLINES, 5)
    result = download(venue, tmp_path / "x.db", "--timeout", "0.5", symbols="BTC/USDT",
                      start="2024-01-01T09:00:00Z")
    assert result.returncode == 0, result.stderr
    assert "RequestTimeout" in result.stderr
    assert len(stored(tmp_path / "x.db", "BTC/USDT")) == 60


def test_data_list_shows_every_series_with_its_gaps_and_source(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    outage = (T0 + 100 * MINUTE, T0 + 107 * MINUTE)  # the venue has no bars opening 01:40 .. 01:46
    with BinanceDouble(page_max=200, clock_start_ms=CLOCK, outages=(outage,)) as venue:
        assert download(venue, db).returncode == 0
        pages = venue.count(KLINES)
        assert download(venue, db).returncode == 0
        assert venue.count(KLINES) == pages  # the venue's own gap is not asked for again
    goog = GOOG.copy()
    goog.index = goog.index + pd.Timedelta(days=1)  # close times: the next midnight
    goog.rename(columns=str.lower).rename_axis("ts").to_csv(tmp_path / "goog.csv")
    assert run_cli("ingest", str(tmp_path / "goog.csv"), "--symbol", "GOOG", "--db", str(db)).returncode == 0
    listed = run_cli("data", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    series = {s["symbol"]: s for s in json.loads(listed.stdout)}
    assert set(series) == {"BTC/USDT", "ETH/USDT", "GOOG"}
    steps = pd.Series(goog.index).diff().dt.days.dropna()
    assert series["GOOG"] | {"rows": 2148, "gaps": int((steps > 1).sum()), "missing": int((steps - 1).sum()),
                             "source": "file goog.csv"} == series["GOOG"]
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert series[symbol] | {"rows": 593, "gaps": 1, "missing": 7, "source": "binance",
                                 "first": "2024-01-01T00:01:00Z", "last": "2024-01-01T10:00:00Z"} == series[symbol]
    table = run_cli("data", "list", "--db", str(db)).stdout.splitlines()
    assert table[0].split() == ["symbol", "timeframe", "first", "last", "rows", "gaps", "missing", "source"]
    assert table[1].split() == ["BTC/USDT", "1m", "2024-01-01T00:01:00Z", "2024-01-01T10:00:00Z", "593", "1", "7",
                                "binance"]
    assert table[3].split()[0] == "GOOG" and table[3].endswith("file goog.csv")  # ingested: the file it came from
    assert len({line.index("rows") if i == 0 else None for i, line in enumerate(table)} - {None}) == 1
    gaps = run_cli("data", "gaps", "ETH/USDT", "--db", str(db))
    assert gaps.returncode == 0, gaps.stderr
    assert gaps.stdout.splitlines()[0] == ("ETH/USDT 1m: 1 gap(s), 7 bar(s) missing between 2024-01-01T00:01:00Z "
                                           "and 2024-01-01T10:00:00Z")
    assert gaps.stdout.splitlines()[2].split() == ["2024-01-01T01:40:00Z", "2024-01-01T01:48:00Z", "7"]


def test_data_delete_says_what_it_deleted_and_refuses_an_unknown_symbol(venue: BinanceDouble, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert download(venue, db).returncode == 0
    unknown = run_cli("data", "delete", "XRP/USDT", "--db", str(db))
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"run.py: error: no bars of XRP/USDT in {db}; stored: BTC/USDT, ETH/USDT"
    deleted = run_cli("data", "delete", "BTC/USDT", "--db", str(db))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == (f"deleted 600 1m bars of BTC/USDT (2024-01-01T00:01:00Z .. 2024-01-01T10:00:00Z, "
                                      f"source binance) from {db}")
    assert [s["symbol"] for s in json.loads(run_cli("data", "list", "--db", str(db), "--json").stdout)] == ["ETH/USDT"]
    backtest = run_cli("backtest", "--from", "2024-01-01", "--db", str(db))
    assert backtest.returncode == 0, backtest.stderr  # the columnar copy forgot the deleted series too
    assert backtest.stdout.splitlines()[1] == "  series        ETH/USDT 1m (binance)"


def test_a_database_from_before_sources_lists_and_downloads(venue: BinanceDouble, tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert download(venue, db, symbols="ETH/USDT").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE series_sources")  # as a file written before sources were recorded
        conn.execute("DROP TABLE series_coverage")
    listed = json.loads(run_cli("data", "list", "--db", str(db), "--json").stdout)
    assert [(s["symbol"], s["rows"], s["source"]) for s in listed] == [("ETH/USDT", 600, None)]
    refused = download(venue, db, symbols="ETH/USDT")
    assert refused.returncode == 1
    assert "ETH/USDT 1m in" in refused.stderr and "no recorded source" in refused.stderr
    assert download(venue, db, symbols="BTC/USDT").returncode == 0
    listed = json.loads(run_cli("data", "list", "--db", str(db), "--json").stdout)
    assert [(s["symbol"], s["source"]) for s in listed] == [("BTC/USDT", "binance"), ("ETH/USDT", None)]


@pytest.mark.parametrize("args, fragment", [
    (["--venue", "nowhere"], "unknown venue 'nowhere'"),
    (["--symbols", "DOGE/USDT"], "binance lists no DOGE/USDT (it lists 2, e.g. BTC/USDT, ETH/USDT)"),
    (["--from", "someday"], "--from 'someday' is not a date"),
    (["--from", "2024-02-01", "--to", "2024-01-01"], "--to 2024-01-01 is before --from 2024-02-01"),
    (["--from", "2030-01-01"], "nothing to download: the range ends"),
    (["--timeframe", "7m"], "binance has no 7m bars; it offers 1s, 1m, 3m"),
    (["--venue-url", "ftp://x"], "'ftp://x' is not a base URL"),
])
def test_a_bad_download_request_is_one_line_and_a_nonzero_exit(venue: BinanceDouble, tmp_path: Path,
                                                                 args: list[str], fragment: str) -> None:
    options = {"--venue": "binance", "--symbols": "BTC/USDT", "--timeframe": "1m", "--from": "2024-01-01",
               "--venue-url": venue.url}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = run_cli("download", *[x for pair in options.items() for x in pair], "--db", str(tmp_path / "x.db"),
                     "--log-level", "ERROR")
    assert result.returncode != 0
    assert fragment in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert venue.count(KLINES) == 0
    assert not (tmp_path / "x.db").exists() or stored(tmp_path / "x.db", "BTC/USDT").empty


@pytest.mark.parametrize("command", [["download"], ["data"], ["data", "list"], ["data", "gaps"], ["data", "export"],
                                     ["data", "delete"]])
def test_the_data_commands_have_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: run.py" in result.stdout
