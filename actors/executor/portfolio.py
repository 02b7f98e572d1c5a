"""Cash, signed positions per symbol, average prices, realised and unrealised PnL, closed trades."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

from actors.executor.records import RecordLog
from messages.trading import BUY, Fill

__all__ = ["Portfolio", "Position", "Trade"]


@dataclass(slots=True)
class Position:
    """An open position: ``qty`` > 0 long, < 0 short; ``avg_price`` of the open quantity."""

    qty: float
    avg_price: float
    entry_ts: int
    entry_fees: float
    realized: float = 0.0


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip; times are fill times (the open of the bar, or the tick, that filled).

    ``qty`` is signed (negative for a short); ``pnl`` is net of the fees of both sides.
    """

    symbol: str
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    qty: float
    pnl: float


class Portfolio:
    """The account. ``apply`` books a fill; a position that returns to zero (or flips) closes a trade."""

    def __init__(self, cash: float, keep_trades: int | None = None) -> None:
        self.initial_cash = cash
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, float] = {}
        self.realized = 0.0
        self.fees = 0.0
        self.trades: RecordLog[Trade] = RecordLog(maxlen=keep_trades)

    def copy(self) -> Portfolio:
        """An independent copy (for checkpoints)."""
        twin = copy.copy(self)
        twin.positions = {s: dataclasses.replace(p) for s, p in self.positions.items()}
        twin.marks = dict(self.marks)
        twin.trades = self.trades.copy()
        return twin

    def qty(self, symbol: str) -> float:
        """Signed quantity held."""
        position = self.positions.get(symbol)
        return position.qty if position else 0.0

    def equity(self) -> float:
        """Cash plus every position at its latest mark (its average price if never marked)."""
        return self.cash + sum(p.qty * self.marks.get(s, p.avg_price) for s, p in self.positions.items())

    def unrealized(self) -> float:
        """Open PnL at the latest marks."""
        return sum(p.qty * (self.marks.get(s, p.avg_price) - p.avg_price) for s, p in self.positions.items())

    def apply(self, fill: Fill) -> Trade | None:
        """Book a fill; return the trade it closed, if any."""
        signed = fill.qty if fill.side == BUY else -fill.qty
        self.cash -= signed * fill.price + fill.fee
        self.fees += fill.fee
        position = self.positions.get(fill.symbol)
        if position is None or position.qty == 0.0:
            self.positions[fill.symbol] = Position(signed, fill.price, fill.ts, fill.fee)
            return None
        if (position.qty > 0) == (signed > 0):  # adding to the position
            total = position.qty + signed
            position.avg_price = (position.avg_price * position.qty + fill.price * signed) / total
            position.qty = total
            position.entry_fees += fill.fee
            return None
        closing = min(abs(signed), abs(position.qty)) * math.copysign(1.0, -position.qty)  # signed, reduces
        gain = -closing * (fill.price - position.avg_price)
        share = abs(closing) / abs(signed)
        position.realized += gain
        self.realized += gain
        remainder = position.qty + signed
        if abs(remainder) > 1e-12 * max(1.0, abs(position.qty)):
            if (remainder > 0) == (position.qty > 0):  # partly reduced
                position.qty = remainder
                position.realized -= fill.fee
                return None
        trade = Trade(fill.symbol, position.entry_ts, position.avg_price, fill.ts, fill.price, position.qty,
                      position.realized - position.entry_fees - fill.fee * share)
        self.trades.append(trade)
        del self.positions[fill.symbol]
        if abs(remainder) > 1e-12 * max(1.0, abs(position.qty)):  # flipped: the rest opens a new position
            self.positions[fill.symbol] = Position(remainder, fill.price, fill.ts, fill.fee * (1.0 - share))
        return trade
