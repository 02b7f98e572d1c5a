"""The sqlite database: schema, idempotent writes, and the reads replay and recovery need.

Only the store actor writes while a system runs (``ingest`` writes history offline). Readers
(backtest loading, the buffer's warm-up, tools) open their own connection; WAL mode lets them
read while the store writes.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from actors.store import columnar
from actors.store.history import iso_utc as _iso
from messages.market import Bar, BarFrame, Tick
from messages.pipeline import ModelState
from messages.system import DeadLetter
from messages.trading import Fill, Order, Signal

__all__ = ["Database", "SCHEMA", "load_account", "open_existing", "read_model_states", "read_stored_bars"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bars_by_time ON bars (ts);
CREATE TABLE IF NOT EXISTS ticks (
    symbol TEXT NOT NULL, ts INTEGER NOT NULL, bid REAL, ask REAL, last REAL NOT NULL, volume REAL NOT NULL,
    src TEXT NOT NULL, seq INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ticks_unique ON ticks (symbol, ts, last, volume, ifnull(bid, -1), ifnull(ask, -1));
CREATE TABLE IF NOT EXISTS signals (
    run TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL,
    side TEXT NOT NULL, price REAL NOT NULL, reason TEXT NOT NULL, inputs TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run, strategy, symbol, timeframe, ts)
);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals (run, ts);
CREATE TABLE IF NOT EXISTS orders (
    run TEXT NOT NULL, client_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    qty REAL NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    limit_price REAL, stop_price REAL,
    PRIMARY KEY (run, client_id)
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (run, status);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (run, ts);
CREATE TABLE IF NOT EXISTS fills (
    run TEXT NOT NULL, client_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL,
    price REAL NOT NULL, fee REAL NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (run, client_id)
);
CREATE INDEX IF NOT EXISTS fills_by_symbol ON fills (run, symbol, ts);
CREATE TABLE IF NOT EXISTS equity (
    run TEXT NOT NULL, ts INTEGER NOT NULL, equity REAL NOT NULL, PRIMARY KEY (run, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_state (
    run TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (run, symbol, timeframe)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, actor TEXT NOT NULL, ts INTEGER NOT NULL, error TEXT NOT NULL,
    message_type TEXT NOT NULL, summary TEXT NOT NULL, ticks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (ts);
"""

_BAR_COLUMNS = "symbol, timeframe, ts, open, high, low, close, volume"


