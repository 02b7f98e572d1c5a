"""The batch that travels down the pipeline, and the markers that follow it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from messages.market import Bar, BarFrame, Tick
from messages.system import DeadLetter
from messages.trading import Fill, Order, Signal

__all__ = ["Drain", "MarketBatch", "ModelState", "Persist"]


@dataclass(frozen=True, slots=True, eq=False)
class MarketBatch:
    """Everything the feed drained in one go, enriched stage by stage.

    ``ticks`` and ``bars`` are what came in (bars from ingress or replay); ``frames`` are closed
    bars as columns (built by the buffer, enriched by feature, model and strategy). ``recv_ns`` is the monotonic clock (``perf_counter_ns``) when
    the feed received the first message, so each stage can measure latency; 0 for a batch that
    did not come from ingress (replay, warm-up, the feed's clock), which is not timed. A
    ``history`` batch carries stored bars that warm the stages up before live data: it updates
    state but never trades.
    """

    seq: int
    recv_ns: int
    ticks: tuple[Tick, ...] = ()
    bars: tuple[Bar, ...] = ()
    frames: tuple[BarFrame, ...] = ()
    history: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Drain:
    """A marker sent down the pipeline behind the data; the last stage resolves ``done``.

    When ``done`` resolves, everything sent before the marker has been processed and stored.
    """

    done: Any = field(repr=False)  # a pykka.ThreadingFuture resolved with True


@dataclass(frozen=True, slots=True)
class ModelState:
    """A model's learned state for one symbol and timeframe after bar ``ts``, as JSON text."""

    symbol: str
    timeframe: str
    ts: int
    kind: str
    state: str


@dataclass(frozen=True, slots=True, eq=False)
class Persist:
    """A copy of records for the store: the single writer batches them into sqlite."""

    bars: tuple[Bar, ...] = ()
    frames: tuple[BarFrame, ...] = ()
    signals: tuple[Signal, ...] = ()
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    equity: tuple[tuple[int, float], ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    models: tuple[ModelState, ...] = ()
    ticks: tuple[Tick, ...] = ()
    venue_ids: tuple[tuple[str, str, str], ...] = ()  # (client id, client id sent to the venue, venue's order id)
