"""Trading decisions and their consequences: signals, orders, fills.

Immutable like every message. NamedTuples rather than frozen dataclasses: a backtest builds one
per decision, order state and fill, where construction cost counts (three to five times cheaper).
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["BUY", "ORDER_STATES", "SELL", "Fill", "Order", "Signal"]

BUY = "buy"
SELL = "sell"


class Signal(NamedTuple):
    """A strategy's decision at a bar's close, with the inputs that explain it.

    ``inputs`` are the values the rule read at that bar (indicators, model probability);
    ``params`` are the strategy's parameters, defaults included.
    """

    strategy: str
    symbol: str
    timeframe: str
    ts: int
    side: str
    price: float
    reason: str
    inputs: tuple[tuple[str, float], ...] = ()
    params: tuple[tuple[str, float | int | bool], ...] = ()
    order: str = "market"          # market | limit | stop
    limit_price: float = math.nan
    stop_price: float = math.nan


ORDER_STATES = ("submitted", "accepted", "rejected", "filled", "cancelled")


class Order(NamedTuple):
    """An order and its state; ``client_id`` is deterministic, so a replayed decision is recognised.

    Every change of ``status`` (submitted, accepted, rejected, filled, cancelled) is a new Order
    published as an event and stored.
    """

    client_id: str
    strategy: str
    symbol: str
    side: str
    qty: float
    ts: int
    kind: str = "market"
    status: str = "submitted"
    reason: str = ""
    limit_price: float = math.nan
    stop_price: float = math.nan


class Fill(NamedTuple):
    """An execution of an order; ``ts`` is when it happened (the open of the bar that filled it)."""

    client_id: str
    symbol: str
    side: str
    qty: float
    price: float
    fee: float
    ts: int