def _json_number(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@functools.lru_cache(maxsize=4096)
def _json_key(key: str) -> str:
    return json.dumps(key)


def _json_value(value: Any) -> str:
    if type(value) is float:
        return repr(value) if math.isfinite(value) else "null"  # what json.dumps writes, NaN as null
    return json.dumps(_json_number(value))


def json_pairs(pairs: Iterable[tuple[str, Any]]) -> str:
    """``((key, value), ...)`` as a JSON object, NaN and infinities as null (as ``json.dumps`` of
    the dict would write them, at half the cost: one is written per signal)."""
    return "{" + ", ".join([f"{_json_key(k)}: {_json_value(v)}" for k, v in pairs]) + "}"


class Database:
    """One connection to the sqlite file; use from one thread. A ``readonly`` connection never
    writes, not even the schema, so it cannot contend with the store while it creates the file."""

    def __init__(self, path: str | Path, readonly: bool = False, busy_ms: int = 10_000) -> None:
        self.path = str(path)
        self._in_tx = False
        self._max_rows: dict[int, int] = {}  # rows per multi-row insert, by row width
        if readonly:
            self.conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                        check_same_thread=True)
            self.conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        self.conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")  # wait for another writer (e.g. ingest)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # Builds that overwrite every deleted row's bytes (Debian's, among others) make emptying a
        # backtest's records cost as much as writing them; FAST still scrubs what costs no extra I/O.
        self.conn.execute("PRAGMA secure_delete=FAST")
        # Statement journals (a multi-row INSERT inside a transaction keeps one) in memory, not in
        # temporary files: thousands of small writes per backtest saved.
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.executescript(SCHEMA)
        columnar.install(self.conn)
        if "params" not in {row[1] for row in self.conn.execute("PRAGMA table_info(signals)")}:
            self.conn.execute("ALTER TABLE signals ADD COLUMN params TEXT NOT NULL DEFAULT '{}'")  # older files

    def close(self) -> None:
        """Commit and close."""
        self.commit()
        self.conn.close()

    def wait_for_locks(self, ms: int) -> None:
        """Wait up to ``ms`` for another process's lock before a statement fails as locked."""
        self.conn.execute(f"PRAGMA busy_timeout={int(ms)}")

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (its writes not yet committed)."""
        return self._in_tx

    def begin(self) -> None:
        """Open a transaction if none is open, taking the write lock at once: a lock held by
        another process is met here, before anything of the transaction is written."""
        if not self._in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def rollback(self) -> None:
        """Drop the open transaction, if any."""
        if self._in_tx:
            self._in_tx = False
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False

    def insert_rows(self, head: str, rows: list[tuple]) -> None:
        """Run ``head`` (``INSERT ... INTO table``) over ``rows`` with multi-row ``VALUES`` statements.

        One statement carries up to a few hundred rows (sizes are powers of two, so a handful of
        statements serve every count and stay prepared): sqlite steps once per statement instead
        of once per row, and the GIL is released for the whole statement rather than re-taken
        after every row, which lets the other actors run while the rows go in.
        """
        if not rows:
            return
        width = len(rows[0])
        size = self._max_rows.get(width)
        if size is None:
            limit = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            size = self._max_rows[width] = 1 << min(9, max(0, (limit // width).bit_length() - 1))
        placeholder = "(" + ",".join("?" * width) + ")"
        start = 0
        while start < len(rows):
            count = min(size, 1 << ((len(rows) - start).bit_length() - 1))
            sql = f"{head} VALUES {','.join([placeholder] * count)}"
            self.conn.execute(sql, list(chain.from_iterable(rows[start:start + count])))
            start += count

    # -- writes (idempotent) ---------------------------------------------------------------------

    def write_bars(self, bars: Iterable[Bar]) -> int:
        """Upsert bars; return how many rows were written."""
        rows = [(b.symbol, b.timeframe, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        return self._upsert_bar_rows(rows)

    def write_frames(self, frames: Iterable[BarFrame]) -> int:
        """Upsert the bars of frames."""
        count = 0
        for f in frames:
            rows = list(zip([f.symbol] * len(f), [f.timeframe] * len(f), f.ts.tolist(), f.open.tolist(),
                            f.high.tolist(), f.low.tolist(), f.close.tolist(), f.volume.tolist(), strict=True))
            count += self._upsert_bar_rows(rows)
        return count

    def _upsert_bar_rows(self, rows: list[tuple]) -> int:
        if rows:
            self.begin()
            self.conn.executemany(
                "INSERT INTO bars VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET "
                "open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, volume=excluded.volume",
                rows,
            )
        return len(rows)

    def refresh_bar_copy(self, symbols: Iterable[str] | None = None,
                         timeframe: str | None = None) -> list[columnar.Refreshed]:
        """Commit, then bring the columnar copy of the (selected) bars up to date from the bars table."""
        self.commit()
        return columnar.refresh(self.conn, symbols, timeframe)

    def write_ticks(self, ticks: Iterable[Tick]) -> int:
        """Insert ticks, ignoring ones already stored; return how many were offered."""
        rows = [(t.symbol, t.ts, t.bid if t.has_quote else None, t.ask if t.has_quote else None, t.last, t.volume,
                 t.src, t.seq) for t in ticks]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR IGNORE INTO ticks", rows)
        return len(rows)

    def write_signals(self, run: str, signals: Iterable[Signal]) -> None:
        """Upsert signals with their inputs and the strategy's parameters (as JSON)."""
        params: dict[tuple, str] = {}  # the signals of one rule share their parameters
        rows = [(run, s.strategy, s.symbol, s.timeframe, s.ts, s.side, s.price, s.reason, json_pairs(s.inputs),
                 params.get(s.params) or params.setdefault(s.params, json_pairs(s.params))) for s in signals]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR REPLACE INTO signals (run, strategy, symbol, timeframe, ts, side, price, reason, "
                             "inputs, params)", rows)

    def write_orders(self, run: str, orders: Iterable[Order]) -> None:
        """Upsert orders by client id: each order's latest state in ``orders`` replaces what is stored."""
        latest = {o.client_id: o for o in orders}  # one row per order, its last state
        rows = [(run, o.client_id, o.strategy, o.symbol, o.side, o.qty, o.ts, o.kind, o.status, o.reason,
                 _json_number(o.limit_price), _json_number(o.stop_price)) for o in latest.values()]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR REPLACE INTO orders", rows)

    def write_fills(self, run: str, fills: Iterable[Fill], marked: frozenset[str] | set[str] = frozenset()) -> None:
        """Upsert fills by client id (one fill per order) and mark their orders filled, except the
        ``marked`` ones (whose filled state was just written with them)."""
        rows = [(run, f.client_id, f.symbol, f.side, f.qty, f.price, f.fee, f.ts) for f in fills]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR REPLACE INTO fills", rows)
            unmarked = [(run, row[1]) for row in rows if row[1] not in marked]
            if unmarked:
                self.conn.executemany("UPDATE orders SET status='filled' WHERE run=? AND client_id=?", unmarked)

    def write_equity(self, run: str, points: Iterable[tuple[int, float]]) -> None:
        """Upsert equity points."""
        rows = [(run, ts, value) for ts, value in points]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR REPLACE INTO equity", rows)

    def write_model_states(self, run: str, states: Iterable[ModelState]) -> None:
        """Upsert the latest model state per symbol and timeframe."""
        rows = [(run, m.symbol, m.timeframe, m.ts, m.kind, m.state) for m in states]
        if rows:
            self.begin()
            self.conn.executemany("INSERT OR REPLACE INTO model_state VALUES (?,?,?,?,?,?)", rows)

    def write_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        """Append dead letters."""
        rows = [(d.actor, d.ts, d.error, d.message_type, d.summary, d.ticks) for d in letters]
        if rows:
            self.begin()
            self.conn.executemany(
                "INSERT INTO dead_letters (actor, ts, error, message_type, summary, ticks) VALUES (?,?,?,?,?,?)", rows)

    def clear_run(self, run: str) -> None:
        """Delete a run's signals, orders, fills, equity and model states (a backtest starts clean)."""
        self.begin()
        for table in ("signals", "orders", "fills", "equity", "model_state"):  # fixed names below
            others = any(self.conn.execute(f"SELECT 1 FROM {table} WHERE run {op} ? LIMIT 1", (run,)).fetchone()  # noqa: S608
                         for op in ("<", ">"))
            if others:
                self.conn.execute(f"DELETE FROM {table} WHERE run=?", (run,))  # noqa: S608
            else:  # the run is all there is: sqlite empties the table at once instead of row by row
                self.conn.execute(f"DELETE FROM {table}")  # noqa: S608
        self.commit()

    # -- reads -------------------------------------------------------------------------------------

    def bar_copy_state(self, symbols: Iterable[str] | None = None, timeframe: str | None = None) -> columnar.Staleness:
        """Whether the columnar copy of the (selected) bars is current."""
        return columnar.staleness(self.conn, symbols, timeframe)

    def read_bars(self, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
                  timeframe: str | None = None) -> pd.DataFrame:
        """Bars with close time in (start, end], optionally for some symbols and one timeframe, ordered
        by close time, symbol and timeframe: from the columnar copy where it is current, else from rows."""
        symbols = list(symbols) if symbols else None
        copied = columnar.read(self.conn, symbols, start_ns, end_ns, timeframe)
        if copied is None:
            logger.info("{}: no usable columnar copy of the bars; reading the bars table", self.path)
            return self.read_bar_rows(symbols, start_ns, end_ns, timeframe)
        frame, state = copied
        for symbol, tf, since in state.changed:
            logger.info("{}: {} {} bars changed from {} on since the columnar copy was refreshed; those are read "
                        "from the bars table", self.path, symbol, tf, _iso(since))
        return frame

    def read_bar_rows(self, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
                      timeframe: str | None = None) -> pd.DataFrame:
        """``read_bars`` from the bars table alone (row by row: slow for long ranges)."""
        series, params = columnar.series_where(symbols, timeframe)
        where = [series]
        if start_ns is not None:
            where.append("ts > ?")
            params.append(start_ns)
        if end_ns is not None:
            where.append("ts <= ?")
            params.append(end_ns)
        query = (f"SELECT {_BAR_COLUMNS} FROM bars WHERE {' AND '.join(where)} "  # noqa: S608
                 "ORDER BY ts, symbol, timeframe")
        return self._bars(query, params)

    def last_bars(self, symbol: str, timeframe: str, count: int) -> list[Bar]:
        """The latest ``count`` bars of one symbol and timeframe, oldest first."""
        rows = self.conn.execute("SELECT ts, open, high, low, close, volume FROM bars WHERE symbol=? AND timeframe=? "
                                 "ORDER BY ts DESC LIMIT ?", (symbol, timeframe, count)).fetchall()
        return [Bar(symbol, ts, timeframe, o, h, lo, c, v) for ts, o, h, lo, c, v in reversed(rows)]

    def bar_summary(self, symbol: str, timeframe: str) -> tuple[int, int | None, int | None]:
        """How many bars of one symbol and timeframe are stored, and the first and last close times."""
        row = self.conn.execute("SELECT COUNT(*), MIN(ts), MAX(ts) FROM bars WHERE symbol=? AND timeframe=?",
                                (symbol, timeframe)).fetchone()
        return int(row[0]), row[1], row[2]

    def _bars(self, query: str, params: list) -> pd.DataFrame:
        frame = pd.read_sql_query(query, self.conn, params=params)
        frame["ts"] = frame["ts"].astype(np.int64)
        return frame

    def count(self, table: str, run: str | None = None) -> int:
        """Rows in a table (for one run where the table has runs)."""
        if run is None:
            return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run=?", (run,)).fetchone()[0])  # noqa: S608


