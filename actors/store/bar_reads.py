"""Reading stored bars on a connection: a range from the columnar copy (rows where it is behind), the
latest bars of a series, a series' extent. Shared by the reader and the writer (which reads what it
wrote on its own connection, e.g. ingest counting new bars)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import numpy as np
import pandas as pd
from loguru import logger

from actors.store import columnar
from actors.store.history import iso_utc as _iso
from messages.market import Bar

__all__ = ["BarReads"]

_BAR_COLUMNS = "symbol, timeframe, ts, open, high, low, close, volume"


class BarReads:
    """Bar queries on ``self.conn``, the connection of the class that mixes them in (``self.path`` names it)."""

    conn: sqlite3.Connection
    path: str

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
        frame = pd.read_sql_query(query, self.conn, params=params)
        frame["ts"] = frame["ts"].astype(np.int64)
        return frame

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

    def count(self, table: str, run: str | None = None) -> int:
        """Rows in a table (for one run where the table has runs)."""
        if run is None:
            return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run=?", (run,)).fetchone()[0])  # noqa: S608
