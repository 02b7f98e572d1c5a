"""The sqlite store (real files in tmp_path) and historical bar files."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.history import (DataError, finest_per_symbol, infer_timeframe, iso_utc, iso_utc_many, load_bar_file,
                                  parse_date, select_range)
from actors.store.ingest import ingest_file
from actors.store.writer import Database, json_pairs
from messages.market import Bar, BarFrame, Tick
from messages.system import DeadLetter
from messages.trading import BUY, SELL, Fill, Order, Signal

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_2024_1h.csv.gz"
H = 3_600_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "sub" / "trading.db")  # the parent folder is created
    yield database
    database.close()


def bar(i: int, symbol: str = "BTCUSD", close: float = 100.0, timeframe: str = "1h") -> Bar:
    return Bar(symbol, T0 + i * H, timeframe, close - 1, close + 1, close - 2, close, 10.0 + i)


# ---------------------------------------------------------------------------------------------
# Database


def test_new_database_has_every_table(db: Database) -> None:
    names = {row[0] for row in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"bars", "signals", "orders", "fills", "equity", "dead_letters"} <= names
    assert Path(db.path).exists()


def test_database_uses_wal_mode_seen_from_another_connection(db: Database) -> None:
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_reopening_an_existing_database_keeps_its_rows(tmp_path: Path) -> None:
    first = Database(tmp_path / "t.db")
    first.write_bars([bar(1)])
    first.close()
    second = Database(tmp_path / "t.db")
    try:
        assert second.count("bars") == 1
    finally:
        second.close()


def test_writing_a_bar_twice_keeps_one_row_with_the_new_values(db: Database) -> None:
    assert db.write_bars([bar(1, close=100.0)]) == 1
    assert db.write_bars([bar(1, close=200.0)]) == 1
    db.commit()
    assert db.count("bars") == 1
    row = db.read_bars(None, None, None).iloc[0]
    assert (row["open"], row["high"], row["low"], row["close"]) == (199.0, 201.0, 198.0, 200.0)


def test_same_time_in_another_timeframe_or_symbol_is_another_bar(db: Database) -> None:
    db.write_bars([bar(1), bar(1, symbol="ETHUSD"), bar(1, timeframe="1m")])
    assert db.count("bars") == 3


def test_committed_bars_are_visible_to_another_connection(db: Database) -> None:
    db.write_bars([bar(1), bar(2)])
    reader = sqlite3.connect(db.path)
    try:
        assert reader.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 0  # still in the transaction
        db.commit()
        assert reader.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 2
    finally:
        reader.close()


def test_read_bars_takes_close_times_in_start_exclusive_end_inclusive(db: Database) -> None:
    db.write_bars([bar(i) for i in range(1, 6)])
    frame = db.read_bars(["BTCUSD"], T0 + 2 * H, T0 + 4 * H)
    assert frame["ts"].tolist() == [T0 + 3 * H, T0 + 4 * H]
    assert frame["ts"].dtype == np.int64
    assert list(frame.columns) == ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
    assert db.read_bars(None, None, T0 + 1 * H)["ts"].tolist() == [T0 + H]
    assert db.read_bars(None, T0 + 4 * H, None)["ts"].tolist() == [T0 + 5 * H]
    assert len(db.read_bars(None, None, None)) == 5
    assert db.read_bars(None, T0 + 5 * H, None).empty


def test_read_bars_filters_symbols_and_timeframe_and_orders_by_time_then_symbol(db: Database) -> None:
    db.write_bars([bar(2, "ETHUSD"), bar(1, "SOLUSD"), bar(1, "BTCUSD"), bar(2, "BTCUSD"),
                   bar(1, "BTCUSD", timeframe="1m")])
    frame = db.read_bars(None, None, None, timeframe="1h")
    assert list(zip(frame["ts"], frame["symbol"])) == [(T0 + H, "BTCUSD"), (T0 + H, "SOLUSD"),
                                                         (T0 + 2 * H, "BTCUSD"), (T0 + 2 * H, "ETHUSD")]
    assert db.read_bars(["ETHUSD", "SOLUSD"], None, None)["symbol"].tolist() == ["SOLUSD", "ETHUSD"]
    assert db.read_bars(["NOPE"], None, None).empty


def test_frames_are_written_like_bars(db: Database) -> None:
    frame = BarFrame.from_columns("BTCUSD", "1h", ts=[T0 + H, T0 + 2 * H], open=[1.0, 2.0], high=[3.0, 4.0],
                                  low=[0.5, 1.5], close=[2.0, 3.0], volume=[5.0, 6.0])
    assert db.write_frames([frame, frame]) == 4
    rows = db.read_bars(None, None, None)
    assert rows[["ts", "open", "high", "low", "close", "volume"]].values.tolist() == [
        [T0 + H, 1.0, 3.0, 0.5, 2.0, 5.0], [T0 + 2 * H, 2.0, 4.0, 1.5, 3.0, 6.0]]


def test_signals_round_trip_with_inputs_and_params_as_json(db: Database) -> None:
    signal = Signal("sma_cross", "BTCUSD", "1h", T0 + H, BUY, 101.5, "fast crossed above slow",
                    (("sma_10", 101.0), ("prob_up", math.nan), ("min_prob", 0.0)),
                    (("fast", 10), ("slow", 30), ("min_prob", 0.0)))
    db.write_signals("run1", [signal])
    db.write_signals("run1", [signal])  # idempotent
    rows = db.conn.execute("SELECT * FROM signals").fetchall()
    assert len(rows) == 1
    run, strategy, symbol, timeframe, ts, side, price, reason, inputs, params = rows[0]
    assert (run, strategy, symbol, timeframe, ts, side, price, reason) == (
        "run1", "sma_cross", "BTCUSD", "1h", T0 + H, "buy", 101.5, "fast crossed above slow")
    assert json.loads(inputs) == {"sma_10": 101.0, "prob_up": None, "min_prob": 0.0}  # NaN is stored as null
    assert json.loads(params) == {"fast": 10, "slow": 30, "min_prob": 0.0}


def test_a_signals_table_from_before_params_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE signals (run TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, "
                "timeframe TEXT NOT NULL, ts INTEGER NOT NULL, side TEXT NOT NULL, price REAL NOT NULL, "
                "reason TEXT NOT NULL, inputs TEXT NOT NULL, PRIMARY KEY (run, strategy, symbol, timeframe, ts))")
    old.execute("INSERT INTO signals VALUES ('r', 's', 'X', '1h', 1, 'buy', 1.0, 'why', '{}')")
    old.commit()
    old.close()
    db = Database(path)
    try:
        db.write_signals("r", [Signal("s", "X", "1h", 2, SELL, 1.0, "why", (), (("n", 3),))])
        rows = db.conn.execute("SELECT ts, params FROM signals ORDER BY ts").fetchall()
        assert rows == [(1, "{}"), (2, '{"n": 3}')]
    finally:
        db.close()


def test_orders_and_fills_round_trip_and_a_fill_marks_its_order_filled(db: Database) -> None:
    orders = [Order("c1", "sma_cross", "BTCUSD", BUY, 2.5, T0 + H),
              Order("c2", "sma_cross", "ETHUSD", SELL, 0.0, T0 + H, status="rejected", reason="no position")]
    fill = Fill("c1", "BTCUSD", BUY, 2.5, 100.0, 0.25, T0 + H)
    db.write_orders("r", orders)
    db.write_fills("r", [fill])
    db.write_fills("r", [fill])
    got = db.conn.execute("SELECT client_id, strategy, symbol, side, qty, ts, kind, status, reason FROM orders "
                          "ORDER BY client_id").fetchall()
    assert got == [("c1", "sma_cross", "BTCUSD", "buy", 2.5, T0 + H, "market", "filled", ""),
                   ("c2", "sma_cross", "ETHUSD", "sell", 0.0, T0 + H, "market", "rejected", "no position")]
    fills = db.conn.execute("SELECT run, client_id, symbol, side, qty, price, fee, ts FROM fills").fetchall()
    assert fills == [("r", "c1", "BTCUSD", "buy", 2.5, 100.0, 0.25, T0 + H)]


def test_each_order_is_stored_once_in_its_last_state(db: Database) -> None:
    states = [Order("c1", "sma_cross", "BTCUSD", BUY, 2.5, T0 + H, status=status) for status in
              ("submitted", "accepted")]
    states.append(Order("c1", "sma_cross", "BTCUSD", BUY, 2.4, T0 + H, status="filled"))
    states.append(Order("c2", "sma_cross", "ETHUSD", SELL, 0.0, T0 + H, status="rejected", reason="no position"))
    db.write_orders("r", states)
    got = db.conn.execute("SELECT client_id, qty, status, reason FROM orders ORDER BY client_id").fetchall()
    assert got == [("c1", 2.4, "filled", ""), ("c2", 0.0, "rejected", "no position")]


def test_a_fill_written_with_its_filled_order_is_not_marked_twice(db: Database) -> None:
    db.write_orders("r", [Order("c1", "s", "BTCUSD", BUY, 1.0, T0, status="accepted"),
                          Order("c2", "s", "BTCUSD", SELL, 1.0, T0, status="accepted")])
    fills = [Fill("c1", "BTCUSD", BUY, 1.0, 100.0, 0.1, T0), Fill("c2", "BTCUSD", SELL, 1.0, 101.0, 0.1, T0)]
    db.write_fills("r", fills, marked={"c2"})  # c2's filled state came with it; c1's did not
    got = db.conn.execute("SELECT client_id, status FROM orders ORDER BY client_id").fetchall()
    assert got == [("c1", "filled"), ("c2", "accepted")]


@pytest.mark.parametrize("pairs", [
    (("sma_10", 101.25), ("sma_30", 100.0), ("prob_up", math.nan), ("min_prob", 0.0)),
    (("inf", math.inf), ("neg", -math.inf), ("tiny", 1e-300), ("big", 1.2345678901234567e300)),
    (("fast", 10), ("flag", True), ("off", False), ("name", "x\"y"), ("ünï", -0.0), ("none", None)),
    (),
])
def test_json_pairs_writes_what_json_dumps_writes(pairs: tuple) -> None:
    expected = json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in pairs})
    assert json_pairs(pairs) == expected
    assert json.loads(json_pairs(pairs)) == json.loads(expected)


def test_signals_store_inputs_and_params_as_json(db: Database) -> None:
    params = (("fast", 10), ("slow", 30), ("min_prob", 0.0))
    signals = [Signal("sma_cross", "BTCUSD", "1h", T0 + i * H, BUY if i % 2 == 0 else SELL, 100.0 + i, "cross",
                      (("sma_10", 100.5 + i), ("prob_up", math.nan)), params) for i in range(3)]
    db.write_signals("r", signals)
    rows = db.conn.execute("SELECT ts, side, inputs, params FROM signals ORDER BY ts").fetchall()
    assert [(ts, side) for ts, side, _, _ in rows] == [(s.ts, s.side) for s in signals]
    assert [json.loads(inputs) for _, _, inputs, _ in rows] == [{"sma_10": 100.5 + i, "prob_up": None} for i in range(3)]
    assert {params_text for _, _, _, params_text in rows} == {'{"fast": 10, "slow": 30, "min_prob": 0.0}'}


def test_iso_utc_many_equals_iso_utc_one_by_one() -> None:
    rng = np.random.default_rng(5)
    whole = (rng.integers(-10**18, 4 * 10**18, 500) // 10**9 * 10**9).tolist()
    fractional = [T0 + 1, T0 + 123_000_000, T0 + 999_999_999, -1, 0]
    values = whole + fractional
    assert iso_utc_many(values) == [iso_utc(v) for v in values]
    assert iso_utc_many(np.array(values, dtype=np.int64)) == [iso_utc(v) for v in values]
    assert iso_utc_many([]) == []


@pytest.mark.parametrize("count", [0, 1, 2, 3, 255, 256, 257, 511, 512, 513, 1000, 1537])
@pytest.mark.parametrize("variable_limit", [None, 999, 7])
def test_insert_rows_writes_every_row_in_order(db: Database, count: int, variable_limit: int | None) -> None:
    if variable_limit is not None:  # an older sqlite allows fewer parameters per statement
        db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
    rows = [("r", T0 + (i % 700) * H, float(i)) for i in range(count)]  # keys repeat past 700: later rows win
    db.insert_rows("INSERT OR REPLACE INTO equity", rows)
    expected = {ts: value for _, ts, value in rows}
    assert dict(db.conn.execute("SELECT ts, equity FROM equity")) == expected


def test_equity_and_dead_letters_are_stored(db: Database) -> None:
    db.write_equity("r", [(T0 + H, 100.0), (T0 + 2 * H, 101.0)])
    db.write_equity("r", [(T0 + 2 * H, 102.0)])
    points = db.conn.execute("SELECT ts, equity FROM equity ORDER BY ts").fetchall()
    assert points == [(T0 + H, 100.0), (T0 + 2 * H, 102.0)]
    db.write_dead_letters([DeadLetter("feed", T0, "boom", "RawBatch", "3 messages", 3)] * 2)
    assert db.count("dead_letters") == 2  # appended, never merged


@pytest.mark.parametrize(("runs", "cleared"), [(("a", "b", "c"), "a"), (("a", "b", "c"), "b"), (("a", "b", "c"), "c"),
                                               (("a",), "a"), (("b",), "a")])
def test_clear_run_removes_only_that_runs_records(db: Database, runs: tuple[str, ...], cleared: str) -> None:
    for run in runs:
        db.write_signals(run, [Signal("s", "X", "1h", T0, BUY, 1.0, "r")])
        db.write_orders(run, [Order("c", "s", "X", BUY, 1.0, T0)])
        db.write_fills(run, [Fill("c", "X", BUY, 1.0, 1.0, 0.0, T0)])
        db.write_equity(run, [(T0, 1.0)])
    db.write_bars([bar(1)])
    db.clear_run(cleared)
    for table in ("signals", "orders", "fills", "equity"):
        assert db.count(table, cleared) == 0
        assert all(db.count(table, run) == 1 for run in runs if run != cleared)
    assert db.count("bars") == 1


def test_clearing_a_run_does_not_rewrite_the_pages_it_frees(db: Database) -> None:
    # sqlite builds that scrub deleted bytes (Debian's) would write every freed page to the log again
    db.write_signals("backtest", [Signal("s", "X", "1m", T0 + i * 60_000_000_000, BUY, 1.0, "r" * 200)
                                  for i in range(5_000)])
    db.commit()
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.clear_run("backtest")
    assert db.count("signals") == 0
    logged = Path(db.path + "-wal").stat().st_size // 4096  # frames written by the delete
    assert pages > 300 and logged < pages // 10, (pages, logged)


def test_statement_journals_of_multi_row_inserts_stay_in_memory(db: Database) -> None:
    assert db.conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY, not a file per statement


def test_empty_writes_do_not_open_a_transaction(db: Database) -> None:
    db.write_bars([])
    db.write_signals("r", [])
    db.write_orders("r", [])
    db.write_fills("r", [])
    db.write_equity("r", [])
    assert not db._in_tx  # noqa: SLF001


# ---------------------------------------------------------------------------------------------
# History files


def test_sample_file_loads_as_hourly_close_time_bars() -> None:
    bars = load_bar_file(SAMPLE)
    assert len(bars) == 26_352
    assert set(bars["symbol"]) == {"BTCUSD", "ETHUSD", "SOLUSD"}
    assert set(bars["timeframe"]) == {"1h"}
    assert bars["ts"].dtype == np.int64
    assert bars["ts"].iloc[0] == pd.Timestamp("2024-01-01T01:00:00Z").value
    assert bars["ts"].iloc[-1] == pd.Timestamp("2025-01-01T00:00:00Z").value
    assert bars["ts"].is_monotonic_increasing
    assert (bars.groupby("symbol").size() == 8_784).all()
    assert list(bars.iloc[0][["symbol", "open"]]) == ["BTCUSD", 42_000.0]
    assert list(bars.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume", "timeframe"]


def test_sample_file_for_one_symbol() -> None:
    bars = load_bar_file(SAMPLE, symbol="SOLUSD")
    assert len(bars) == 8_784 and set(bars["symbol"]) == {"SOLUSD"}


HEADER = "symbol,ts,open,high,low,close,volume\n"


def write_csv(tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(line + "\n" for line in lines))
    return path


def good_rows(n: int = 4, symbol: str = "BTCUSD") -> list[str]:
    return [f"{symbol},2024-01-01T{i + 1:02d}:00:00Z,100,102,99,101,5" for i in range(n)]


def test_csv_without_a_close_column_names_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["BTCUSD,2024-01-01T01:00:00Z,100,102,99,5"], header="symbol,ts,open,high,low,volume\n")
    with pytest.raises(DataError, match=r"missing column\(s\) close"):
        load_bar_file(path)


def test_csv_without_a_time_column_names_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["BTCUSD,100,102,99,101"], header="symbol,open,high,low,close\n")
    with pytest.raises(DataError, match=r"missing column\(s\) ts"):
        load_bar_file(path)


def test_non_numeric_price_names_the_row(tmp_path: Path) -> None:
    rows = good_rows()
    rows[1] = "BTCUSD,2024-01-01T02:00:00Z,100,abc,99,101,5"
    with pytest.raises(DataError, match=r"non-numeric price/volume at rows 3$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)


def test_high_below_low_names_the_row(tmp_path: Path) -> None:
    rows = good_rows(5)
    rows[3] = "BTCUSD,2024-01-01T04:00:00Z,100,98,99,100,5"
    with pytest.raises(DataError, match=r"high/low do not contain open and close at rows 5$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)


def test_close_above_high_names_the_row(tmp_path: Path) -> None:
    rows = good_rows()
    rows[0] = "BTCUSD,2024-01-01T01:00:00Z,100,102,99,103,5"
    with pytest.raises(DataError, match=r"high/low do not contain open and close at rows 2$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)


def test_duplicate_rows_are_named(tmp_path: Path) -> None:
    rows = good_rows(4)
    rows.insert(2, rows[1])  # file rows 3 and 4 are the same bar
    with pytest.raises(DataError, match=r"duplicate bars at rows 4$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)


def test_unreadable_time_names_the_rows(tmp_path: Path) -> None:
    rows = good_rows(5)
    rows[1] = "BTCUSD,yesterday,100,102,99,101,5"
    rows[3] = "BTCUSD,2024-13-45T00:00:00Z,100,102,99,101,5"
    with pytest.raises(DataError, match=r"unreadable time at rows 3, 5$"):
        load_bar_file(write_csv(tmp_path, rows))


def test_non_positive_price_and_negative_volume_name_the_row(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2] = "BTCUSD,2024-01-01T03:00:00Z,0,102,0,101,5"
    with pytest.raises(DataError, match=r"price <= 0 at rows 4$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)
    rows = good_rows()
    rows[0] = "BTCUSD,2024-01-01T01:00:00Z,100,102,99,101,-1"
    with pytest.raises(DataError, match=r"negative volume at rows 2$"):
        load_bar_file(write_csv(tmp_path, rows, name="vol.csv"), strict=True)


def test_more_than_ten_bad_rows_are_summarised(tmp_path: Path) -> None:
    rows = [f"BTCUSD,2024-01-01T{i + 1:02d}:00:00Z,100,x,99,101,5" for i in range(13)]
    with pytest.raises(DataError, match=r"at rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 3 more$"):
        load_bar_file(write_csv(tmp_path, rows), strict=True)


def test_missing_and_unsupported_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_bar_file(tmp_path / "nope.csv")
    other = tmp_path / "bars.txt"
    other.write_text(HEADER)
    with pytest.raises(DataError, match=r"must be \.csv"):
        load_bar_file(other)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        load_bar_file(broken)


def test_file_without_symbol_column_needs_a_symbol(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["2024-01-01T01:00:00Z,1,2,0.5,1.5", "2024-01-01T02:00:00Z,1,2,0.5,1.5"],
                     header="Timestamp,Open,High,Low,Close\n")
    with pytest.raises(DataError, match="no symbol column"):
        load_bar_file(path)
    bars = load_bar_file(path, symbol="XYZ")
    assert bars["symbol"].tolist() == ["XYZ", "XYZ"] and bars["volume"].tolist() == [0.0, 0.0]


def test_epoch_seconds_and_milliseconds_are_read_as_ns(tmp_path: Path) -> None:
    seconds = write_csv(tmp_path, ["X,1704070800,1,2,0.5,1.5,1", "X,1704074400,1,2,0.5,1.5,1"], name="s.csv")
    millis = write_csv(tmp_path, ["X,1704070800000,1,2,0.5,1.5,1", "X,1704074400000,1,2,0.5,1.5,1"], name="ms.csv")
    for path in (seconds, millis):
        bars = load_bar_file(path)
        assert bars["ts"].tolist() == [1_704_070_800 * 10**9, 1_704_074_400 * 10**9]
        assert bars["timeframe"].tolist() == ["1h", "1h"]


def test_open_time_labels_are_shifted_to_close_times(tmp_path: Path) -> None:
    bars = load_bar_file(write_csv(tmp_path, good_rows(3)), ts_label="open")
    assert bars["ts"].iloc[0] == pd.Timestamp("2024-01-01T02:00:00Z").value
    with pytest.raises(DataError, match="ts_label"):
        load_bar_file(write_csv(tmp_path, good_rows(3), name="b.csv"), ts_label="middle")


def test_timeframe_column_is_used_when_present(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["X,1h,2024-01-01T01:00:00Z,1,2,0.5,1.5,1", "X,1h,2024-01-01T03:00:00Z,1,2,0.5,1.5,1"],
                     header="symbol,timeframe,ts,open,high,low,close,volume\n")
    assert load_bar_file(path)["timeframe"].tolist() == ["1h", "1h"]


def test_symbol_filter_works_on_a_file_with_a_timeframe_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["A,1h,2024-01-01T01:00:00Z,1,2,0.5,1.5,1", "B,1h,2024-01-01T01:00:00Z,1,2,0.5,1.5,1",
                                "A,1h,2024-01-01T02:00:00Z,1,2,0.5,1.5,1", "B,1h,2024-01-01T02:00:00Z,1,2,0.5,1.5,1"],
                     header="symbol,timeframe,ts,open,high,low,close,volume\n")
    bars = load_bar_file(path, symbol="B")
    assert bars["symbol"].tolist() == ["B", "B"] and bars["timeframe"].tolist() == ["1h", "1h"]


def test_bad_row_number_is_the_file_line_even_with_a_symbol_filter(tmp_path: Path) -> None:
    rows = [*good_rows(2, "A"), *good_rows(2, "B")]
    rows[3] = "B,2024-01-01T02:00:00Z,100,98,99,100,5"  # file row 5
    with pytest.raises(DataError, match=r"at rows 5$"):
        load_bar_file(write_csv(tmp_path, rows), symbol="B", strict=True)


def test_infer_timeframe_uses_the_most_common_spacing() -> None:
    minutes = np.array([0, 60, 120, 300, 360], dtype=np.int64) * 10**9
    assert infer_timeframe(minutes) == "1m"
    assert infer_timeframe(np.array([0, 86_400, 172_800], dtype=np.int64) * 10**9) == "1d"
    assert infer_timeframe(np.array([0, 90], dtype=np.int64) * 10**9) == "90s"
    with pytest.raises(DataError, match="fewer than two"):
        infer_timeframe(np.array([1], dtype=np.int64))


def test_parse_date_reads_dates_and_iso_timestamps_as_utc_ns() -> None:
    assert parse_date("2024-03-01", "start") == pd.Timestamp("2024-03-01T00:00:00Z").value
    assert parse_date("2024-03-01", "end", end_of_day=True) == pd.Timestamp("2024-03-02T00:00:00Z").value
    assert parse_date("2024-03-01T12:30:00", "start") == pd.Timestamp("2024-03-01T12:30:00Z").value
    assert parse_date("2024-03-01T12:00:00+02:00", "start") == pd.Timestamp("2024-03-01T10:00:00Z").value
    assert parse_date("2024-03-01T12:00:00Z", "end", end_of_day=True) == pd.Timestamp("2024-03-01T12:00:00Z").value


@pytest.mark.parametrize("times", [
    [T0, T0 + H, -86_400 * 10**9, 0, 4_102_444_800 * 10**9],      # whole seconds: converted at once
    [T0, T0 + 1, T0 + 500_000_000, T0 + 1_000],                     # sub-second: one by one
    [],
])
def test_iso_utc_many_gives_what_iso_utc_gives_for_each(times: list[int]) -> None:
    assert iso_utc_many(times) == [iso_utc(t) for t in times]
    assert iso_utc_many(np.array(times, dtype=np.int64)) == [iso_utc(t) for t in times]


@pytest.mark.parametrize("text", ["not a date", "2024-02-30", "", "2024-13-01"])
def test_unparseable_date_is_a_data_error_naming_the_option(text: str) -> None:
    with pytest.raises(DataError, match=r"^--start"):
        parse_date(text, "--start")


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load_bar_file(SAMPLE)


def test_select_range_keeps_close_times_in_start_exclusive_end_inclusive(sample: pd.DataFrame) -> None:
    start, end = parse_date("2024-03-01", "start"), parse_date("2024-03-01", "end", end_of_day=True)
    chosen = select_range(sample, start, end, ["ETHUSD"])
    assert len(chosen) == 24 and set(chosen["symbol"]) == {"ETHUSD"}
    assert chosen["ts"].iloc[0] == start + H and chosen["ts"].iloc[-1] == end
    assert len(select_range(sample, None, None, None)) == len(sample)


def test_select_range_that_is_empty_says_what_the_data_covers(sample: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"no bars in the requested range; the data covers 2024-01-01 01:00:00\+00:00"):
        select_range(sample, parse_date("2030-01-01", "start"), None, None)
    with pytest.raises(DataError, match="no bars in the requested range"):
        select_range(sample, T0 + 5 * H, T0 + 5 * H, None)


def test_select_range_with_unknown_symbols_names_them_and_the_available_ones(sample: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"no data for symbol\(s\) DOGE, XRP; available: BTCUSD, ETHUSD, SOLUSD"):
        select_range(sample, None, None, ["BTCUSD", "XRP", "DOGE"])


# ---------------------------------------------------------------------------------------------
# Ticks, indexes and the reads warm-up needs


def test_ticks_are_stored_once_with_a_missing_quote_as_null(db: Database) -> None:
    ticks = [Tick("BTCUSD", T0 + 1, 99.0, 101.0, 100.0, 2.0, "a", 7), Tick("BTCUSD", T0 + 1, math.nan, math.nan, 100.0),
             Tick("BTCUSD", T0 + 1, 99.0, 101.0, 100.0, 3.0)]   # same time, another volume: another tick
    assert db.write_ticks(ticks) == 3
    db.write_ticks(ticks)
    rows = db.conn.execute("SELECT symbol, ts, bid, ask, last, volume, src, seq FROM ticks ORDER BY volume, bid").fetchall()
    assert rows == [("BTCUSD", T0 + 1, None, None, 100.0, 0.0, "", -1), ("BTCUSD", T0 + 1, 99.0, 101.0, 100.0, 2.0, "a", 7),
                    ("BTCUSD", T0 + 1, 99.0, 101.0, 100.0, 3.0, "", -1)]


def test_the_queries_have_their_indexes_and_writers_wait_for_each_other(db: Database) -> None:
    indexes = {row[0] for row in db.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"bars_by_time", "ticks_unique", "signals_by_time", "orders_by_time", "fills_by_symbol",
            "dead_letters_by_time"} <= indexes
    plan = " ".join(str(r) for r in db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM bars WHERE symbol='A' AND timeframe='1m' ORDER BY ts DESC LIMIT 5"))
    assert "PRIMARY KEY" in plan or "sqlite_autoindex" in plan
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_last_bars_are_the_latest_oldest_first_and_the_summary_counts_them(db: Database) -> None:
    db.write_bars([bar(i) for i in range(1, 8)] + [bar(9, timeframe="1m"), bar(3, symbol="ETHUSD")])
    assert db.last_bars("BTCUSD", "1h", 3) == [bar(5), bar(6), bar(7)]
    assert db.last_bars("NOPE", "1h", 3) == []
    assert db.bar_summary("BTCUSD", "1h") == (7, T0 + H, T0 + 7 * H)
    assert db.bar_summary("NOPE", "1h") == (0, None, None)


def test_finest_per_symbol_keeps_each_symbols_finest_timeframe() -> None:
    bars = pd.DataFrame({"symbol": ["A", "A", "B", "B", "A"], "timeframe": ["5m", "1m", "1h", "1d", "1m"],
                         "ts": [5, 1, 60, 1440, 2]})
    assert finest_per_symbol(bars)[["symbol", "timeframe"]].values.tolist() == [["A", "1m"], ["B", "1h"], ["A", "1m"]]
    same = bars[bars["timeframe"] == "1m"]
    assert finest_per_symbol(same) is same


# ---------------------------------------------------------------------------------------------
# Files for ingest: timeframe, alignment, every reason at once


def test_every_kind_of_bad_row_is_reported_at_once(tmp_path: Path) -> None:
    rows = good_rows(6)
    rows[0] = "BTCUSD,2024-01-01T01:00:00Z,100,x,99,101,5"
    rows[2] = "BTCUSD,2024-01-01T03:00:00Z,100,102,99,101,-5"
    rows[4] = "BTCUSD,2024-01-01T05:00:00Z,100,102,99,105,5"
    with pytest.raises(DataError) as error:
        load_bar_file(write_csv(tmp_path, rows), strict=True)
    assert str(error.value).endswith(": missing or non-numeric price/volume at rows 2; negative volume at rows 4; "
                                     "high/low do not contain open and close at rows 6")


def test_a_given_timeframe_is_used_instead_of_inferring_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path, good_rows(1))   # one bar: nothing to infer from
    with pytest.raises(DataError, match="fewer than two bars"):
        load_bar_file(path)
    assert load_bar_file(path, timeframe="1h")["timeframe"].tolist() == ["1h"]
    with pytest.raises(DataError, match="bad timeframe"):
        load_bar_file(path, timeframe="1x")


def test_a_timeframe_column_that_disagrees_with_the_given_timeframe_names_the_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["X,1h,2024-01-01T01:00:00Z,1,2,0.5,1.5,1", "X,1h,2024-01-01T02:00:00Z,1,2,0.5,1.5,1"],
                     header="symbol,timeframe,ts,open,high,low,close,volume\n")
    with pytest.raises(DataError, match="timeframe is not 1m at rows 2, 3"):
        load_bar_file(path, timeframe="1m")


def test_bars_off_the_timeframes_boundaries_are_dropped_or_refused_when_strict(tmp_path: Path) -> None:
    rows = good_rows(4)
    rows[2] = "BTCUSD,2024-01-01T03:30:00Z,100,102,99,101,5"
    path = write_csv(tmp_path, rows)
    assert len(load_bar_file(path, timeframe="1h")) == 3    # the stray row is cleaned away
    with pytest.raises(DataError, match=r"close time not on a whole 1h boundary \(UTC\) at rows 4$"):
        load_bar_file(path, timeframe="1h", strict=True)


def test_an_empty_selection_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no bars of symbol ETHUSD"):
        load_bar_file(write_csv(tmp_path, good_rows(3)), symbol="ETHUSD")


# ---------------------------------------------------------------------------------------------
# ingest


def test_ingest_upserts_every_bar_in_batches_and_reports_what_it_did(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [f"2024-01-01T{h:02d}:{m:02d}:00Z,{100 + m},{102 + m},{99 + m},{101 + m},{m}"
                                for h in range(0, 2) for m in range(60)], header="ts,open,high,low,close,volume\n")
    db_path = tmp_path / "h.db"
    report = ingest_file(path, db_path, "BTCUSD", ts_label="open", progress=False, batch=7)
    assert (report.symbol, report.timeframe, report.rows, report.new) == ("BTCUSD", "1m", 120, 120)
    assert report.first_ts == T0 + 60 * 10**9 and report.last_ts == T0 + 2 * H
    assert "ingested 120 1m bars of BTCUSD" in str(report) and "2024-01-01T00:01:00Z .. 2024-01-01T02:00:00Z" in str(report)
    again = ingest_file(path, db_path, "BTCUSD", ts_label="open", progress=False)
    assert (again.rows, again.new) == (120, 0)
    db = Database(db_path)
    try:
        stored = db.read_bars(None, None, None)
    finally:
        db.close()
    expected = load_bar_file(path, symbol="BTCUSD", ts_label="open")
    assert stored[["ts", "open", "high", "low", "close", "volume"]].equals(
        expected[["ts", "open", "high", "low", "close", "volume"]])
    assert set(stored["timeframe"]) == {"1m"} and set(stored["symbol"]) == {"BTCUSD"}


def test_strict_ingest_of_a_dirty_file_names_the_rows_and_writes_nothing(tmp_path: Path) -> None:
    rows = good_rows(5)
    rows[1] = "BTCUSD,2024-01-01T02:00:00Z,0,102,99,101,5"
    rows[3] = "BTCUSD,2024-01-01T04:10:00Z,100,102,99,101,5"
    db_path = tmp_path / "h.db"
    with pytest.raises(DataError, match=r"price <= 0 at rows 3.*boundary.*at rows 5"):
        ingest_file(write_csv(tmp_path, rows), db_path, "BTCUSD", timeframe="1h", progress=False, strict=True)
    assert not db_path.exists()


@pytest.mark.parametrize(("mode", "visible_before_the_end"), [("live", 1), ("backtest", 0)])
def test_the_store_commits_when_idle_in_live_and_at_the_end_of_a_backtest(tmp_path: Path, mode: str,
                                                                          visible_before_the_end: int) -> None:
    import pykka

    from actors.store.actor import StoreActor
    from messages.pipeline import Drain, Persist
    from settings import load_settings
    from supervisors.actor import ChildContext
    from supervisors.clock import LiveClock
    from supervisors.deps import Deps
    from supervisors.health import ActorStats, Counters
    from supervisors.registry import Registry

    path = tmp_path / "store.db"
    ctx = ChildContext("store", Registry(), ActorStats("store"), Counters(), load_settings(env={}), LiveClock(), mode,
                       lambda failure: None, Deps.of(load_settings(env={}), mode, db_path=str(path)))
    store = StoreActor(ctx)  # driven in this thread: its mailbox stays empty
    store.setup()
    reader = sqlite3.connect(path)
    try:
        store.on_receive(Persist(signals=(Signal("s", "X", "1m", T0, BUY, 1.0, "r"),)))
        assert reader.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == visible_before_the_end
        done = pykka.ThreadingFuture()
        store.on_receive(Drain(done))
        assert done.get(timeout=1) is True
        assert reader.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 1
    finally:
        reader.close()
        store.teardown()
