"""The columnar copy of the bars (real sqlite files in tmp_path): exact reads, staleness, fallbacks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loguru import logger

from actors.store import columnar
from actors.store.reader import StoreReader
from actors.store.schema import SCHEMA
from actors.store.writer import Database
from actors.store.ingest import ingest_file
from messages.market import BarFrame

MINUTE = 60_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
BLOCK = 8  # small blocks, so that a few dozen bars span several


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "BLOCK_ROWS", BLOCK)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "bars.db")
    yield database
    database.close()


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{level} {message}")
    yield lines
    logger.remove(sink)


def frame(symbol: str, timeframe: str, first: int, count: int, step: int = 1, shift: float = 0.0) -> BarFrame:
    """``count`` bars from close time ``first`` minutes after T0, every ``step`` minutes; prices that
    are not round in binary, so an inexact copy would show."""
    i = np.arange(first, first + count * step, step)
    close = 100.0 + np.sin(i / 7.0) + shift + (hash(symbol) % 97) / 13.0
    return BarFrame.from_columns(symbol, timeframe, ts=T0 + i * MINUTE, open=close - 0.1, high=close + 0.3,
                                 low=close - 0.4, close=close, volume=i / 3.0)


def assert_exact(db: Database, symbols: list[str] | None = None, start: int | None = None, end: int | None = None,
                 timeframe: str | None = None) -> pd.DataFrame:
    """The copy's read equals the bars table's, value for value, dtype for dtype, row for row."""
    copied = db.read_bars(symbols, start, end, timeframe)
    pd.testing.assert_frame_equal(copied, db.read_bar_rows(symbols, start, end, timeframe), check_exact=True)
    return copied


def blocks(db: Database) -> list[tuple]:
    return db.conn.execute("SELECT symbol, timeframe, first_ts, last_ts, size FROM bar_blocks "
                           "ORDER BY symbol, timeframe, first_ts").fetchall()


def mixed(db: Database) -> None:
    """Two symbols, two timeframes that share close times, a gap, and an unrelated symbol."""
    db.write_frames([frame("BTCUSD", "1m", 1, 30), frame("BTCUSD", "5m", 5, 6, step=5),
                     frame("ETHUSD", "1m", 3, 20), frame("ETHUSD", "1m", 40, 5), frame("SOLUSD", "1h", 60, 2, 60)])
    db.commit()


# ---------------------------------------------------------------------------------------------
# Reading


def test_a_refreshed_copy_reads_exactly_what_the_bars_table_holds(db: Database) -> None:
    mixed(db)
    db.refresh_bar_copy()
    assert db.bar_copy_state().current
    whole = assert_exact(db)
    assert len(whole) == 30 + 6 + 25 + 2
    assert whole.dtypes.to_dict() == {"symbol": whole["symbol"].dtype, "timeframe": whole["timeframe"].dtype,
                                      "ts": np.int64, "open": np.float64, "high": np.float64, "low": np.float64,
                                      "close": np.float64, "volume": np.float64}
    assert str(whole["symbol"].dtype) == "str"
    # ties on close time are ordered by symbol, then timeframe
    at_5 = whole[whole["ts"] == T0 + 5 * MINUTE]
    assert list(zip(at_5["symbol"], at_5["timeframe"])) == [("BTCUSD", "1m"), ("BTCUSD", "5m"), ("ETHUSD", "1m")]


@pytest.mark.parametrize(("start", "end"), [(None, None), (0, 7), (7, 8), (8, 16), (3, 41), (29, 44), (45, 200),
                                            (None, 1), (16, None), (-5, 0)])
def test_ranges_are_start_exclusive_end_inclusive_across_block_edges(db: Database, start: int | None,
                                                                    end: int | None) -> None:
    mixed(db)
    db.refresh_bar_copy()
    assert_exact(db, None, None if start is None else T0 + start * MINUTE, None if end is None else T0 + end * MINUTE)


@pytest.mark.parametrize(("symbols", "timeframe"), [(["BTCUSD"], None), (["ETHUSD", "SOLUSD"], None),
                                                    (None, "1m"), (["BTCUSD"], "5m"), (["NOPE"], None),
                                                    (None, "4h")])
def test_symbol_and_timeframe_filters_match_the_bars_table(db: Database, symbols: list[str] | None,
                                                           timeframe: str | None) -> None:
    mixed(db)
    db.refresh_bar_copy()
    assert_exact(db, symbols, T0 + 2 * MINUTE, T0 + 42 * MINUTE, timeframe)


def test_an_empty_selection_is_typed_as_the_bars_table_gives_it(db: Database) -> None:
    mixed(db)
    db.refresh_bar_copy()
    empty = assert_exact(db, None, T0 + 10_000 * MINUTE, None)
    assert empty.empty and empty["ts"].dtype == np.int64


def test_blocks_hold_at_most_block_rows_and_only_the_last_is_short(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 3 * BLOCK + 3)])
    db.refresh_bar_copy()
    sizes = [size for *_, size in blocks(db)]
    assert sizes == [BLOCK, BLOCK, BLOCK, 3]


# ---------------------------------------------------------------------------------------------
# Changes after a refresh


def test_bars_appended_after_a_refresh_are_read_from_the_rows_until_the_next_refresh(db: Database,
                                                                                     logs: list[str]) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.write_frames([frame("BTCUSD", "1m", 21, 5)])  # as a live store appends
    db.commit()
    state = db.bar_copy_state()
    assert state.changed == (("BTCUSD", "1m", T0 + 21 * MINUTE),)
    assert len(assert_exact(db)) == 25
    assert any("BTCUSD 1m bars changed from 2024-01-01T00:21:00Z on" in line for line in logs)
    refreshed = db.refresh_bar_copy()
    assert [(r.symbol, r.timeframe, r.bars, r.from_rows) for r in refreshed] == [("BTCUSD", "1m", 25, 5)]
    assert db.bar_copy_state().current
    assert [size for *_, size in blocks(db)] == [BLOCK, BLOCK, BLOCK, 1]  # the short block was filled up
    assert_exact(db)


def test_overlapping_upserts_replace_values_and_only_the_changed_part_is_reread(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 40), frame("ETHUSD", "1m", 1, 40)])
    db.refresh_bar_copy()
    db.write_frames([frame("BTCUSD", "1m", 18, 30, shift=5.0)])  # rows 18..40 replaced, 41..47 new
    db.commit()
    assert db.bar_copy_state().changed == (("BTCUSD", "1m", T0 + 18 * MINUTE),)
    both = assert_exact(db)
    assert both[(both["symbol"] == "BTCUSD") & (both["ts"] == T0 + 18 * MINUTE)]["close"].item() == \
        frame("BTCUSD", "1m", 18, 1, shift=5.0).close[0]
    refreshed = db.refresh_bar_copy()
    assert [(r.symbol, r.bars, r.from_rows) for r in refreshed] == [("BTCUSD", 47, 30)]
    assert_exact(db)


def test_uncommitted_writes_are_seen_by_their_own_connection(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.write_frames([frame("BTCUSD", "1m", 5, 3, shift=1.0)])  # still in the transaction
    assert_exact(db)


def test_writes_that_bypass_the_store_are_noticed(db: Database, tmp_path: Path) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 30)])
    db.refresh_bar_copy()
    other = sqlite3.connect(tmp_path / "bars.db", isolation_level=None)
    try:
        other.execute("UPDATE bars SET close = close + 1 WHERE ts = ?", (T0 + 25 * MINUTE,))
        assert db.bar_copy_state().changed == (("BTCUSD", "1m", T0 + 25 * MINUTE),)
        other.execute("DELETE FROM bars WHERE ts = ?", (T0 + 12 * MINUTE,))
        other.execute("INSERT OR REPLACE INTO bars VALUES ('BTCUSD', '1m', ?, 1, 2, 0.5, 1.5, 3)", (T0 + 9 * MINUTE,))
        other.execute("UPDATE bars SET ts = ? WHERE ts = ?", (T0 + 99 * MINUTE, T0 + 4 * MINUTE))  # a row moved
        other.execute("INSERT INTO bars VALUES ('NEWSYM', '1h', ?, 1, 2, 0.5, 1.5, 3)", (T0 + 60 * MINUTE,))
    finally:
        other.close()
    assert db.bar_copy_state().changed == (("BTCUSD", "1m", T0 + 4 * MINUTE), ("NEWSYM", "1h", T0 + 60 * MINUTE))
    assert_exact(db)
    db.refresh_bar_copy()
    assert db.bar_copy_state().current
    assert_exact(db)


def test_deleting_every_bar_of_a_series_empties_its_copy(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 20), frame("ETHUSD", "1m", 1, 3)])
    db.refresh_bar_copy()
    db.begin()
    db.conn.execute("DELETE FROM bars WHERE symbol = 'BTCUSD'")
    db.commit()
    assert list(assert_exact(db)["symbol"].unique()) == ["ETHUSD"]
    db.refresh_bar_copy()
    assert {s for s, *_ in blocks(db)} == {"ETHUSD"}
    assert_exact(db)


def test_ingesting_twice_with_overlap_keeps_the_copy_current_and_exact(tmp_path: Path) -> None:
    def bar_file(name: str, first: int, count: int, shift: float) -> Path:
        i = np.arange(first, first + count)
        close = 100.0 + np.cos(i / 5.0) + shift
        path = tmp_path / name
        pd.DataFrame({"ts": (T0 + i * MINUTE) // 1_000_000, "open": close, "high": close + 1, "low": close - 1,
                      "close": close, "volume": i * 1.5}).to_csv(path, index=False)
        return path

    path = tmp_path / "ingest.db"
    first = ingest_file(bar_file("a.csv", 1, 50, 0.0), path, "BTCUSD", progress=False, batch=7)
    second = ingest_file(bar_file("b.csv", 31, 50, 0.5), path, "BTCUSD", progress=False, batch=7)
    assert (first.new, second.new, second.rows) == (50, 30, 50)
    db = Database(path)
    try:
        assert db.bar_copy_state().current
        bars = assert_exact(db)
        assert len(bars) == 80
        assert bars["close"].iloc[30] == 100.0 + np.cos(31 / 5.0) + 0.5  # the second file's value won
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------
# Fallbacks


def old_file(path: Path) -> None:
    """A database written before the columnar copy existed."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO bars VALUES ('BTCUSD', '1m', ?, 1.5, 2.5, 0.5, ?, 1)",
                     [(T0 + i * MINUTE, 1.0 + i / 3) for i in range(1, 21)])
    conn.close()


