"""Storage faults from outside, over real processes and files: a lock is waited out and loses
nothing; a full disk, a read-only or broken database stops the run with one line and a non-zero
exit; a second live on a database refuses, naming the holder."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from actors.executor.actor import broker_config
from actors.executor.broker import PaperBroker
from actors.feed.publisher import run_simulator
from actors.store.reader import StoreReader
from messages.codec import unpackb
from settings import load_settings
from tests.conftest import free_endpoint
from tests.helpers import ROOT, ctl, run_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(60)

SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def _endpoints() -> list[str]:
    return ["--ingress", free_endpoint(), "--control", free_endpoint(), "--events", free_endpoint()]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _start(*args: str, file_limit: int | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``run.py ARGS`` in the background, optionally with a file size limit (writes past it fail with EFBIG:
    Python ignores SIGXFSZ)."""
    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=limit,
                            env={**os.environ, **(env or {})})


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


class _Locker:
    """Another process holding the database's write lock (``BEGIN IMMEDIATE``) for ``seconds``."""

    SCRIPT = ("import sqlite3, sys, time\n"
              "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
              "conn.execute('BEGIN IMMEDIATE')\n"
              "print('locked', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "conn.execute('ROLLBACK')\n")

    def __init__(self, db: Path, seconds: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(db), str(seconds)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "locked"

    def wait(self, timeout: float) -> None:
        assert self.process.wait(timeout=timeout) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to kill if a test leaves them running."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_12s_lock_mid_run_delays_writes_loses_none_and_a_restart_rebuilds_the_same_account(
        tmp_path: Path, stopped: list) -> None:
    db = tmp_path / "live.db"
    args = _endpoints()
    live = _start("live", "--feed", "external", "--db", str(db), *args)
    stopped.append(live)
    control, ingress = _option(args, "--control"), _option(args, "--ingress")
    wait_for_control(control, live)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"health.store")
    sub.connect(_option(args, "--events"))
    stop = threading.Event()
    sent: list[int] = []
    feed = threading.Thread(target=lambda: sent.append(run_simulator(ingress, SYMBOLS, 4000, 3000, 7, stop,
                                                                     count=4000 * 15)), daemon=True)
    feed.start()
    try:
        wait_until(lambda: ctl(control, "metrics")["counters"]["fills"] >= 1, 20, "a first fill")
        locker = _Locker(db, 12)
        try:
            before = ctl(control, "metrics")["counters"]
            locker.wait(timeout=20)
        finally:
            locker.kill()
        during = ctl(control, "metrics")["counters"]
        assert during["orders"] > before["orders"]  # orders were decided while the writes were held back
        feed.join(timeout=30)
        assert sent, "the simulator did not finish"
        wait_until(lambda: ctl(control, "metrics")["counters"]["ticks_processed"] == sent[0], 20,
                   "every tick processed")
        final = ctl(control, "positions")
        counters = ctl(control, "metrics")["counters"]
        events = []
        while sub.poll(0):
            events.append(unpackb(sub.recv_multipart()[1]))
        assert run_cli("ctl", "shutdown", "--control", control).returncode == 0
        out, err = live.communicate(timeout=30)
    finally:
        stop.set()
        sub.close()
    assert live.returncode == 0, err
    assert counters["hangs"] == 0 and counters["dead_letters"] == 0  # the store waited; it was never taken for hung
    # a loaded machine may also show the store late for a moment ("state" events); never restarted
    assert [e["change"] for e in events if e["change"] != "state"] == ["blocked", "unblocked"]
    assert all(e["restarts"] == 0 for e in events if e["change"] == "state"), events
    conn = sqlite3.connect(db)
    try:
        stored_orders = conn.execute("SELECT COUNT(*) FROM orders WHERE run='live'").fetchone()[0]
        stored_fills = conn.execute("SELECT COUNT(*) FROM fills WHERE run='live'").fetchone()[0]
    finally:
        conn.close()
    assert (stored_orders, stored_fills) == (counters["orders"], counters["fills"])  # every one counted is stored
    summary = f"orders    {stored_orders:,} (stored {stored_orders:,})  fills {stored_fills:,} (stored {stored_fills:,})"
    assert summary in out
    # a fresh rebuild from the database is the account the run ended with
    with StoreReader(db) as store:
        orders, fills, marks = store.account("live")
    broker = PaperBroker(broker_config(load_settings(env={}), len(SYMBOLS)))
    broker.restore(orders, fills, marks)
    assert broker.cash == pytest.approx(final["cash"], rel=1e-12)
    assert {s: p.qty for s, p in broker.positions.items()} == pytest.approx(
        {s: p["qty"] for s, p in final["positions"].items()}, rel=1e-12)


