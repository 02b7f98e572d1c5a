"""Reading the latest trading records on a connection: the tail of the equity curve (what the
dashboard shows; its latest signals come from ``StoreReader.recent_signals``, as ``ctl signals``')."""

from __future__ import annotations

import sqlite3
from typing import Any

from actors.store.errors import StorageError, describe

__all__ = ["RecentReads"]


class RecentReads:
    """Queries of the latest records of a run on ``self.conn`` (of the class that mixes them in)."""

    conn: sqlite3.Connection
    path: str
    _tables: set[str]

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(describe(exc, self.path)) from exc

    def equity_tail(self, run: str, count: int) -> tuple[list[int], list[float]]:
        """The latest ``count`` equity marks of ``run``, oldest first: their times (ns) and values."""
        if "equity" not in self._tables:
            return [], []
        rows = self._rows("SELECT ts, equity FROM equity WHERE run = ? ORDER BY ts DESC LIMIT ?", (run, count))
        rows.reverse()
        return [ts for ts, _ in rows], [equity for _, equity in rows]
