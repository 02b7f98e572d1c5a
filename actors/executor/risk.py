"""The risk engine in front of the executor: limits checked before an order is accepted, and a
daily loss limit that trips a kill switch.

Limits (0 = off): ``max_position`` (absolute quantity per symbol after the order),
``max_notional`` (absolute quantity x price per symbol after the order), ``max_open_orders``,
``max_orders_per_minute`` (by the orders' own timestamps, so backtests stay deterministic),
``daily_loss_pct`` (a fall of equity from the start of the UTC day, in percent). Tripping the
daily loss limit halts new orders for good (until restart); the executor then cancels what is
open and flattens every position. Refusals are reasons, never exceptions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from messages.trading import BUY, Order

__all__ = ["DAY_NS", "RiskEngine", "RiskLimits"]

DAY_NS = 86_400_000_000_000
MINUTE_NS = 60_000_000_000


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits; 0 switches one off."""

    max_position: float = 0.0
    max_notional: float = 0.0
    max_open_orders: int = 0
    max_orders_per_minute: int = 0
    daily_loss_pct: float = 0.0


class RiskEngine:
    """Checks orders against the limits and watches the daily loss."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.recent: deque[int] = deque()
        self.halted = False
        self.halt_reason = ""
        self.day = -1
        self.day_start_equity = 0.0
        self.rejections = 0

    def copy(self) -> RiskEngine:
        """An independent copy (for checkpoints)."""
        twin = RiskEngine(self.limits)
        twin.recent = deque(self.recent)
        twin.halted, twin.halt_reason = self.halted, self.halt_reason
        twin.day, twin.day_start_equity, twin.rejections = self.day, self.day_start_equity, self.rejections
        return twin

    def check(self, order: Order, position_qty: float, price: float, open_orders: int) -> str | None:
        """The reason to refuse ``order``, or None to accept it (and count it for the rate limit)."""
        limits = self.limits
        reason = None
        after = position_qty + (order.qty if order.side == BUY else -order.qty)
        if self.halted:
            reason = f"kill switch: {self.halt_reason}"
        elif limits.max_position and abs(after) > limits.max_position:
            reason = f"max position {limits.max_position:g} exceeded ({abs(after):g})"
        elif limits.max_notional and abs(after) * price > limits.max_notional:
            reason = f"max notional {limits.max_notional:,.2f} exceeded ({abs(after) * price:,.2f})"
        elif limits.max_open_orders and open_orders >= limits.max_open_orders:
            reason = f"max open orders {limits.max_open_orders} reached"
        elif limits.max_orders_per_minute:
            while self.recent and order.ts - self.recent[0] >= MINUTE_NS:
                self.recent.popleft()
            if len(self.recent) >= limits.max_orders_per_minute:
                reason = f"max order rate {limits.max_orders_per_minute}/min reached"
        if reason is not None:
            self.rejections += 1
        elif limits.max_orders_per_minute:
            self.recent.append(order.ts)
        return reason

    def watch(self, ts: int, equity: float) -> str | None:
        """Track equity at ``ts``; return a reason when the daily loss limit trips (once)."""
        day = ts // DAY_NS
        if day != self.day:
            self.day, self.day_start_equity = day, equity
            return None
        limit = self.limits.daily_loss_pct
        if self.halted or not limit or self.day_start_equity <= 0:
            return None
        loss_pct = 100.0 * (1.0 - equity / self.day_start_equity)
        if equity <= self.day_start_equity * (1.0 - limit / 100.0):
            self.halted = True
            self.halt_reason = f"daily loss {loss_pct:.2f}% reached the limit of {limit:g}%"
            return self.halt_reason
        return None