def test_a_disk_filling_mid_run_stops_live_with_one_line_and_a_non_zero_exit(tmp_path: Path, stopped: list) -> None:
    db = tmp_path / "live.db"
    began = time.monotonic()
    args = _endpoints()
    live = _start("live", "--sim-speed", "3000", "--duration", "40", "--db", str(db), *args,
                  file_limit=4 << 20, env={"TRADING_STORE_TICKS": "true"})
    stopped.append(live)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"health.")
    sub.connect(_option(args, "--events"))
    events: list[tuple[str, dict]] = []
    try:
        wait_for_control(_option(args, "--control"), live)
        while live.poll() is None and time.monotonic() - began < 40:
            if sub.poll(100):
                topic, body = sub.recv_multipart()
                events.append((topic.decode(), unpackb(body)))
        while sub.poll(0):  # what arrived just before the process ended
            topic, body = sub.recv_multipart()
            events.append((topic.decode(), unpackb(body)))
    finally:
        sub.close()
    out, err = live.communicate(timeout=45)
    assert live.returncode == 1
    changes = {(topic, e.get("change")) for topic, e in events}
    assert ("health.store", "durability") in changes  # the events socket said so
    # the executor halted before it stopped (its own event may come after the events socket closed:
    # the control actor stops before the execution group)
    assert "trading halted: no further order is decided, sent or filled" in err
    assert time.monotonic() - began < 30  # stopped at the failure, not at --duration
    assert re.fullmatch(rf"run\.py: error: database {re.escape(str(db))}: I/O error \(.*\)", _last_line(err))
    assert "Traceback" not in err
    # the summary says how many orders and fills were stored, and the database holds exactly those
    stored = re.search(r"orders +[\d,]+ \(stored ([\d,]+)\) +fills [\d,]+ \(stored ([\d,]+)\)", out)
    assert stored is not None, out
    conn = sqlite3.connect(db)
    try:
        rows = (conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0])
    finally:
        conn.close()
    assert rows == (int(stored[1].replace(",", "")), int(stored[2].replace(",", "")))


def test_a_disk_filling_mid_backtest_stops_it_with_one_line_instead_of_hanging(tmp_path: Path,
                                                                                stopped: list) -> None:
    db = tmp_path / "bt.db"
    backtest = _start("backtest", "--from", "2024-01-01", "--db", str(db), file_limit=256 << 10)
    stopped.append(backtest)
    out, err = backtest.communicate(timeout=30)
    assert backtest.returncode == 1
    assert re.fullmatch(rf"run\.py: error: backtest failed: database {re.escape(str(db))}: I/O error \(.*\)",
                        _last_line(err))
    assert "Traceback" not in err and "final equity" not in out


