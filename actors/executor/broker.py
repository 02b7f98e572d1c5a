"""Paper broker: orders through the risk engine, fills by the fill model, the portfolio, equity.

The same logic serves backtest and live. Within a batch, decisions and fills are processed in
time order across symbols (a decision at a bar's close comes before a fill at the next open; at
one instant sells come before buys). Orders pending from an earlier batch fill on that batch's
ticks when the symbol has ticks (live), else on its bars (backtest). Client order ids are
deterministic (strategy:symbol:timeframe:bar_ts:side): a decision seen twice never trades twice.

With ``write_ahead`` (live), an order left open by the batch that decided it may not fill until
the store has committed it: the batch's ``mark`` names it, and ``confirm(mark)`` (on the store's
word) arms it. An order a later bar of the same batch fills (bars already seen, as in a burst)
is stored with its fill, in one transaction.

An entry may carry protective orders (stop-loss, take-profit, trailing stop): submitted with it,
accepted when it fills (for the filled quantity), watched here like any open order; the first filled
cancels the others, and so do an exit the strategy decides and the kill switch. The broker emulates
them on its side, backtest and live alike.

The parts live beside it: the open orders, the ids decided on and the brackets in ``orderbook``, the
write-ahead marks in ``writeahead``, equity marked to market and the curve in ``equity``, the fill
prices in ``fills``, entry sizes in ``sizing``, positions in ``portfolio``, the limits in ``risk``.
"""

from __future__ import annotations

import copy
import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actors.executor.equity import EquityCurve, mark_to_market
from actors.executor.fills import tick_fill
from actors.executor.orderbook import (DecidedIds, PendingOrder, bracket_fill, copy_open, protected_entry,
                                       protective_orders, trail_of)
from actors.executor.portfolio import Portfolio, Trade
from actors.executor.records import RecordLog
from actors.executor.risk import RiskEngine, RiskLimits
from actors.executor.sizing import entry_qty
from actors.executor.writeahead import WriteAhead
from messages.market import BarFrame, Tick, timeframe_ns
from messages.trading import BUY, SELL, Fill, Order, Signal
from supervisors.errors import StrategyFault

