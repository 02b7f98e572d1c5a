"""Executor actor: the paper broker behind the pipeline."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from actors.executor.broker import PaperBroker
from actors.executor.report import summarize, trade_rows
from messages.pipeline import Drain, MarketBatch, Persist
from messages.system import Query
from supervisors.actor import SupervisedActor, publish

__all__ = ["ExecutorActor"]


class ExecutorActor(SupervisedActor):
    """Fills orders, tracks cash and positions, measures ingress-to-decision latency."""

    downstream = "store"

    def setup(self) -> None:
        """Open the paper account (actor thread)."""
        settings = self.ctx.settings.executor
        live = self.ctx.mode == "live"
        symbols = self.ctx.resources.get("symbols") or self.ctx.settings.feed.symbols
        self.broker = PaperBroker(
            settings.cash, settings.fee_bps, settings.slippage_bps, settings.allocation, len(symbols),
            keep_equity=10_000 if live else None, keep_records=10_000 if live else None,
        )
        self.store_equity = live
        self.latency_ns: deque[int] = deque(maxlen=10_000)
        self._dirty = False

    def snapshot(self) -> Any:
        """The account, after a batch with bars."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.broker.copy()

    def restore(self, state: Any) -> None:
        """Take back the account."""
        self.broker = state.copy()

    def handle(self, message: Any) -> Any:
        """Execute one batch, pass a marker on, or answer a query (actor thread)."""
        if isinstance(message, MarketBatch):
            self._batch(message)
        elif isinstance(message, Drain):
            self.send("store", message)
        elif isinstance(message, Query):
            return self._query(message.what)
        else:
            raise TypeError(f"executor cannot handle {type(message).__name__}")
        return None

    def _batch(self, batch: MarketBatch) -> None:
        if batch.frames:
            self._dirty = True
        result = self.broker.process(batch.frames, batch.signals)
        self.latency_ns.append(time.perf_counter_ns() - batch.recv_ns)
        bars = sum(len(f) for f in batch.frames)
        self.ctx.counters.add(ticks_processed=len(batch.ticks), bars_processed=bars,
                              orders=len(result.orders), fills=len(result.fills))
        if result.orders or result.fills or (self.store_equity and len(result.equity_ts)):
            equity = tuple(zip(result.equity_ts.tolist(), result.equity.tolist(), strict=True)) if self.store_equity else ()
            self.send("store", Persist(orders=tuple(result.orders), fills=tuple(result.fills), equity=equity))
        for order in result.orders:
            publish(self.ctx, f"order.{order.symbol}", order)
        for fill in result.fills:
            publish(self.ctx, f"fill.{fill.symbol}", fill)

    def _query(self, what: str) -> Any:
        broker = self.broker
        if what == "positions":
            return {
                "cash": broker.cash, "equity": broker.equity_now(),
                "positions": {s: {"qty": p.qty, "avg_price": p.avg_price, "mark": broker.marks.get(s)}
                              for s, p in broker.positions.items()},
            }
        if what == "orders":
            return {"orders": [{"client_id": o.client_id, "symbol": o.symbol, "side": o.side, "qty": o.qty,
                                "ts": o.ts, "status": o.status, "reason": o.reason} for o in list(broker.orders)[-100:]],
                    "pending": sorted(broker.pending)}
        if what == "latency":
            values = np.array(self.latency_ns, dtype=np.int64)
            if not len(values):
                return {"samples": 0}
            return {"samples": len(values), "p50_us": float(np.percentile(values, 50)) / 1e3,
                    "p99_us": float(np.percentile(values, 99)) / 1e3, "max_us": float(values.max()) / 1e3}
        if what == "report":
            ts, equity = broker.equity_curve()
            summary = summarize(broker.initial_cash, ts, equity, list(broker.trades), len(broker.positions))
            return {"summary": summary, "trades": trade_rows(broker.trades)}
        raise ValueError(f"unknown query {what!r}; valid: positions, orders, latency, report")
