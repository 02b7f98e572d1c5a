"""The one way to read the database from outside the store: :class:`StoreReader`.

Every read the other actors and the runners make goes through it: the buffer's warm-up bars, the
model's stored states, the account the executor rebuilds, the bars a backtest replays, where the
stored series ends for the simulator. It opens the file read-only (see ``connection``), so it never
contends with the store for the write lock and never creates a file: a database that is not there
yet, or has no tables yet, reads as an empty one. An error of the file is a one-line StorageError.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from actors.store import schema
from actors.store.account import StoredAccount, read_account
from actors.store.bar_reads import BarReads
from actors.store.connection import BUSY_MS, connect, stored
from actors.store.errors import StorageError, describe
from actors.store.recent import RecentReads
from actors.store.writer import refresh_bar_copy
from messages.market import Bar
from messages.pipeline import ModelState

__all__ = ["StoreReader"]


class StoreReader(BarReads, RecentReads):
    """A read-only connection to the database at ``path``, opened at once; use from one thread and
    ``close`` it (or use it as a context manager). ``present`` says whether the file exists with its
    tables; when it does not, every read answers as an empty database would."""

    def __init__(self, path: str | Path, busy_ms: int = BUSY_MS) -> None:
        self.path = str(path)
        self.present = False
        self._busy_ms = busy_ms
        with self._reading():
            if stored(self.path):
                conn = connect(self.path, readonly=True, busy_ms=busy_ms)
                try:
                    self.present = "bars" in schema.tables(conn)
                finally:
                    if not self.present:
                        conn.close()
                if self.present:
                    self.conn = conn
        if not self.present:  # a database not there yet reads as an empty one
            self.conn = connect(":memory:", wal=False)
            schema.create(self.conn)
        self._tables = schema.tables(self.conn)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn an error of the file into a one-line StorageError naming it."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(describe(exc, self.path)) from exc

    def _has(self, *tables: str) -> bool:
        return set(tables) <= self._tables

    # -- what the actors read when they start ------------------------------------------------------

    def last_bars(self, symbol: str, timeframe: str, count: int) -> list[Bar]:
        """The latest ``count`` stored bars of one symbol and timeframe, oldest first (the buffer's warm-up)."""
        with self._reading():
            return super().last_bars(symbol, timeframe, count)

    def model_states(self, run: str) -> list[ModelState]:
        """The stored model states of ``run``, by symbol and timeframe (none in a file from before them)."""
        if not self._has("model_state"):
            return []
        with self._reading():
            rows = self.conn.execute("SELECT symbol, timeframe, ts, kind, state FROM model_state WHERE run=? "
                                     "ORDER BY symbol, timeframe", (run,)).fetchall()
        return [ModelState(*row) for row in rows]

    def account(self, run: str) -> StoredAccount:
        """``run``'s stored orders, fills and the last close per symbol: the account a restart rebuilds."""
        if not self._has("orders", "fills", "bars"):
            return StoredAccount([], [], {})
        with self._reading():
            return read_account(self.conn, run)

    def recent_signals(self, run: str, last: int) -> list[dict[str, Any]]:
        """``run``'s latest ``last`` stored signals, oldest first, with their reasons, the inputs the rule
        read and the strategy's parameters (``ctl signals``)."""
        if not self._has("signals"):
            return []
        with self._reading():
            rows = self.conn.execute(
                "SELECT strategy, symbol, timeframe, ts, side, price, reason, inputs, params FROM signals "
                "WHERE run=? ORDER BY ts DESC, symbol DESC, strategy DESC LIMIT ?", (run, last)).fetchall()
        keys = ("strategy", "symbol", "timeframe", "ts", "side", "price", "reason")
        return [{**dict(zip(keys, row[:7], strict=True)), "inputs": json.loads(row[7]), "params": json.loads(row[8])}
                for row in reversed(rows)]

    # -- what the runners read before a system starts ----------------------------------------------

    def series_end(self, symbols: Iterable[str], timeframe: str) -> tuple[int | None, dict[str, float]]:
        """Where the stored ``timeframe`` series of ``symbols`` end: the latest close time among them
        (None if none is stored) and the last close of each symbol that has one."""
        last = [bars[-1] for s in symbols if (bars := self.last_bars(s, timeframe, 1))]
        if not last:
            return None, {}
        return max(bar.ts for bar in last), {bar.symbol: bar.close for bar in last}

    def replay_bars(self, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
                    timeframe: str | None = None) -> pd.DataFrame | None:
        """``read_bars`` for a backtest (None if there is no database), after bringing the columnar copy
        of the selected bars up to date if they changed since it was refreshed: the one write a reader
        makes, while no store runs. If it cannot be made (a read-only file, a writer holding the lock
        too long), the bars are still read exactly: the changed part from the bars table."""
        if not self.present:
            return None
        symbols = list(symbols) if symbols else None
        with self._reading():
            if not self.bar_copy_state(symbols, timeframe).current and refresh_bar_copy(self.path, symbols, timeframe):
                self.conn.close()  # a fresh connection sees the copy as the refresh left it
                self.conn = connect(self.path, readonly=True, busy_ms=self._busy_ms)
            return self.read_bars(symbols, start_ns, end_ns, timeframe)