def replay_bars(path: Path, symbols: list[str] | None) -> pd.DataFrame | None:
    with StoreReader(path) as reader:
        return reader.replay_bars(symbols, None, None)


def test_an_older_file_read_only_falls_back_to_the_rows_and_says_so(tmp_path: Path, logs: list[str]) -> None:
    path = tmp_path / "old.db"
    old_file(path)
    reader = StoreReader(path)
    assert reader.present
    try:
        assert not reader.bar_copy_state().usable
        assert_exact(reader)
    finally:
        reader.close()
    assert any("no usable columnar copy" in line for line in logs)


def test_opening_an_older_file_for_writing_marks_its_bars_for_the_first_refresh(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_file(path)
    db = Database(path)
    try:
        assert db.bar_copy_state().changed == (("BTCUSD", "1m", T0 + MINUTE),)
        assert_exact(db)
        assert [(r.bars, r.from_rows) for r in db.refresh_bar_copy()] == [(20, 20)]
        assert db.bar_copy_state().current
        assert_exact(db)
    finally:
        db.close()


def test_the_backtest_read_brings_a_stale_copy_up_to_date_first(tmp_path: Path, logs: list[str]) -> None:
    path = tmp_path / "old.db"
    old_file(path)
    bars = replay_bars(path, None)
    reader = StoreReader(path)
    assert reader.present
    try:
        assert reader.bar_copy_state().current
        pd.testing.assert_frame_equal(bars, reader.read_bar_rows(None, None, None), check_exact=True)
    finally:
        reader.close()
    assert any("columnar copy of BTCUSD 1m brought up to date (20 bars, 20 read from the bars table)" in line
               for line in logs)
    assert replay_bars(tmp_path / "none.db", None) is None


def test_the_backtest_read_is_exact_when_the_copy_cannot_be_refreshed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      logs: list[str]) -> None:
    db = Database(tmp_path / "bars.db")
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.write_frames([frame("BTCUSD", "1m", 10, 20, shift=2.0)])
    db.close()

    def locked(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Database, "refresh_bar_copy", locked)
    bars = replay_bars(tmp_path / "bars.db", ["BTCUSD"])
    reader = StoreReader(tmp_path / "bars.db")
    assert reader.present
    try:
        assert not reader.bar_copy_state().current
        pd.testing.assert_frame_equal(bars, reader.read_bar_rows(["BTCUSD"], None, None), check_exact=True)
    finally:
        reader.close()
    assert any("cannot bring the columnar copy" in line and "database is locked" in line for line in logs)


