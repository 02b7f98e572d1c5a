"""Writing the database: the store actor's connection while a system runs, ingest and a backtest's
clean start offline. Every write is idempotent (an upsert by the record's key), so a batch written
twice (a restarted store, an import run again) stores each record once.
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

from loguru import logger

from actors.store import columnar, schema
from actors.store.bar_reads import BarReads
from actors.store.connection import BUSY_MS, connect
from actors.store.errors import StorageError, describe
from messages.market import Bar, BarFrame, Tick
from messages.pipeline import ModelState
from messages.system import DeadLetter
from messages.trading import Fill, Order, Signal

__all__ = ["Database", "clear_run", "json_pairs", "refresh_bar_copy"]


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


class Database(BarReads):
    """The writing connection to the sqlite file (creating it and its tables); use from one thread.
    It also reads bars back on its own connection (see ``BarReads``)."""

    def __init__(self, path: str | Path, busy_ms: int = BUSY_MS) -> None:
        self.path = str(path)
        self._in_tx = False
        self._max_rows: dict[int, int] = {}  # rows per multi-row insert, by row width
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path, busy_ms=busy_ms)
        schema.create(self.conn)

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
                "open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, "
                "volume=excluded.volume",
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
            self.insert_rows("INSERT OR REPLACE INTO signals (run, strategy, symbol, timeframe, ts, side, price, "
                             "reason, inputs, params)", rows)

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

    def write_venue_ids(self, run: str, ids: Iterable[tuple[str, str, str]]) -> None:
        """Upsert the client order ids sent to a venue for ours, with the venue's order ids."""
        rows = [(run, *row) for row in ids]
        if rows:
            self.begin()
            self.insert_rows("INSERT OR REPLACE INTO venue_ids", rows)

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
            probe = f"SELECT 1 FROM {table} WHERE run {{}} ? LIMIT 1"  # noqa: S608
            others = any(self.conn.execute(probe.format(op), (run,)).fetchone() for op in ("<", ">"))
            if others:
                self.conn.execute(f"DELETE FROM {table} WHERE run=?", (run,))  # noqa: S608
            else:  # the run is all there is: sqlite empties the table at once instead of row by row
                self.conn.execute(f"DELETE FROM {table}")  # noqa: S608
        self.commit()


def clear_run(path: str | Path, run: str) -> None:
    """Delete a run's records from the database file at ``path`` (creating it if need be), before
    the system that writes them starts; StorageError (one line) if that cannot be done."""
    try:
        db = Database(path)
        try:
            db.clear_run(run)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StorageError(describe(exc, str(path))) from None


def refresh_bar_copy(path: str | Path, symbols: Iterable[str] | None = None, timeframe: str | None = None) -> bool:
    """Bring the columnar copy of the (selected) bars of the file at ``path`` up to date, while no store
    runs on it. Whether that was done: a read-only file or a writer holding the lock too long leaves
    the copy behind, with a warning (reads stay exact, taking the changed part from the bars table)."""
    try:
        writer = Database(path)
        try:
            refreshed = writer.refresh_bar_copy(symbols, timeframe)
        finally:
            writer.close()
    except sqlite3.Error as exc:
        logger.warning("{}: cannot bring the columnar copy of the bars up to date ({}); reading the bars table "
                       "where it is behind", path, exc)
        return False
    for r in refreshed:
        logger.info("{}: columnar copy of {} {} brought up to date ({:,} bars, {:,} read from the bars table)",
                    path, r.symbol, r.timeframe, r.bars, r.from_rows)
    return True