__all__ = ["BatchResult", "BrokerConfig", "PaperBroker"]


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Costs, sizing, latency and limits."""

    cash: float = 100_000.0
    fee_bps: float = 10.0
    fee_fixed: float = 0.0
    slippage_bps: float = 0.0
    allocation: float = 0.0          # fraction of equity per new position; 0 = 1 / n_symbols
    n_symbols: int = 1
    allow_short: bool = False
    latency_bars: int = 0
    latency_ms: float = 0.0
    limits: RiskLimits = field(default_factory=RiskLimits)
    strategy_restarts: int = 10      # faults of a strategy's code on one symbol restarted (fresh instance)...
    strategy_within_ns: int = 60_000_000_000  # ...within this much bar time; one more stops it there
    external: bool = False           # orders are filled by a venue (fills come in), never on paper


@dataclass(slots=True)
class BatchResult:
    """What one batch produced."""

    signals: list[Signal]           # the decisions taken, each with its inputs
    orders: list[Order]             # every order state change, in order
    fills: list[Fill]
    equity_ts: np.ndarray
    equity: np.ndarray
    alerts: list[str] = field(default_factory=list)
    faults: list[StrategyFault] = field(default_factory=list)  # strategy code that raised, in order
    mark: int = 0                   # write-ahead: the store must commit up to here before new orders fill


class PaperBroker:
    """The paper account behind the executor actor."""

    def __init__(self, config: BrokerConfig, keep_equity: int | None = None, keep_records: int | None = None,
                 write_ahead: bool = False) -> None:
        self.config = config
        self.ahead = WriteAhead(write_ahead)
        self.fee = config.fee_bps / 1e4
        self.slippage = config.slippage_bps / 1e4
        self.latency_ns = int(config.latency_ms * 1e6)
        self.portfolio = Portfolio(config.cash, keep_records)
        self.risk = RiskEngine(config.limits)
        self.pending: dict[str, PendingOrder] = {}       # client_id -> open order
        self.brackets: dict[str, tuple[Order, ...]] = {}  # entry client_id -> protective orders (as submitted)
        self.orders: RecordLog[Order] = RecordLog(maxlen=keep_records)
        self.fills: RecordLog[Fill] = RecordLog(maxlen=keep_records)
        self.decided = DecidedIds()
        self.duplicates = 0
        self.batches = 0
        self.curve = EquityCurve(keep_equity)
        self.bars_marked = 0      # bar closes marked to market
        self.bars_exposed = 0     # ... of which with any position open
        self.strategies: dict[tuple[str, str], Any] = {}   # per-bar strategy instances, with the account
        self.fault_times: dict[tuple[str, str], tuple[int, ...]] = {}
        self.stopped: dict[tuple[str, str], str] = {}       # (symbol, timeframe) -> why its strategy stopped
        self.blocked: dict[str, str] = {}                   # symbol -> why new orders are halted on it

    # -- views and copies ---------------------------------------------------------------------

    @property
    def cash(self) -> float:
        """Cash now."""
        return self.portfolio.cash

    @property
    def positions(self) -> dict:
        """Open positions by symbol."""
        return self.portfolio.positions

    @property
    def marks(self) -> dict[str, float]:
        """Latest close per symbol."""
        return self.portfolio.marks

    @property
    def initial_cash(self) -> float:
        """Cash at the start."""
        return self.portfolio.initial_cash

    def open_symbols(self) -> set[str]:
        """Symbols with an open order."""
        return {p.order.symbol for p in self.pending.values()}

    @property
    def trades(self) -> RecordLog[Trade]:
        """Closed trades."""
        return self.portfolio.trades

    @property
    def seen(self) -> set[str]:
        """Every client id decided on, so a decision seen twice never trades twice."""
        return self.decided.ids

    @property
    def write_ahead(self) -> bool:
        """Whether new orders wait for the store to commit them before they fill."""
        return self.ahead.enabled

    @property
    def mark(self) -> int:
        """The last write-ahead mark handed out."""
        return self.ahead.mark

    def copy(self) -> PaperBroker:
        """An independent copy (for checkpoints), in time independent of the run's length: the
        record logs are shared append-only lists, equity arrays are never changed."""
        twin = PaperBroker.__new__(PaperBroker)
        for name in ("config", "fee", "slippage", "latency_ns", "duplicates", "batches", "bars_marked",
                     "bars_exposed"):
            setattr(twin, name, getattr(self, name))
        twin.ahead = self.ahead.copy()
        twin.portfolio = self.portfolio.copy()
        twin.risk = self.risk.copy()
        twin.pending = copy_open(self.pending)
        twin.brackets = dict(self.brackets)
        twin.orders, twin.fills = self.orders.copy(), self.fills.copy()
        twin.decided = self.decided.copy()
        twin.curve = self.curve.copy()
        twin.strategies = copy.deepcopy(self.strategies)
        twin.fault_times, twin.stopped = dict(self.fault_times), dict(self.stopped)
        twin.blocked = dict(self.blocked)
        return twin

    def equity_now(self) -> float:
        """Cash plus positions at their latest marks."""
        return self.portfolio.equity()

    def equity_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Equity at every bar close seen (bounded to ``keep_equity`` points in live)."""
        return self.curve.curve()

    # -- write-ahead ------------------------------------------------------------------------------

    def confirm(self, mark: int) -> int:
        """The store committed everything up to ``mark``: the orders waiting for it may fill.
        Return how many were armed."""
        return self.ahead.confirm(self.pending, mark)

    def unconfirmed(self) -> int:
        """The highest write-ahead mark an open order still waits for (0: none)."""
        return self.ahead.unconfirmed(self.pending)

    # -- restoring ----------------------------------------------------------------------------------

    def restore(self, orders: list[Order], fills: list[Fill], marks: dict[str, float]) -> None:
        """Rebuild the account from stored orders and fills (after a process restart)."""
        for fill in sorted(fills, key=lambda f: (f.ts, f.client_id)):
            self.portfolio.apply(fill)
            self.fills.append(fill)
        filled = {f.client_id: f for f in fills}
        protective = []
        for order in orders:
            self.decided.restore(order.client_id)
            self.orders.append(order)
            if protected_entry(order.client_id) is not None:
                protective.append(order)
            elif order.status in ("submitted", "accepted") and order.client_id not in filled:
                self.pending[order.client_id] = PendingOrder(order, order.ts + self.latency_ns, 0, -1)
            else:  # a later state of the same order (filled, rejected, cancelled) closes it
                self.pending.pop(order.client_id, None)
        for order in protective:
            entry = protected_entry(order.client_id)
            if order.status == "submitted" and entry in self.pending:  # waits for its entry to fill
                self.brackets[entry] = (*self.brackets.get(entry, ()), order)
            elif order.status == "accepted" and order.client_id not in filled and entry in filled:
                trail = trail_of(order)  # a trailing stop: the best price from the stop last stored
                best = order.stop_price / (1.0 - trail if order.side == SELL else 1.0 + trail)
                active = max(filled[entry].ts, order.ts) + self.latency_ns  # a moved trailing stop: after the move
                pending = PendingOrder(order, active, 0, -1, group=entry, trail=trail, best=best)
                pending.order = order._replace(stop_price=pending.stop)  # the stored price, to the last bit
                self.pending[order.client_id] = pending
        self.portfolio.marks.update(marks)

    # -- processing -----------------------------------------------------------------------------------

    def process(self, frames: tuple[BarFrame, ...], ticks: tuple[Tick, ...] = ()) -> BatchResult:
        """Fill what is open, ask the frames' deciders and turn their signals into orders, mark
        equity, watch the loss limit."""
        self.batches += 1
        result = BatchResult([], [], [], np.empty(0, dtype=np.int64), np.empty(0))
        steps: list[tuple[int, str, float, float]] = []  # (time, symbol, cash after, qty after)
        cash_before = self.portfolio.cash
        qty_before = {s: p.qty for s, p in self.portfolio.positions.items()}
        if ticks and self.pending and not self.config.external:
            self._fill_on_ticks(ticks, result, steps)
        if self.config.limits.daily_loss_pct and sum(len(f) for f in frames) > 1:
            times = np.unique(np.concatenate([f.ts for f in frames if len(f)]))
            for t in times:  # bar by bar, so a tripped limit acts on the very next bar
                sliced = tuple(f.slice(*np.searchsorted(f.ts, [t, t + 1])) for f in frames)
                self._bars(tuple(f for f in sliced if len(f)), result, steps)
                cash_before, qty_before = self._mark_into(result, sliced, steps, cash_before, qty_before)
                steps.clear()
        else:
            self._bars(frames, result, steps)
            self._mark_into(result, frames, steps, cash_before, qty_before)
        self.orders.extend(result.orders)
        self.fills.extend(result.fills)
        self.decided.end_batch()
        result.mark = self.ahead.end_batch(self.pending)
        return result

    def _mark_into(self, result: BatchResult, frames: tuple[BarFrame, ...], steps: list,
                   cash_before: float, qty_before: dict[str, float]) -> tuple[float, dict[str, float]]:
        ts, equity = self._mark(frames, steps, cash_before, qty_before)
        if len(ts):
            result.equity_ts = np.concatenate((result.equity_ts, ts))
            result.equity = np.concatenate((result.equity, equity))
            if self.config.limits.daily_loss_pct:
                for t, e in zip(ts.tolist(), equity.tolist(), strict=True):
                    reason = self.risk.watch(t, e)
                    if reason:
                        self._kill_switch(reason, t, result)
        return self.portfolio.cash, {s: p.qty for s, p in self.portfolio.positions.items()}

    def _fill_on_ticks(self, ticks: tuple[Tick, ...], result: BatchResult, steps: list) -> None:
        candidates = []
        for key, pending in self.pending.items():
            if pending.batch >= self.batches or pending.mark:
                continue  # accepted in this batch (the ticks before the decision are not offered to it), or
                # not yet committed by the store
            for seq, tick in enumerate(ticks):
                if tick.symbol != pending.order.symbol or tick.ts < pending.active_ts:
                    continue
                price = tick_fill(pending.order, tick.bid, tick.ask, tick.last, self.slippage)
                if price is not None:
                    candidates.append((tick.ts, 1 if pending.order.side == SELL else 2, seq, key, price))
                    break
        for ts, _, _, key, price in sorted(candidates):
            pending = self.pending.pop(key, None)
            if pending is None:
                continue  # cancelled by a protective order filled before it (one cancels the others)
            fill = self._execute(pending, price, ts, result)
            if fill is not None:
                steps.append((ts, fill.symbol, self.portfolio.cash, self.portfolio.qty(fill.symbol)))

    def _bars(self, frames: tuple[BarFrame, ...], result: BatchResult, steps: list) -> None:
        """Decisions and bar fills of the batch, in time order (a decision at a bar's close before a
        fill at the next open; at one instant sells before buys).

        Each frame's decider is asked at the bars it names for the position the account holds
        (its cursor); a fill of that symbol moves the cursors of the symbol's frames to the
        first bar that closes after it, now with the new position. Events of a cursor that has
        moved on are stale (their generation is old) and skipped.
        """
        self._prices: dict[tuple[str, int], float] = {}  # the fill price of each scheduled bar fill, by frame
        self._batch_closes: dict[str, list[tuple[list[int], list[float]]]] = {}
        self._cursors = [0] * len(frames)    # the generation of each frame's cursor
        self._frames = frames
        self._deciders = [self._decider(frame) for frame in frames]
        opens = self._opens = [np.asarray(f.ts) - timeframe_ns(f.timeframe) for f in frames]  # bar open times
        events: list[tuple[int, int, int, int, Any]] = []  # (time, kind, frame, bar, generation or client id)
        by_symbol: dict[str, list[int]] = {}
        for f_idx, frame in enumerate(frames):
            if len(frame) == 0:
                continue
            for key, pending in list(self.pending.items()):
                # written ahead and not yet committed: only bars of the batch that decided it
                if pending.order.symbol == frame.symbol and (not pending.mark or pending.batch == self.batches):
                    self._schedule_bar_fill(pending, key, f_idx, frame, opens[f_idx], 0, events)
            if self._deciders[f_idx] is not None:
                by_symbol.setdefault(frame.symbol, []).append(f_idx)
                self._arm(f_idx, frame, 0, events)
        heapq.heapify(events)
        pending_orders, prices, portfolio, cursors = self.pending, self._prices, self.portfolio, self._cursors
        ts_lists: list[list[int] | None] = [None] * len(frames)
        while events:
            when, kind, f_idx, i, key = heapq.heappop(events)
            frame = frames[f_idx]
            if kind == 0:
                if key != cursors[f_idx]:
                    continue  # a fill moved this cursor on
                try:
                    signal = self._deciders[f_idx].decide(i, portfolio.qty(frame.symbol))
                except StrategyFault as fault:
                    self._fault(frame, when, fault, result)
                    self._arm(f_idx, frame, i + 1, events)
                    continue
                order = None if signal is None else self._decide(signal, when, frames, result)
                if order is not None and order.client_id in pending_orders:
                    # a later bar of this batch may fill it, written ahead or not: those bars are already
                    # history, and the order goes to the store with its fill, in one transaction
                    self._schedule_bar_fill(pending_orders[order.client_id], order.client_id, f_idx, frame,
                                            opens[f_idx], i + 1, events)
                self._arm(f_idx, frame, i + 1, events)  # with an order now open, only a per-bar strategy is asked
            else:
                pending = pending_orders.pop(key, None)
                if pending is None:
                    continue
                fill = self._execute(pending, prices.pop((key, f_idx)), when, result)
                if fill is not None:
                    steps.append((int(frame.ts[i]), fill.symbol, portfolio.cash, portfolio.qty(fill.symbol)))
                    self._schedule_bracket(fill, events)
                for other in by_symbol.get(pending.order.symbol, ()):  # filled or cancelled: asked again, from now
                    closes = ts_lists[other]
                    if closes is None:  # Python lists: a numpy call here would give up the GIL per fill
                        closes = ts_lists[other] = frames[other].ts.tolist()
                    self._arm(other, frames[other], bisect_right(closes, when), events)
        self._record_trails(result)

    def _has_open(self, symbol: str) -> bool:
        """Whether an order of ``symbol`` is open, protective orders aside (they don't stand in an exit's way)."""
        return any(p.order.symbol == symbol and not p.group for p in self.pending.values()) if self.pending else False

    def _decider(self, frame: BarFrame) -> Any:
        """The frame's decider; a per-bar strategy's bound to its instance here, with the account;
        none where the strategy was stopped."""
        decider = frame.decider
        if decider is None or (frame.symbol, frame.timeframe) in self.stopped:
            return None
        bind = getattr(decider, "bind", None)
        return bind(self.strategies) if bind is not None else decider

    def _fault(self, frame: BarFrame, when: int, fault: StrategyFault, result: BatchResult) -> None:
        """Strategy code raised at ``when``: drop its instance (the next bar gets a fresh one, as a
        restarted actor would); past the restart intensity, stop it on this symbol and timeframe."""
        key = (frame.symbol, frame.timeframe)
        result.faults.append(fault)
        self.strategies.pop(key, None)
        config = self.config
        times = tuple(t for t in self.fault_times.get(key, ()) if when - t < config.strategy_within_ns) + (when,)
        self.fault_times[key] = times
        if len(times) > config.strategy_restarts:
            self.stopped[key] = str(fault)
        for f_idx, other in enumerate(self._frames):
            if (other.symbol, other.timeframe) == key:
                self._deciders[f_idx] = self._decider(other)

    def _arm(self, f_idx: int, frame: BarFrame, start: int, events: list) -> None:
        """Point the frame's cursor at the next bar its decider names for the position held now."""
        self._cursors[f_idx] += 1
        decider, n = self._deciders[f_idx], len(frame.ts)
        if decider is None or start >= n or (not decider.asks_while_open and self._has_open(frame.symbol)):
            return  # a rule's candidates wait while an order of their symbol is open: its fill re-arms them
        i = decider.first(start, self.portfolio.qty(frame.symbol))
        if i < n:
            heapq.heappush(events, (int(frame.ts[i]), 0, f_idx, i, self._cursors[f_idx]))

    def _schedule_bar_fill(self, pending: PendingOrder, key: str, f_idx: int, frame: BarFrame, opens_at: np.ndarray,
                           start: int, events: list) -> None:
        if self.config.external:
            return  # the venue fills it
        if pending.group:  # a bracket is scheduled as one, by its first order: the first of them to fill
            members = [(k, p) for k, p in self.pending.items() if p.group == pending.group]
            if members[0][0] != key:
                return
            found = bracket_fill(members, frame, opens_at, start, self.slippage)
            if found is None:
                return
            key, j, price = found
            pending = self.pending[key]
        else:
            hit = pending.bar_fill(frame, opens_at, start, self.slippage)
            if hit is None:
                return
            j, price = hit
        self._prices[key, f_idx] = price
        heapq.heappush(events, (int(opens_at[j]), 1 if pending.order.side == SELL else 2, f_idx, j, key))

    def _schedule_bracket(self, fill: Fill, events: list) -> None:
        """Offer the bars of the batch, from the one the entry filled in, to the bracket it opened."""
        first = next(((k, p) for k, p in self.pending.items() if p.group == fill.client_id), None)
        if first is None:
            return
        for f_idx, frame in enumerate(self._frames):
            if frame.symbol == fill.symbol and len(frame):
                self._schedule_bar_fill(first[1], first[0], f_idx, frame, self._opens[f_idx], 0, events)

    def _record_trails(self, result: BatchResult) -> None:
        """Record each trailing stop the batch's bars moved: at its new price, timed at the close of
        the last bar that moved it (a restart resumes it from there, on later bars only)."""
        for pending in self.pending.values():
            if pending.trail == pending.trail and pending.stop != pending.order.stop_price:
                symbol = pending.order.symbol
                moved = max((int(f.ts[-1]) for f in self._frames if f.symbol == symbol and len(f)), default=None)
                if moved is None:
                    continue  # no bar of its symbol in this batch: nothing moved it
                pending.order = pending.order._replace(stop_price=pending.stop, ts=moved)
                result.orders.append(pending.order)

    # -- decisions and orders -------------------------------------------------------------------------

    def _decide(self, signal: Signal, when: int, frames: tuple[BarFrame, ...], result: BatchResult) -> Order | None:
        client_id = f"{signal.strategy}:{signal.symbol}:{signal.timeframe}:{signal.ts}:{signal.side}"
        decided = self.decided
        if client_id in decided.ids:
            self.duplicates += 1
            return None
        decided.add(client_id)
        result.signals.append(signal)
        position = self.portfolio.positions.get(signal.symbol)
        held = position.qty if position is not None else 0.0
        qty, why = self._size(signal, held, when, frames)
        fields = (client_id, signal.strategy, signal.symbol, signal.side, qty, when, signal.order)
        order = Order(*fields, "submitted", "", signal.limit_price, signal.stop_price)
        orders = result.orders  # into self.orders at the end of the batch
        orders.append(order)
        if why is None and self.blocked:
            why = self.blocked.get(signal.symbol)
        if why is None:
            why = self.risk.check(order, held, signal.price, sum(1 for p in self.pending.values() if not p.group))
        if why is not None:
            orders.append(Order(*fields, "rejected", why, signal.limit_price, signal.stop_price))
            return None
        accepted = Order(*fields, "accepted", "", signal.limit_price, signal.stop_price)
        orders.append(accepted)
        self.pending[client_id] = PendingOrder(accepted, when + self.latency_ns, self.config.latency_bars,
                                               self.batches, self.ahead.next_mark())
        if held:  # an exit: the position's protective orders go
            for key in [k for k, p in self.pending.items() if p.group and p.order.symbol == signal.symbol]:
                self._cancel(self.pending.pop(key), f"exit {client_id} accepted", result)
        else:
            bracket = protective_orders(accepted, signal.stop_loss, signal.take_profit, signal.trail)
            if bracket:
                self.brackets[client_id] = bracket
                orders.extend(bracket)
        return accepted

    def _equity_at(self, when: int, frames: tuple[BarFrame, ...]) -> float:
        """Cash plus positions marked at the last close at or before ``when`` (batch-size independent)."""
        portfolio = self.portfolio
        equity = portfolio.cash
        marks, batch_closes = portfolio.marks, self._batch_closes
        for symbol, position in portfolio.positions.items():
            price = marks.get(symbol, position.avg_price)
            series = batch_closes.get(symbol)
            for ts, close in series if series is not None else self._closes(symbol, frames):
                j = bisect_right(ts, when) - 1
                if j >= 0:
                    price = close[j]
            equity += position.qty * price
        return equity

    def _closes(self, symbol: str, frames: tuple[BarFrame, ...]) -> list[tuple[list[int], list[float]]]:
        """Close times and closes of ``symbol``'s frames in this batch, as lists (made once per batch)."""
        found = self._batch_closes.get(symbol)
        if found is None:
            found = self._batch_closes[symbol] = [(f.ts.tolist(), f.close.tolist()) for f in frames
                                                  if f.symbol == symbol and len(f)]
        return found

    def _size(self, signal: Signal, held: float, when: int, frames: tuple[BarFrame, ...]) -> tuple[float, str | None]:
        """The quantity of the signal's order, or why there is none: an exit closes all that is held,
        an entry is sized as ``sizing`` says (protective orders don't stand in an exit's way)."""
        if self.pending and any(p.order.symbol == signal.symbol and not p.group for p in self.pending.values()):
            return 0.0, "an order for this symbol is still open"
        if signal.side == SELL and held > 0:
            return held, None
        if signal.side == BUY and held < 0:
            return -held, None
        if held != 0:
            return 0.0, "already long" if held > 0 else "already short"
        if signal.side == SELL and not self.config.allow_short:
            return 0.0, "no position to sell (shorts are off)"
        config = self.config
        return entry_qty(signal, lambda: self._equity_at(when, frames), self.portfolio.cash,
                         config.allocation or 1.0 / max(1, config.n_symbols), config.fee_fixed, self.fee, self.slippage)

    def _execute(self, pending: PendingOrder, price: float, when: int, result: BatchResult) -> Fill | None:
        """Fill ``pending`` (already taken out of the open orders) at ``price``. A protective order
        closes at most what its side holds and cancels the rest of its bracket; an entry's fill
        opens the bracket it carries, for the filled quantity."""
        portfolio, config, order = self.portfolio, self.config, pending.order
        qty = order.qty
        if pending.group:  # protective: never more than the position it protects
            held = portfolio.qty(order.symbol)
            qty = min(qty, held if order.side == SELL else -held)
            if qty <= 0.0:
                self._cancel(pending, "no position left to protect", result)
                self._cancel_bracket(pending.group, "no position left to protect", result)
                return None
        elif order.side == BUY and portfolio.qty(order.symbol) >= 0:  # opening long: never beyond cash
            affordable = (portfolio.cash - config.fee_fixed) / (price * (1.0 + self.fee))
            qty = min(qty, max(0.0, affordable))
        if qty <= 0.0:
            self._cancel(pending, "no cash at fill time", result)
            return None
        fee = qty * price * self.fee + config.fee_fixed
        fill = Fill(order.client_id, order.symbol, order.side, qty, price, fee, when)
        portfolio.apply(fill)
        result.fills.append(fill)
        result.orders.append(Order(order.client_id, order.strategy, order.symbol, order.side, qty, order.ts, order.kind,
                                   "filled", "", order.limit_price, pending.stop))
        if pending.group:
            self._cancel_bracket(pending.group, f"{order.client_id} filled (one cancels the others)", result)
        else:
            self._open_bracket(self.brackets.pop(order.client_id, ()), fill, result)
        return fill

    def venue_fill_done(self, order: Order, total: Fill) -> list[Order]:
        """A venue filled ``order`` in full (``total``: all its executions): open the bracket of an
        entry, or cancel the other orders of the bracket a protective order belonged to (one
        cancels the others). Return the order states this made (to store, publish and route)."""
        result = BatchResult([], [], [], np.empty(0, dtype=np.int64), np.empty(0))
        group = next((p.group for k, p in self.pending.items() if k == order.client_id and p.group), "")
        if group:
            for key in [k for k, p in self.pending.items() if p.group == group and k != order.client_id]:
                self._cancel(self.pending.pop(key), f"{order.client_id} filled (one cancels the others)", result)
        bracket = self.brackets.pop(order.client_id, ())
        if bracket:
            self._open_bracket(bracket, total, result)
        self.orders.extend(result.orders)
        return result.orders

    def _open_bracket(self, bracket: tuple[Order, ...], fill: Fill, result: BatchResult) -> None:
        """Accept the protective orders of the entry ``fill``, for its quantity; a trailing stop starts
        ``trail`` away from the entry price. They wait for the store as any new order does."""
        for submitted in bracket:
            trail = trail_of(submitted)
            pending = PendingOrder(submitted._replace(qty=fill.qty, status="accepted"), fill.ts + self.latency_ns,
                                   self.config.latency_bars, self.batches, self.ahead.next_mark(), group=fill.client_id,
                                   trail=trail, best=fill.price if trail == trail else math.nan)
            pending.order = pending.order._replace(stop_price=pending.stop)
            self.pending[submitted.client_id] = pending
            result.orders.append(pending.order)

    def _cancel(self, pending: PendingOrder, reason: str, result: BatchResult) -> None:
        """Record ``pending`` (already taken out of the open orders) cancelled, with the protective
        orders that waited for it to fill."""
        result.orders.append(pending.order._replace(status="cancelled", reason=reason))
        for order in self.brackets.pop(pending.order.client_id, ()):
            result.orders.append(order._replace(status="cancelled", reason=f"entry not filled: {reason}"))

    def _cancel_bracket(self, entry: str, reason: str, result: BatchResult) -> None:
        """Cancel the open protective orders of ``entry``'s position."""
        for key in [k for k, p in self.pending.items() if p.group == entry]:
            self._cancel(self.pending.pop(key), reason, result)

    def _record(self, order: Order, result: BatchResult) -> None:
        result.orders.append(order)  # into self.orders at the end of the batch

    def _kill_switch(self, reason: str, when: int, result: BatchResult) -> None:
        result.alerts.append(reason)
        for key, pending in list(self.pending.items()):
            del self.pending[key]
            self._cancel(pending, f"kill switch: {reason}", result)
        for symbol, position in list(self.portfolio.positions.items()):
            side = SELL if position.qty > 0 else BUY
            client_id = f"risk:{symbol}:flatten:{when}"
            self.decided.add(client_id)
            order = Order(client_id, "risk", symbol, side, abs(position.qty), when, status="accepted",
                          reason=f"flatten: {reason}")
            self._record(order, result)
            self.pending[client_id] = PendingOrder(order, when, 0, self.batches - 1)

    # -- equity -----------------------------------------------------------------------------------------

    def _mark(self, frames: tuple[BarFrame, ...], steps: list[tuple[int, str, float, float]],
              cash_before: float, qty_before: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Equity at each bar close of the batch (cash and positions as of that close); update marks."""
        nonempty = [f for f in frames if len(f)]
        if not nonempty:
            return np.empty(0, dtype=np.int64), np.empty(0)
        marks = self.portfolio.marks
        timeline, equity, exposed = mark_to_market(nonempty, steps, cash_before, qty_before, marks)
        self.bars_marked += len(timeline)
        self.bars_exposed += exposed
        for frame in nonempty:
            marks[frame.symbol] = float(frame.close[-1])
        self.curve.record(timeline, equity)
        return timeline, equity
