"""Buffer actor: ticks to bars, external bars to frames, rolling windows."""

from __future__ import annotations

import dataclasses
from typing import Any

from actors.buffer.bars import BarAggregator, BarWindow
from messages.market import Bar, BarFrame, frame_from_bars
from messages.pipeline import Drain, MarketBatch, Persist
from messages.system import Query
from supervisors.actor import SupervisedActor

__all__ = ["BufferActor", "group_frames"]

NEXT = "feature"


def group_frames(bars: list[Bar]) -> list[BarFrame]:
    """One frame per (symbol, timeframe), bars in arrival order."""
    groups: dict[tuple[str, str], list[Bar]] = {}
    for bar in bars:
        groups.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    return [frame_from_bars(group) for group in groups.values()]


class BufferActor(SupervisedActor):
    """Closes bars from ticks, passes bars and frames on, keeps the last bars per symbol."""

    downstream = NEXT

    def setup(self) -> None:
        """Create the aggregator (actor thread)."""
        settings = self.ctx.settings.buffer
        self.aggregator = BarAggregator(settings.timeframe, settings.fill_empty, settings.max_fill)
        self.lookback = settings.lookback
        self.windows: dict[tuple[str, str], BarWindow] = {}
        self._dirty = False

    def snapshot(self) -> Any:
        """Open bars and windows, after a batch that changed them."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.aggregator.copy(), {key: window.copy() for key, window in self.windows.items()}

    def restore(self, state: Any) -> None:
        """Take back open bars and windows."""
        aggregator, windows = state
        self.aggregator = aggregator.copy()
        self.windows = {key: window.copy() for key, window in windows.items()}

    def handle(self, message: Any) -> Any:
        """Aggregate one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch):
            self._batch(message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        elif isinstance(message, Query):
            return {f"{s}/{tf}": len(w) for (s, tf), w in self.windows.items()}
        else:
            raise TypeError(f"buffer cannot handle {type(message).__name__}")
        return None

    def _batch(self, batch: MarketBatch) -> None:
        self._dirty = True
        late_before = self.aggregator.late
        built = self.aggregator.add(batch.ticks) if batch.ticks else []
        late = self.aggregator.late - late_before
        new_bars = built + list(batch.bars)
        frames = group_frames(new_bars) + list(batch.frames)
        for frame in frames:
            key = (frame.symbol, frame.timeframe)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = BarWindow(self.lookback)
            window.extend(frame)
        if new_bars or late:
            self.ctx.counters.add(bars=len(new_bars), ticks_late=late)
        if new_bars:
            self.send("store", Persist(bars=tuple(new_bars)))
        self.send(NEXT, dataclasses.replace(batch, bars=(), frames=tuple(frames)))
