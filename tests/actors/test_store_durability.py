"""The store under storage faults, on real sqlite files: what an error means, a lock waited out
with nothing lost, a lock past the patience halting trading, and the live lock on a database."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors.feed.actor import IngressSocket
from actors.store.errors import StorageError, classify, describe
from actors.store.guard import DatabaseLock, check_database
from messages.pipeline import Drain, Persist
from messages.trading import Fill, Order
from settings import Settings, SettingsError, load_settings
from supervisors.deps import Deps
from supervisors.system import System
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(30)

T0 = 1_704_067_200_000_000_000


def _error(action) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        action()
    return caught.value


def test_a_lock_is_transient_and_a_read_only_or_foreign_file_a_durability_failure(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(db, isolation_level=None, timeout=0.05)
    locked = _error(lambda: other.execute("BEGIN IMMEDIATE"))
    holder.execute("ROLLBACK")
    reader = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    read_only = _error(lambda: reader.execute("INSERT INTO t VALUES (1)"))
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    foreign = _error(lambda: sqlite3.connect(junk).execute("SELECT * FROM sqlite_master").fetchall())
    holder.execute("CREATE TABLE u (x UNIQUE)")
    holder.execute("INSERT INTO u VALUES (1)")
    ours = _error(lambda: holder.execute("INSERT INTO u VALUES (1)"))
    for conn in (holder, other, reader):
        conn.close()
    assert classify(locked) == "locked"
    assert classify(read_only) == classify(foreign) == "durability"
    assert classify(ours) == "other"  # a constraint broken is a bug of ours: the supervisor's business
    assert describe(read_only, "a.db") == "database a.db: read-only (attempt to write a readonly database)"
    assert describe(foreign, "j.db") == "database j.db: not a database (file is not a database)"


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_the_lock_patience_must_be_positive(value: str) -> None:
    assert load_settings(env={}).store.lock_patience_s == 30.0
    with pytest.raises(SettingsError, match="store.lock_patience_s"):
        load_settings(env={"TRADING_STORE_LOCK_PATIENCE_S": value})


def test_the_live_lock_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    first = DatabaseLock(db, "run.py live --db live.db")
    first.acquire()
    second = DatabaseLock(db, "run.py live")
    holder = rf"pid {os.getpid()} \(run.py live --db live.db\)"
    with pytest.raises(StorageError, match=rf"database {db} is in use by {holder}"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_a_database_check_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    check_database(db, 1.0)
    assert not db.exists()  # the write was a probe, rolled back, and the file it made removed
    with pytest.raises(StorageError, match="does not exist"):
        check_database(tmp_path / "missing" / "x.db", 1.0)
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def system(live_settings: Settings) -> Iterator[System]:
    settings = live_settings.with_values({"store.lock_patience_s": 1.0})
    system = System(settings, "live", Deps.of(settings, "live", ingress=IngressSocket(settings.ingress.endpoint, 1000)))
    system.start()
    yield system
    system.stop()


def _order(i: int) -> tuple[Order, Fill]:
    cid = f"test:BTCUSD:1m:{T0 + i}:buy"
    return (Order(cid, "test", "BTCUSD", "buy", 1.0, T0 + i, status="submitted"),
            Fill(cid, "BTCUSD", "buy", 1.0, 100.0 + i, 0.1, T0 + i + 1))


@contextlib.contextmanager
def _locked(db: str) -> Iterator[None]:
    """Another connection holding the database's write lock meanwhile."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _persist_one(system: System) -> None:
    order, fill = _order(0)
    system.registry.tell("store", Persist(orders=(order,), fills=(fill,)))


def _drain(system: System) -> pykka.ThreadingFuture:
    done = pykka.ThreadingFuture()
    system.registry.tell("store", Drain(done))
    return done


def test_writes_held_back_by_a_lock_are_all_stored_when_it_goes(system: System) -> None:
    db = system.settings.store.db
    with _locked(db):
        for i in range(5):
            order, fill = _order(i)
            system.registry.tell("store", Persist(orders=(order,), fills=(fill,)))
        wait_until(lambda: system.stats["store"].waiting == "database locked by another process", 5,
                   "the store to wait")
        done = _drain(system)
        with pytest.raises(pykka.Timeout):
            done.get(timeout=0.3)  # nothing is committed while the lock is held
    assert done.get(timeout=5) is True
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5
        assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 5
    finally:
        conn.close()
    counters = system.counters.snapshot()
    assert (counters["orders_stored"], counters["fills_stored"], counters["hangs"]) == (5, 5, 0)
    assert system.stats["store"].waiting == "" and system.fatal is None


def test_a_lock_past_the_patience_halts_trading_and_stops_the_system(system: System) -> None:
    db = system.settings.store.db
    with _locked(db):
        _persist_one(system)
        done = _drain(system)
        with pytest.raises(StorageError, match="locked by another process for more than 1s"):
            done.get(timeout=10)
        assert system.stop_requested.is_set()
        health = system.health()
        assert health["status"] == "failed"
        assert health["durability"] == {"ok": False, "reason": system.fatal}
        assert system.fatal == f"database {db}: locked by another process for more than 1s (store.lock_patience_s)"
        wait_until(lambda: system.query("executor", "positions")["halted"], 5, "the executor to halt")
        assert "records cannot be stored" in system.health()["risk"]["reason"]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0  # nothing half-written
    finally:
        conn.close()
    assert system.counters.get("orders_stored") == 0


def test_stopping_while_a_lock_outlasts_the_patience_fails_the_run_instead_of_dropping_writes(system: System) -> None:
    db = system.settings.store.db
    with _locked(db):
        _persist_one(system)
        wait_until(lambda: system.stats["store"].waiting, 5, "the store to wait")
        system.stop()
        assert system.fatal is not None and system.fatal.startswith(f"database {db}: locked by another process")
        assert system.health()["durability"]["ok"] is False
