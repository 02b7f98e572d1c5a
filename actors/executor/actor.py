"""Executor actor: the paper broker behind the pipeline, with the risk engine in front."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import pykka

from actors.executor import external
from actors.executor.broker import BrokerConfig, PaperBroker
from actors.executor.report import fees_by_symbol, summarize, trade_rows
from actors.executor.risk import RiskLimits
from actors.strategy.api import user_traceback
from actors.store.errors import StorageError
from actors.store.reader import StoreReader
from messages.pipeline import Drain, MarketBatch, Persist
from messages.store import Confirm, HaltTrading
from messages.system import Query
from messages.venue import (CancelOrder, CancelRequest, FlattenRequest, ManualOrder, PlaceOrders, VenueAccount,
                            VenueFill, VenueOrderUpdate)
from supervisors.actor import SupervisedActor, publish, publish_all
from supervisors.errors import StrategyFault
from supervisors.owned import RiskView

__all__ = ["ExecutorActor", "broker_config"]


def broker_config(settings: Any, n_symbols: int, mode: str = "live") -> BrokerConfig:
    """The broker's configuration from the executor settings. A strategy whose code raises is
    restarted up to the supervisor's intensity in live, stopped at once in a backtest (which then
    fails: a result with a broken strategy in it would mislead)."""
    e, s = settings.executor, settings.supervisor
    return BrokerConfig(
        e.cash, e.fee_bps, e.fee_fixed, e.slippage_bps, e.allocation, n_symbols, e.allow_short, e.latency_bars,
        e.latency_ms, RiskLimits(e.max_position, e.max_notional, e.max_open_orders, e.max_orders_per_minute,
                                 e.daily_loss_pct),
        s.max_restarts if mode == "live" else 0, int(s.within_s * 1e9),
    )


class ExecutorActor(SupervisedActor):
    """Decides with the position the account holds, fills orders, tracks cash and positions,
    measures ingress-to-decision latency.

    The account is the one source of truth for positions: each frame's decider (from the
    strategy) is asked at each bar's close with the position held then; the signals it gives
    are stored and published here, with the orders they make.

    Live, an order is written ahead: it may fill only once the store has committed it. The
    orders of a batch go to the store with a ``Confirm`` marker; before a later batch that could
    fill them, the executor waits for the marker (up to ``CONFIRM_WAIT_S``, normally one commit),
    so an order still fills on the first tick after its decision. A store held up longer (a
    lock) delays only those orders' fills, never the rest of the pipeline for more than that wait.
    On ``HaltTrading`` (the store can no longer keep records) it decides, sends and fills nothing
    more."""

    CONFIRM_WAIT_S = 1.0

    times_batches = False  # the latency that matters is to the decision, recorded in ``_batch``

    downstream = "store"

    checkpoint_on = (MarketBatch, VenueFill, VenueOrderUpdate, VenueAccount, ManualOrder, CancelRequest,
                     FlattenRequest)

    def setup(self) -> None:
        """Open the paper account; in live, rebuild it from the store first (actor thread)."""
        live = self.ctx.mode == "live"
        symbols = self.ctx.deps.symbols
        self.venue = live and self.ctx.settings.venue.trades  # orders go to a venue, fills come back
        config = dataclasses.replace(broker_config(self.ctx.settings, len(symbols), self.ctx.mode), external=self.venue)
        self.broker = PaperBroker(config,
                                  keep_equity=10_000 if live else None, keep_records=10_000 if live else None,
                                  write_ahead=live)
        self.halted = ""  # why trading stopped for good
        self.confirms: list[tuple[int, Any, bool]] = []  # (mark, future, waited for once already)
        self.run = self.ctx.deps.run
        self.store_equity = live
        self._dirty = False
        if live and self.name not in self.ctx.checkpoints:
            with StoreReader(self.ctx.deps.db_path) as store:
                orders, fills, marks = store.account(self.run)
            if orders or fills:
                self.broker.restore(orders, fills, marks)
                p = self.broker.portfolio
                self.log.info("account restored from the store: {} fills, {} open orders, cash {:,.2f}, positions {}",
                              len(fills), len(self.broker.pending), p.cash,
                              {s: round(pos.qty, 8) for s, pos in p.positions.items()} or "none")
        self.routed: set[str] = set(self.broker.pending)  # sent to the venue (or, restored, maybe sent): never again
        self.touched: set[str] = set()  # symbols with orders of ours since the venue's balances were compared

    def snapshot(self) -> Any:
        """The account, after a batch that changed it."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.broker.copy()

    def restore(self, state: Any) -> None:
        """Take back the account; ask the store again for the commits open orders wait for (its
        answer may have come to the incarnation that died)."""
        self.broker = state.copy()
        self.routed = set(self.broker.pending)
        waiting = self.broker.unconfirmed()
        if waiting:
            self._confirm(waiting)

    def handle(self, message: Any) -> Any:
        """Execute one batch, pass a marker on, or answer a query (actor thread)."""
        if isinstance(message, MarketBatch):
            if self.halted:
                self._skip(message)
            else:
                self._batch(message)
        elif isinstance(message, HaltTrading):
            self._halt(message.reason)
        elif isinstance(message, Drain):
            self.send("store", message)
        elif isinstance(message, Query):
            return self._query(message.what)
        elif isinstance(message, VenueFill | VenueOrderUpdate | VenueAccount):
            self._from_venue(message)
        elif isinstance(message, ManualOrder | CancelRequest | FlattenRequest):
            if self.halted:
                return {"error": f"trading halted: {self.halted}"}
            return self._manual(message)
        else:
            raise TypeError(f"executor cannot handle {type(message).__name__}")
        return None

    def _confirm(self, mark: int) -> None:
        done = pykka.ThreadingFuture()
        self.confirms.append((mark, done, False))
        self.send("store", Confirm(mark, done))

    def _confirmed(self) -> None:
        """Arm the orders the store has committed, waiting once per marker up to CONFIRM_WAIT_S."""
        still = []
        for mark, done, waited in self.confirms:
            try:
                if waited:
                    done.get(timeout=0)
                else:
                    with self.waiting("the store to commit orders"):
                        done.get(timeout=self.CONFIRM_WAIT_S)
            except pykka.Timeout:
                still.append((mark, done, True))
                continue
            except StorageError as exc:  # the store failed: these orders never fill (its HaltTrading follows)
                self.log.error("orders of write-ahead mark {} will not be sent: {}", mark, exc)
                continue
            if self.broker.confirm(mark):
                self._dirty = True
        self.confirms = still

    def _batch(self, batch: MarketBatch) -> None:
        if self.confirms and (batch.ticks or batch.frames):
            self._confirmed()
        broker = self.broker
        if batch.frames or (batch.ticks and broker.pending):
            self._dirty = True
        result = broker.process(batch.frames, batch.ticks if broker.pending else ())
        if batch.recv_ns:
            self.ctx.stats.latency.add(time.perf_counter_ns() - batch.recv_ns)
        bars = sum(len(f) for f in batch.frames)
        new_orders = sum(1 for o in result.orders if o.status == "submitted")
        self.ctx.counters.add(ticks_processed=len(batch.ticks), bars_processed=bars, signals=len(result.signals),
                              orders=new_orders, fills=len(result.fills))
        if result.orders or result.fills or result.signals or (self.store_equity and len(result.equity_ts)):
            equity = tuple(zip(result.equity_ts.tolist(), result.equity.tolist(), strict=True)) if self.store_equity else ()
            self.send("store", Persist(signals=tuple(result.signals), orders=tuple(result.orders),
                                       fills=tuple(result.fills), equity=equity))
        if result.mark:
            self._confirm(result.mark)
        if self.venue:
            self._route(result.orders)  # new orders, and routed ones cancelled (an exit, the kill switch)
        for fault in result.faults:
            self._strategy_fault(fault)
        publish_all(self.ctx, "signal", result.signals)
        publish_all(self.ctx, "order", result.orders)
        publish_all(self.ctx, "fill", result.fills)
        for alert in result.alerts:
            self._show_risk(True, alert)
            self.log.critical("kill switch tripped: {}; open orders cancelled, positions being flattened", alert)
            publish(self.ctx, "health.executor", {"actor": self.name, "change": "kill_switch", "detail": alert})

    # -- a venue, and orders from the control socket ---------------------------------------------------

    def _route(self, changed: Any = ()) -> None:
        """Send the venue the accepted orders the store has committed, each once; cancel there the
        routed orders the kill switch cancelled."""
        if self.confirms:
            self._confirmed()
        for order in changed:
            if order.status == "cancelled" and order.client_id in self.routed:
                self.send("venue", CancelOrder(order, order.reason))
        ready = tuple(p.order for cid, p in self.broker.pending.items()
                      if not p.mark and cid not in self.routed and p.order.strategy != "outside")
        if ready:
            self.routed.update(o.client_id for o in ready)
            self.touched.update(o.symbol for o in ready)
            self.send("venue", PlaceOrders(ready))

    def _record(self, orders: tuple = (), fills: tuple = ()) -> None:
        """Store and publish order states and fills taken in outside a batch."""
        self._dirty = True
        self.send("store", Persist(orders=tuple(orders), fills=tuple(fills)))
        publish_all(self.ctx, "order", orders)
        publish_all(self.ctx, "fill", fills)

    def _from_venue(self, message: Any) -> None:
        """Take in what the venue did (actor thread)."""
        broker = self.broker
        if isinstance(message, VenueFill):
            made = external.take_fill(broker, message)
            self.touched.add(message.fill.symbol)
            self.ctx.counters.add(fills=1)
            self._dirty = True  # the order's executions are stored as one fill once it is filled
            self.send("store", Persist(orders=(message.order,),
                                       fills=(message.total,) if message.order.status == "filled" else ()))
            publish_all(self.ctx, "order", (message.order,))
            publish_all(self.ctx, "fill", (message.fill,))
            if made:  # a bracket opened (after its entry filled) or closed (one of it filled)
                wait_for = broker.ahead.end_batch(broker.pending)
                self._record(tuple(made))
                if wait_for:
                    self._confirm(wait_for)
                self._route(made)
        elif isinstance(message, VenueOrderUpdate):
            external.take_state(broker, message)
            self._record((message.order,))
            if message.order.status == "rejected":
                self.log.warning("{} rejected: {}", message.order.client_id, message.order.reason)
        elif message.start:
            external.set_account(broker, message, self.ctx.clock.now_ns())
            self._dirty = True
            self.log.info("account set from the venue: cash {:,.2f}, positions {}", broker.portfolio.cash,
                          {s: round(p.qty, 8) for s, p in broker.portfolio.positions.items()} or "none")
        else:
            adopted, unexplained = external.account_differences(broker, message, self.ctx.clock.now_ns(),
                                                                self.touched)
            self.touched = set(broker.open_symbols())
            self._dirty = True
            for change in adopted:
                self.log.warning("balance changed outside the system, adopted: {}", change)
                publish(self.ctx, "health.venue", {"actor": self.name, "change": "balance_adopted", "detail": change})
            for symbol, why in unexplained.items():
                if symbol not in broker.blocked:
                    broker.blocked[symbol] = f"halted on {symbol}: {why}"
                    self.log.critical("{}", broker.blocked[symbol])
                    publish(self.ctx, "health.venue", {"actor": self.name, "change": "unexplained",
                                                       "symbol": symbol, "detail": why})
            if unexplained:
                self._show_risk(*self._halt_state())

    def _manual(self, message: Any) -> dict[str, Any]:
        """Submit, cancel or flatten on request, through the risk checks (actor thread)."""
        broker = self.broker
        if isinstance(message, CancelRequest):
            pending = broker.pending.get(message.client_id)
            if pending is None:
                return {"error": f"no open order {message.client_id!r}; open: "
                                 f"{', '.join(sorted(broker.pending)) or 'none'}"}
            if self.venue:
                self.send("venue", CancelOrder(pending.order, "cancelled on request"))
                return {"client_id": message.client_id, "cancelling": True}
            self._record((external.cancel(broker, message.client_id, "cancelled on request"),))
            return {"client_id": message.client_id, "cancelled": True}
        if isinstance(message, FlattenRequest):
            positions = {s: p.qty for s, p in broker.portfolio.positions.items()
                         if (not message.symbol or s == message.symbol) and p.qty}
            replies = [self._submit(ManualOrder(s, "sell" if qty > 0 else "buy", abs(qty)))
                       for s, qty in sorted(positions.items())]
            return {"orders": replies}
        return self._submit(message)

    def _submit(self, message: ManualOrder) -> dict[str, Any]:
        broker = self.broker
        now = self.ctx.clock.now_ns()
        mark = broker.portfolio.marks.get(message.symbol, math.nan)
        orders, accepted = external.submit(broker, message.symbol, message.side, message.qty, message.kind,
                                           message.price, now, mark)
        wait_for = broker.ahead.end_batch(broker.pending)
        self.ctx.counters.add(orders=1)
        self._record(tuple(orders))
        if accepted is None:
            return {"client_id": orders[0].client_id, "status": "rejected", "reason": orders[-1].reason}
        if wait_for:
            self._confirm(wait_for)
        if self.venue:
            self._route()
        return {"client_id": accepted.client_id, "status": accepted.status}

    def _strategy_fault(self, fault: StrategyFault) -> None:
        """A strategy's code raised: one error naming its file and line, with the traceback cut to
        the user's own frames; its instance was dropped (restarted) or, past the restart
        intensity (at once in a backtest), stopped on that symbol and timeframe."""
        self.ctx.counters.add(strategy_faults=1)
        cause = fault.__cause__
        frames = user_traceback(cause) if cause is not None else ""
        self.log.error("{}{}", fault, "\n" + frames.rstrip() if frames else "")
        stopped = self.broker.stopped
        self._show_risk(*self._halt_state())
        publish(self.ctx, "health.executor", {"actor": self.name, "change": "strategy_fault", "detail": str(fault),
                                              "stopped": sorted(f"{s} {t}" for s, t in stopped)})

    def _halt_state(self) -> tuple[bool, str]:
        shown = self.ctx.owned.shown(RiskView)
        return (shown.halted, shown.reason) if shown is not None else (False, "")

    def _show_risk(self, halted: bool, reason: str) -> None:
        """Show whether trading is halted and why, and the strategies stopped on a symbol."""
        self.ctx.show(RiskView(halted, reason, tuple(
            (f"{symbol} {timeframe}", why) for (symbol, timeframe), why in self.broker.stopped.items()),
            tuple(self.broker.blocked.items())))

    def _halt(self, reason: str) -> None:
        if self.halted:
            return
        self.halted = reason
        self._show_risk(True, f"records cannot be stored: {reason}")
        self.log.critical("trading halted: no further order is decided, sent or filled ({})", reason)
        publish(self.ctx, "health.executor", {"actor": self.name, "change": "halted", "detail": reason})

    def _skip(self, batch: MarketBatch) -> None:
        """A batch after the halt: processed by trading on none of it."""
        self.ctx.counters.add(ticks_processed=len(batch.ticks), bars_processed=sum(len(f) for f in batch.frames))

    def _query(self, what: str) -> Any:
        broker = self.broker
        portfolio = broker.portfolio
        if what == "positions":
            return {
                "cash": portfolio.cash, "equity": portfolio.equity(), "realized": portfolio.realized,
                "unrealized": portfolio.unrealized(), "halted": broker.risk.halted or bool(self.halted),
                "positions": {s: {"qty": p.qty, "avg_price": p.avg_price, "mark": portfolio.marks.get(s),
                                  "unrealized": p.qty * (portfolio.marks.get(s, p.avg_price) - p.avg_price)}
                              for s, p in portfolio.positions.items()},
            }
        if what == "orders":
            return {"orders": [{"client_id": o.client_id, "symbol": o.symbol, "side": o.side, "qty": o.qty,
                                "kind": o.kind, "ts": o.ts, "status": o.status, "reason": o.reason}
                               for o in list(broker.orders)[-100:]],
                    "open": sorted(broker.pending),
                    "fills": [{"client_id": f.client_id, "qty": f.qty, "price": f.price, "fee": f.fee, "ts": f.ts}
                              for f in list(broker.fills)[-100:]]}
        if what == "venue_orders":
            return [p.order for p in broker.pending.values()]
        if what == "report":
            ts, equity = broker.equity_curve()
            exposure = broker.bars_exposed / broker.bars_marked if broker.bars_marked else None
            summary = summarize(portfolio.initial_cash, ts, equity, list(broker.trades), len(portfolio.positions),
                                exposure, portfolio.fees)
            return {"summary": summary, "trades": trade_rows(broker.trades), "equity_ts": ts, "equity": equity,
                    "fees": fees_by_symbol(broker.fills)}
        raise ValueError(f"unknown query {what!r}; valid: positions, orders, report")
