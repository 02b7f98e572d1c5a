"""Trading decisions and their consequences: deciders, signals, orders, fills.

Immutable like every message. NamedTuples rather than frozen dataclasses: a backtest builds one
per decision, order state and fill, where construction cost counts (three to five times cheaper).

The position is known in one place, the executor's account. A strategy therefore does not send
decisions but a :class:`Decider` with each frame: what it would do at each bar's close given a
position. The executor asks it in time order, at each bar's close, with the position it holds
at that moment (fills, rejections and protective exits included), and turns the answer into an
order. So a strategy never trades on a position it only assumes, and the decisions do not depend
on how bars are batched.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

__all__ = ["BUY", "ORDER_STATES", "SELL", "Candidates", "Decider", "Fill", "Order", "Signal"]

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
    sizing: str = ""               # "" (executor.allocation) | equity (fraction) | qty (units) | risk (fraction
    size: float = math.nan         # of equity lost at stop_loss)
    stop_loss: float = math.nan    # protective orders attached to the position the order opens:
    take_profit: float = math.nan  # prices; the first filled cancels the others
    trail: float = math.nan        # trailing stop distance, a fraction of the best price since entry


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


class Decider(Protocol):
    """What a strategy would do at each bar's close of one frame, asked with the position held.

    ``asks_while_open``: whether it is asked while an order of its symbol is open (a per-bar
    strategy is asked at every bar; a rule's candidates wait for that order's fill or cancel).
    """

    asks_while_open: bool

    def first(self, start: int, position: float) -> int:
        """The first bar at or after ``start`` where a decision may be taken while ``position`` is
        held; the frame's length if none. Bars skipped here are never asked."""
        ...

    def decide(self, i: int, position: float) -> Signal | None:
        """The decision at bar ``i``'s close while ``position`` (signed quantity) is held, or None."""
        ...

    def slice(self, start: int, stop: int) -> Decider:
        """The decider of bars ``start:stop``."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class Candidates:
    """A long-only rule's conditions for a frame, computed in one vectorised step.

    ``buy`` / ``sell``: the bars (indices, ascending) that would buy while flat (or cover while
    short) / sell while long. ``inputs`` are the columns recorded with a signal; ``explain(side,
    i, inputs)`` says in words why. The executor visits only the candidates of the side that
    matters for the position it holds, so Python runs once per candidate taken, not once per bar.
    """

    strategy: str
    params: tuple[tuple[str, float | int | bool], ...]
    symbol: str
    timeframe: str
    ts: np.ndarray
    close: np.ndarray
    buy: tuple[int, ...]
    sell: tuple[int, ...]
    inputs: tuple[tuple[str, np.ndarray], ...]
    explain: Callable[[str, int, dict[str, np.ndarray]], str]
    asks_while_open: ClassVar[bool] = False
    _rows: dict[int, tuple[int, float, tuple[float, ...]]] = field(default_factory=dict, repr=False)
    _named: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _names: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        """Read what a signal records at each candidate bar, in one vectorised step (in the thread
        that makes the candidates), so that taking one costs no numpy call."""
        where = sorted({*self.buy, *self.sell})
        at = np.asarray(where, dtype=np.int64)
        columns = [values[at].tolist() for _, values in self.inputs]
        rows = dict(zip(where, zip(self.ts[at].tolist(), self.close[at].tolist(),
                                   zip(*columns) if columns else ((),) * len(where), strict=True), strict=True))
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "_named", dict(self.inputs))
        object.__setattr__(self, "_names", tuple(key for key, _ in self.inputs))

    def first(self, start: int, position: float) -> int:
        """The next buy candidate while flat or short, the next sell candidate while long."""
        bars = self.sell if position > 0 else self.buy
        k = bisect_left(bars, start)
        return bars[k] if k < len(bars) else len(self.ts)

    def decide(self, i: int, position: float) -> Signal | None:
        """A buy while flat or short, a sell while long, if bar ``i`` is a candidate of that side."""
        side, bars = (SELL, self.sell) if position > 0 else (BUY, self.buy)
        k = bisect_left(bars, i)
        if k == len(bars) or bars[k] != i:
            return None
        ts, close, values = self._rows[i]
        return Signal(self.strategy, self.symbol, self.timeframe, ts, side, close, self.explain(side, i, self._named),
                      tuple(zip(self._names, values)), self.params)

    def slice(self, start: int, stop: int) -> Candidates:
        """The candidates of bars ``start:stop``, renumbered from 0."""
        def cut(bars: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(i - start for i in bars[bisect_left(bars, start):bisect_left(bars, stop)])

        return Candidates(self.strategy, self.params, self.symbol, self.timeframe, self.ts[start:stop],
                          self.close[start:stop], cut(self.buy), cut(self.sell),
                          tuple((key, values[start:stop]) for key, values in self.inputs), self.explain)