def test_blocks_of_another_layout_are_never_read_and_are_rebuilt(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.conn.execute("UPDATE bar_blocks SET layout = ?, close = zeroblob(length(close))", (columnar.LAYOUT + 1,))
    assert not db.bar_copy_state().usable
    assert_exact(db)
    assert [(r.bars, r.from_rows) for r in db.refresh_bar_copy()] == [(20, 20)]
    assert db.bar_copy_state().current
    assert_exact(db)


def test_a_copy_that_does_not_hold_every_row_is_not_trusted(db: Database) -> None:
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.conn.execute("INSERT INTO bars VALUES ('BTCUSD', '1m', ?, 1, 2, 0.5, 1.5, 3)", (T0 + 99 * MINUTE,))
    db.conn.execute("DELETE FROM bar_changes")  # the change's mark lost
    assert db.bar_copy_state().current
    assert len(assert_exact(db)) == 21  # the row count gives it away


def test_a_dropped_trigger_makes_the_copy_unusable_until_reinstalled_with_every_series_marked(tmp_path: Path) -> None:
    db = Database(tmp_path / "bars.db")
    db.write_frames([frame("BTCUSD", "1m", 1, 20)])
    db.refresh_bar_copy()
    db.conn.execute("DROP TRIGGER bars_changed_insert")
    db.conn.execute("INSERT INTO bars VALUES ('BTCUSD', '1m', ?, 1, 2, 0.5, 1.5, 3)", (T0 + 99 * MINUTE,))
    assert not db.bar_copy_state().usable
    assert_exact(db)
    db.close()
    db = Database(tmp_path / "bars.db")
    try:
        assert db.bar_copy_state().changed == (("BTCUSD", "1m", T0 + MINUTE),)
        assert len(assert_exact(db)) == 21
    finally:
        db.close()
