"""The store's reader: every read from outside the store, on real sqlite files, read-only."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.store.connection import connect
from actors.store.errors import StorageError
from actors.store.reader import StoreReader
from actors.store.writer import Database
from messages.market import Bar
from messages.pipeline import ModelState
from messages.trading import BUY, SELL, Fill, Order

T0 = 1_704_067_200_000_000_000
M = 60_000_000_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    """A database file written by the writer, closed before the test reads it."""
    file = tmp_path / "store.db"
    db = Database(file)
    db.write_bars([Bar("BTCUSD", T0 + i * M, "1m", 1.0, 2.0, 0.5, 100.0 + i, 1.0) for i in range(1, 6)]
                  + [Bar("ETHUSD", T0 + 3 * M, "1m", 1.0, 2.0, 0.5, 50.0, 1.0),
                     Bar("ETHUSD", T0 + 60 * M, "1h", 1.0, 2.0, 0.5, 55.0, 1.0)])
    db.write_orders("live", [Order("o1", "sma", "BTCUSD", BUY, 2.0, T0 + M, status="submitted"),
                             Order("o1", "sma", "BTCUSD", BUY, 2.0, T0 + M, status="filled"),
                             Order("o2", "sma", "ETHUSD", SELL, 1.0, T0 + 2 * M, kind="limit", status="accepted",
                                   limit_price=49.5)])
    db.write_orders("backtest", [Order("b1", "sma", "BTCUSD", BUY, 9.0, T0, status="submitted")])
    db.write_fills("live", [Fill("o1", "BTCUSD", BUY, 2.0, 101.0, 0.2, T0 + 2 * M)])
    db.write_model_states("live", [ModelState("ETHUSD", "1m", T0 + 3 * M, "logistic", '{"w": [2]}'),
                                   ModelState("BTCUSD", "1m", T0 + 5 * M, "logistic", '{"w": [1]}')])
    db.write_model_states("backtest", [ModelState("BTCUSD", "1m", T0, "logistic", '{"w": [9]}')])
    db.close()
    yield file


def test_the_account_is_the_runs_orders_and_fills_in_order_with_the_last_close_per_symbol(path: Path) -> None:
    with StoreReader(path) as store:
        orders, fills, marks = store.account("live")
    assert [(o.client_id, o.status) for o in orders] == [("o1", "filled"), ("o2", "accepted")]
    assert math.isnan(orders[0].limit_price) and orders[1].limit_price == 49.5 and orders[1].kind == "limit"
    assert fills == [Fill("o1", "BTCUSD", BUY, 2.0, 101.0, 0.2, T0 + 2 * M)]
    assert marks == {"BTCUSD": 105.0, "ETHUSD": 55.0}


def test_model_states_are_the_runs_own_by_symbol_and_timeframe(path: Path) -> None:
    with StoreReader(path) as store:
        states = store.model_states("live")
        assert store.model_states("paper") == []
    assert [(s.symbol, s.timeframe, s.ts, s.state) for s in states] == [
        ("BTCUSD", "1m", T0 + 5 * M, '{"w": [1]}'), ("ETHUSD", "1m", T0 + 3 * M, '{"w": [2]}')]


def test_warm_up_bars_are_the_latest_oldest_first_and_the_series_end_is_the_latest_close(path: Path) -> None:
    with StoreReader(path) as store:
        assert [b.close for b in store.last_bars("BTCUSD", "1m", 2)] == [104.0, 105.0]
        assert store.series_end(("BTCUSD", "ETHUSD", "SOLUSD"), "1m") == (T0 + 5 * M, {"BTCUSD": 105.0,
                                                                                        "ETHUSD": 50.0})
        assert store.series_end(("SOLUSD",), "1m") == (None, {})


def test_replay_bars_are_the_selected_range_in_time_order(path: Path) -> None:
    with StoreReader(path) as store:
        bars = store.replay_bars(None, T0 + 2 * M, T0 + 4 * M, "1m")
    assert bars is not None
    assert bars[["symbol", "ts"]].values.tolist() == [["BTCUSD", T0 + 3 * M], ["ETHUSD", T0 + 3 * M],
                                                      ["BTCUSD", T0 + 4 * M]]


@pytest.mark.parametrize("name", ["missing.db", "empty.db", ":memory:"])
def test_a_database_not_there_yet_reads_as_empty_and_is_not_created(tmp_path: Path, name: str) -> None:
    if name == "empty.db":
        sqlite3.connect(tmp_path / name).close()  # a file the store has not set up yet
    target = name if name == ":memory:" else tmp_path / name
    existed = sorted(p.name for p in tmp_path.iterdir())
    with StoreReader(target) as store:
        assert not store.present
        assert store.account("live") == ([], [], {})
        assert store.model_states("live") == []
        assert store.last_bars("BTCUSD", "1m", 5) == []
        assert store.series_end(("BTCUSD",), "1m") == (None, {})
        assert store.replay_bars(None, None, None) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == existed


def test_the_reader_never_writes(path: Path) -> None:
    with StoreReader(path) as store, pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.conn.execute("DELETE FROM bars")
    with StoreReader(path) as store:
        assert store.count("bars") == 7


def test_the_reader_sees_what_is_committed_while_the_writer_holds_its_lock(path: Path) -> None:
    writer = Database(path)
    try:
        writer.write_fills("live", [Fill("o2", "ETHUSD", SELL, 1.0, 49.5, 0.1, T0 + 4 * M)])  # open transaction
        with StoreReader(path, busy_ms=50) as store:
            assert [f.client_id for f in store.account("live").fills] == ["o1"]
        writer.commit()
        with StoreReader(path, busy_ms=50) as store:
            assert [f.client_id for f in store.account("live").fills] == ["o1", "o2"]
    finally:
        writer.close()


def test_a_file_that_is_not_a_database_is_one_storage_error_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 300)
    with pytest.raises(StorageError, match=r"^database .*junk\.db: not a database \(file is not a database\)$"):
        StoreReader(junk)


def test_connections_are_wal_with_a_busy_timeout_and_read_only_ones_refuse_writes(tmp_path: Path) -> None:
    file = tmp_path / "c.db"
    writer = connect(file, busy_ms=1234)
    writer.execute("CREATE TABLE t (x)")
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert writer.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    reader = connect(file, readonly=True, busy_ms=567)
    assert reader.execute("PRAGMA busy_timeout").fetchone()[0] == 567
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO t VALUES (1)")
    reader.close()
    writer.close()
    probe = connect(tmp_path / "p.db", busy_ms=100, wal=False)
    probe.execute("CREATE TABLE t (x)")
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # a probe leaves the file's mode
    probe.close()
    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "absent.db", readonly=True).execute("SELECT 1 FROM sqlite_master")


def test_only_the_store_package_opens_or_imports_the_database() -> None:
    sources = [p for p in ROOT.rglob("*.py") if not {".venv", "tests", ".git"} & set(p.relative_to(ROOT).parts)]
    opens = sorted(str(p.relative_to(ROOT)) for p in sources if "sqlite3.connect(" in p.read_text())
    assert opens == ["actors/store/connection.py"]
    sqlite_users = sorted(str(p.relative_to(ROOT)) for p in sources if not p.is_relative_to(ROOT / "actors/store")
                          and re.search(r"^\s*(import sqlite3|from sqlite3 )", p.read_text(), re.M))
    assert sqlite_users == []
    inner = re.compile(r"^\s*(from actors\.store\.(writer|schema|connection|columnar|bar_reads|account)"
                       r"\b)", re.M)
    outside = sorted(str(p.relative_to(ROOT)) for p in sources
                     if p.is_relative_to(ROOT / "actors") and not p.is_relative_to(ROOT / "actors/store")
                     and inner.search(p.read_text()))
    assert outside == []