def read_model_states(path: str | Path, run: str) -> list[ModelState]:
    """The stored model states of ``run``, from a reader's own connection; none if there is no database yet."""
    if not Path(path).exists():
        return []
    conn = sqlite3.connect(str(path))
    try:
        rows = conn.execute("SELECT symbol, timeframe, ts, kind, state FROM model_state WHERE run=? "
                            "ORDER BY symbol, timeframe", (run,)).fetchall()
    except sqlite3.OperationalError:  # a database from before the model_state table
        return []
    finally:
        conn.close()
    return [ModelState(*row) for row in rows]


def load_account(path: str | Path, run: str) -> tuple[list[Order], list[Fill], dict[str, float]]:
    """A run's orders, fills and the last close per symbol, read without writing (the store
    actor stays the only writer). Empty when the file does not exist yet."""
    if str(path) == ":memory:" or not Path(path).exists():
        return [], [], {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"orders", "fills", "bars"} <= tables:
            return [], [], {}
        orders = [
            Order(cid, strategy, symbol, side, qty, ts, kind, status, reason,
                  math.nan if limit is None else limit, math.nan if stop is None else stop)
            for cid, strategy, symbol, side, qty, ts, kind, status, reason, limit, stop in conn.execute(
                "SELECT client_id, strategy, symbol, side, qty, ts, kind, status, reason, limit_price, stop_price "
                "FROM orders WHERE run=? ORDER BY ts, client_id", (run,))
        ]
        fills = [Fill(*row) for row in conn.execute(
            "SELECT client_id, symbol, side, qty, price, fee, ts FROM fills WHERE run=? ORDER BY ts, client_id", (run,))]
        marks = {symbol: close for symbol, close in conn.execute(
            "SELECT b.symbol, b.close FROM bars b JOIN (SELECT symbol, MAX(ts) AS ts FROM bars GROUP BY symbol) m "
            "ON b.symbol = m.symbol AND b.ts = m.ts")}
    finally:
        conn.close()
    return orders, fills, marks


