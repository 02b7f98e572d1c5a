"""Paper broker: market orders filled at the next bar's open, fees, cash, positions, equity.

The same logic serves backtest and live. Within a batch, decisions and fills are processed in
time order across symbols (a decision at a bar's close comes before a fill at the next open),
so sizing sees the cash and equity of that moment. Client order ids are deterministic:
a decision replayed after a restart is recognised and never trades twice.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from messages.market import BarFrame, timeframe_ns
from messages.trading import BUY, SELL, Fill, Order, Signal

__all__ = ["BatchResult", "PaperBroker", "Position", "Trade"]


@dataclass(slots=True)
class Position:
    """An open long position."""

    qty: float
    avg_price: float
    entry_ts: int
    entry_fee: float


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip; times are fill times (the open of the bar that filled)."""

    symbol: str
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    qty: float
    pnl: float


@dataclass(slots=True)
class BatchResult:
    """What one batch produced."""

    orders: list[Order]
    fills: list[Fill]
    equity_ts: np.ndarray
    equity: np.ndarray


def _fill_kind(side: str) -> int:
    return 1 if side == SELL else 2


class PaperBroker:
    """Cash account, long positions per symbol, pending market orders."""

    def __init__(self, cash: float, fee_bps: float, slippage_bps: float, allocation: float, n_symbols: int = 1,
                 keep_equity: int | None = None, keep_records: int | None = None) -> None:
        self.initial_cash = cash
        self.cash = cash
        self.fee = fee_bps / 1e4
        self.slippage = slippage_bps / 1e4
        self.allocation = allocation
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, float] = {}
        self.pending: dict[str, Order] = {}
        self.orders: deque[Order] = deque(maxlen=keep_records)
        self.fills: deque[Fill] = deque(maxlen=keep_records)
        self.trades: deque[Trade] = deque(maxlen=keep_records)
        self._seen: set[str] = set()
        self.duplicates = 0
        self._eq_ts: deque[np.ndarray] = deque()
        self._eq_val: deque[np.ndarray] = deque()
        self._eq_len = 0
        self.keep_equity = keep_equity
        self.n_symbols = max(1, n_symbols)

    def copy(self) -> PaperBroker:
        """An independent copy of the account (for checkpoints); equity arrays are shared, never changed."""
        twin = copy.copy(self)
        twin.positions = {s: dataclasses.replace(p) for s, p in self.positions.items()}
        twin.marks, twin.pending, twin._seen = dict(self.marks), dict(self.pending), set(self._seen)
        twin.orders, twin.fills, twin.trades = (deque(d, maxlen=d.maxlen) for d in (self.orders, self.fills, self.trades))
        twin._eq_ts, twin._eq_val = deque(self._eq_ts), deque(self._eq_val)
        return twin

    # -- views ---------------------------------------------------------------------------------

    def equity_now(self) -> float:
        """Cash plus positions at their latest marks."""
        return self.cash + sum(p.qty * self.marks.get(s, p.avg_price) for s, p in self.positions.items())

    def equity_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Equity at every bar close seen (bounded to ``keep_equity`` points in live)."""
        if not self._eq_ts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(self._eq_ts), np.concatenate(self._eq_val)

    # -- processing ----------------------------------------------------------------------------

    def process(self, frames: tuple[BarFrame, ...], signals: tuple[Signal, ...]) -> BatchResult:
        """Fill pending orders, turn signals into orders, and mark equity, for one batch."""
        cash_before = self.cash
        qty_before = {symbol: p.qty for symbol, p in self.positions.items()}
        by_key = {(s.symbol, s.timeframe, s.ts): s for s in signals}
        # (time, kind, frame, bar, seq); kind 0 = decision at a close, 1 = sell fill, 2 = buy fill:
        # a decision at a close precedes a fill at the next open, and at one instant sells free
        # cash before buys spend it.
        events: list[tuple[int, int, int, int, int]] = []
        counter = 0
        for f_idx, frame in enumerate(frames):
            if len(frame) == 0:
                continue
            order = self.pending.get(frame.symbol)
            if order is not None:
                opens = np.asarray(frame.ts) - timeframe_ns(frame.timeframe)
                j = int(np.searchsorted(opens, order.ts, side="left"))  # never a bar that opened before the decision
                if j < len(frame):
                    events.append((int(opens[j]), _fill_kind(order.side), f_idx, j, counter))
                    counter += 1
            if frame.signal is not None:
                for i in np.flatnonzero(frame.signal).tolist():
                    events.append((int(frame.ts[i]), 0, f_idx, i, counter))
                    counter += 1
        heapq.heapify(events)
        orders: list[Order] = []
        fills: list[Fill] = []
        steps: list[tuple[int, str, float, float]] = []  # (close ts of fill bar, symbol, cash after, qty after)
        while events:
            when, kind, f_idx, i, _ = heapq.heappop(events)
            frame = frames[f_idx]
            if kind == 0:
                signal = by_key.get((frame.symbol, frame.timeframe, int(frame.ts[i])))
                if signal is None:
                    continue
                order = self._order(signal, frames, when)
                if order is None:
                    continue
                orders.append(order)
                self.orders.append(order)
                if order.status == "submitted":
                    self.pending[frame.symbol] = order
                    if i + 1 < len(frame):
                        heapq.heappush(events, (int(frame.ts[i + 1]) - timeframe_ns(frame.timeframe),
                                                _fill_kind(order.side), f_idx, i + 1, counter))
                        counter += 1
            else:
                fill = self._fill(frame, i, when)
                if fill is not None:
                    fills.append(fill)
                    pos = self.positions.get(frame.symbol)
                    steps.append((int(frame.ts[i]), frame.symbol, self.cash, pos.qty if pos else 0.0))
        equity_ts, equity = self._mark(frames, steps, cash_before, qty_before)
        return BatchResult(orders, fills, equity_ts, equity)

    def _mark_at(self, symbol: str, frames: tuple[BarFrame, ...], when: int) -> float:
        for frame in frames:
            if frame.symbol == symbol:
                j = int(np.searchsorted(frame.ts, when, side="right")) - 1
                if j >= 0:
                    return float(frame.close[j])
        return self.marks.get(symbol, math.nan)

    def _order(self, signal: Signal, frames: tuple[BarFrame, ...], when: int) -> Order | None:
        client_id = f"{signal.strategy}:{signal.symbol}:{signal.timeframe}:{signal.ts}:{signal.side}"
        if client_id in self._seen:
            self.duplicates += 1
            return None
        self._seen.add(client_id)
        position = self.positions.get(signal.symbol)
        if signal.side == SELL:
            if position is None:
                return Order(client_id, signal.strategy, signal.symbol, SELL, 0.0, when, status="rejected", reason="no position")
            return Order(client_id, signal.strategy, signal.symbol, SELL, position.qty, when)
        if position is not None:
            return Order(client_id, signal.strategy, signal.symbol, BUY, 0.0, when, status="rejected", reason="already long")
        equity = self.cash
        for symbol, pos in self.positions.items():
            mark = self._mark_at(symbol, frames, when)
            equity += pos.qty * (pos.avg_price if math.isnan(mark) else mark)
        allocation = self.allocation or 1.0 / self.n_symbols
        budget = min(self.cash, equity * allocation)
        qty = budget / (signal.price * (1.0 + self.slippage) * (1.0 + self.fee))
        if qty <= 0.0 or budget <= 0.0:
            return Order(client_id, signal.strategy, signal.symbol, BUY, 0.0, when, status="rejected", reason="no cash")
        return Order(client_id, signal.strategy, signal.symbol, BUY, qty, when)

    def _fill(self, frame: BarFrame, i: int, when: int) -> Fill | None:
        order = self.pending.pop(frame.symbol, None)
        if order is None:
            return None
        open_price = float(frame.open[i])
        if order.side == BUY:
            price = open_price * (1.0 + self.slippage)
            qty = min(order.qty, self.cash / (price * (1.0 + self.fee)))
            fee = qty * price * self.fee
            self.cash -= qty * price + fee
            self.positions[frame.symbol] = Position(qty, price, when, fee)
        else:
            position = self.positions.pop(frame.symbol, None)
            if position is None:
                return None
            price = open_price * (1.0 - self.slippage)
            qty = position.qty
            fee = qty * price * self.fee
            self.cash += qty * price - fee
            pnl = qty * (price - position.avg_price) - position.entry_fee - fee
            self.trades.append(Trade(frame.symbol, position.entry_ts, position.avg_price, when, price, qty, pnl))
        fill = Fill(order.client_id, frame.symbol, order.side, qty, price, fee, when)
        self.fills.append(fill)
        return fill

    def _mark(self, frames: tuple[BarFrame, ...], steps: list[tuple[int, str, float, float]],
              cash_before: float, qty_before: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Equity at each bar close of the batch (cash and positions as of that close); update marks.

        A fill at a bar's open counts from that bar's close on.
        """
        nonempty = [f for f in frames if len(f)]
        if not nonempty:
            return np.empty(0, dtype=np.int64), np.empty(0)
        timeline = np.unique(np.concatenate([f.ts for f in nonempty]))
        equity = np.full(len(timeline), cash_before)
        if steps:
            step_ts = np.array([s[0] for s in steps], dtype=np.int64)
            step_cash = np.array([s[2] for s in steps])
            idx = np.searchsorted(step_ts, timeline, side="right") - 1
            equity = np.where(idx >= 0, step_cash[np.maximum(idx, 0)], cash_before)
        held = set(qty_before) | {s[1] for s in steps}
        for symbol in sorted(held):
            qty0 = qty_before.get(symbol, 0.0)
            sym_steps = [s for s in steps if s[1] == symbol]
            if sym_steps:
                s_ts = np.array([s[0] for s in sym_steps], dtype=np.int64)
                s_qty = np.array([s[3] for s in sym_steps])
                idx = np.searchsorted(s_ts, timeline, side="right") - 1
                qty = np.where(idx >= 0, s_qty[np.maximum(idx, 0)], qty0)
            else:
                qty = np.full(len(timeline), qty0)
            marks = np.full(len(timeline), self.marks.get(symbol, math.nan))
            for frame in nonempty:
                if frame.symbol == symbol:
                    j = np.searchsorted(frame.ts, timeline, side="right") - 1
                    marks = np.where(j >= 0, np.asarray(frame.close)[np.maximum(j, 0)], marks)
            equity = equity + np.where(qty != 0.0, qty * marks, 0.0)
        for frame in nonempty:
            self.marks[frame.symbol] = float(frame.close[-1])
        self._record_equity(timeline, equity)
        return timeline, equity

    def _record_equity(self, ts: np.ndarray, values: np.ndarray) -> None:
        self._eq_ts.append(ts)
        self._eq_val.append(values)
        self._eq_len += len(ts)
        while self.keep_equity is not None and self._eq_len - len(self._eq_ts[0]) >= self.keep_equity:
            self._eq_len -= len(self._eq_ts.popleft())
            self._eq_val.popleft()
