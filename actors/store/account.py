"""The stored account of a run: what a restart rebuilds the executor's paper account from."""

from __future__ import annotations

import math
import sqlite3
from typing import NamedTuple

from messages.trading import Fill, Order

__all__ = ["StoredAccount", "read_account"]


class StoredAccount(NamedTuple):
    """A run's orders and fills in the order they happened, and the last stored close per symbol
    (to mark open positions at)."""

    orders: list[Order]
    fills: list[Fill]
    marks: dict[str, float]


def read_account(conn: sqlite3.Connection, run: str) -> StoredAccount:
    """Read ``run``'s account on ``conn`` (a database with the orders, fills and bars tables)."""
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
    return StoredAccount(orders, fills, marks)