def open_existing(path: str | Path) -> Database | None:
    """Open a database file read-only if it exists and has its tables (else None, as for ``:memory:``)."""
    if str(path) == ":memory:" or not Path(path).exists():
        return None
    db = Database(path, readonly=True)
    if db.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='bars'").fetchone() is None:
        db.close()
        return None
    return db


def read_stored_bars(path: str | Path, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
                     timeframe: str | None = None) -> pd.DataFrame | None:
    """``read_bars`` from a database file (None if there is none), after bringing the columnar copy of
    the selected bars up to date if they changed since it was refreshed. If that cannot be done (a
    read-only file, a writer holding the lock too long), the bars are still read exactly: the changed
    part from the bars table."""
    symbols = list(symbols) if symbols else None
    db = open_existing(path)
    if db is None:
        return None
    try:
        if not db.bar_copy_state(symbols, timeframe).current:
            db.close()
            _refresh_bar_copy(path, symbols, timeframe)
            db = Database(path, readonly=True)
        return db.read_bars(symbols, start_ns, end_ns, timeframe)
    finally:
        db.close()


def _refresh_bar_copy(path: str | Path, symbols: list[str] | None, timeframe: str | None) -> None:
    try:
        writer = Database(path)
        try:
            refreshed = writer.refresh_bar_copy(symbols, timeframe)
        finally:
            writer.close()
    except sqlite3.Error as exc:
        logger.warning("{}: cannot bring the columnar copy of the bars up to date ({}); reading the bars table "
                       "where it is behind", path, exc)
        return
    for r in refreshed:
        logger.info("{}: columnar copy of {} {} brought up to date ({:,} bars, {:,} read from the bars table)",
                    path, r.symbol, r.timeframe, r.bars, r.from_rows)