@pytest.fixture(scope="module")
def written_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database a backtest wrote (made once)."""
    db = tmp_path_factory.mktemp("written") / "stored.db"
    result = run_cli("backtest", "--from", "2024-12-01", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def stored_db(written_db: Path, tmp_path: Path) -> Path:
    """A copy of a database a backtest wrote."""
    return Path(shutil.copy(written_db, tmp_path / "stored.db"))


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for this user: chmod, or for root (whom chmod does not stop) the
    immutable attribute."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        yield
        path.chmod(0o644)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
        pytest.skip("running as root without chattr +i on this file system: no read-only file to test with")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("command", ["live", "backtest", "ingest"])
def test_a_read_only_database_is_refused_before_anything_runs(stored_db: Path, command: str) -> None:
    before = stored_db.read_bytes()
    with _read_only(stored_db):
        result = run_cli(*_command(command, stored_db), timeout=30)
        assert result.returncode == 1, result.stdout
        assert _last_line(result.stderr).endswith(f"database {stored_db}: read-only (no permission to write the file)")
        assert "Traceback" not in result.stderr
    assert stored_db.read_bytes() == before


def _command(command: str, db: Path) -> list[str]:
    if command == "live":
        return ["live", "--duration", "2", "--db", str(db), *_endpoints()]
    if command == "backtest":
        return ["backtest", "--from", "2024-01-01", "--db", str(db)]
    return ["ingest", str(ROOT / "data" / "sample_2024_1h.csv.gz"), "--symbol", "BTCUSD", "--db", str(db)]


@pytest.mark.parametrize("command", ["live", "backtest", "ingest"])
@pytest.mark.parametrize(("fault", "says"), [
    ("random bytes", "not a sqlite database"),
    ("truncated", "truncated"),
    ("missing folder", "does not exist"),
    ("folder", "is a folder, not a database file"),
])
def test_a_broken_database_path_is_one_line_and_a_non_zero_exit(tmp_path: Path, stored_db: Path, command: str,
                                                                 fault: str, says: str) -> None:
    db = tmp_path / "bad.db"
    if fault == "random bytes":
        db.write_bytes(os.urandom(64 << 10))
    elif fault == "truncated":
        data = stored_db.read_bytes()
        db.write_bytes(data[:len(data) // 2])
    elif fault == "missing folder":
        db = tmp_path / "no such folder" / "x.db"
    else:
        db.mkdir()
    result = run_cli(*_command(command, db), timeout=30)
    assert result.returncode == 1
    line = _last_line(result.stderr)
    assert line.startswith("run.py: error: ") and f"database {db}" in line and says in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "no such folder").exists()


def test_a_database_locked_at_start_is_refused_past_the_patience(stored_db: Path) -> None:
    locker = _Locker(stored_db, 20)
    try:
        for command in ("live", "backtest"):
            result = run_cli(*_command(command, stored_db), timeout=30, env={"TRADING_STORE_LOCK_PATIENCE_S": "0.5"})
            assert result.returncode == 1
            assert _last_line(result.stderr).endswith(
                f"database {stored_db}: locked by another process for more than 0.5s (store.lock_patience_s)")
    finally:
        locker.kill()


def test_a_full_disk_at_start_is_refused(stored_db: Path) -> None:
    size = stored_db.stat().st_size
    for command in ("live", "backtest"):
        result = _start(*_command(command, stored_db), file_limit=size // 2)
        _, err = result.communicate(timeout=30)
        assert result.returncode == 1
        assert f"database {stored_db}: disk full for this process" in _last_line(err)


def test_a_second_live_on_the_same_database_refuses_naming_the_holder(tmp_path: Path, stopped: list) -> None:
    db = tmp_path / "live.db"
    args = _endpoints()
    first = _start("live", "--feed", "external", "--db", str(db), *args)
    stopped.append(first)
    wait_for_control(_option(args, "--control"), first)
    second = run_cli("live", "--feed", "external", "--duration", "5", "--db", str(db), *_endpoints(), timeout=30)
    assert second.returncode == 1
    assert _last_line(second.stderr) == (f"run.py: error: cannot start: database {db} is in use by pid {first.pid} "
                                         f"(run.py live --feed external --db {db} {' '.join(args)}); one live run "
                                         "per database")
    assert run_cli("ctl", "shutdown", "--control", _option(args, "--control")).returncode == 0
    assert first.wait(timeout=30) == 0
    # the lock goes with the process: a later live starts
    third = run_cli("live", "--feed", "external", "--duration", "1", "--db", str(db), *_endpoints(), timeout=30)
    assert third.returncode == 0, third.stderr
