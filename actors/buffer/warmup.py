"""Warm-up from the store: the last stored bars, so live continues the stored series."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from actors.store.reader import StoreReader
from messages.market import Bar, BarFrame, frame_from_bars, timeframe_ns

__all__ = ["WarmUp", "load_warmup"]


@dataclass
class WarmUp:
    """What the buffer starts from.

    ``frames``: the last ``lookback`` stored bars per symbol and timeframe (history to send
    down the pipeline); ``base``: the stored base bars per symbol, oldest first, enough to
    rebuild every open higher-timeframe bar.
    """

    frames: list[BarFrame] = field(default_factory=list)
    base: dict[str, list[Bar]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(f) for f in self.frames)


def load_warmup(db: StoreReader, symbols: Iterable[str], base: str, higher: Iterable[str], lookback: int) -> WarmUp:
    """Read the warm-up for ``symbols``: ``base`` bars and ``higher`` timeframes derived from them."""
    higher = tuple(higher)
    base_ns = timeframe_ns(base)
    base_count = max([lookback, *(timeframe_ns(tf) // base_ns for tf in higher)])
    warm = WarmUp()
    for symbol in symbols:
        bars = db.last_bars(symbol, base, base_count)
        if not bars:
            continue
        warm.base[symbol] = bars
        warm.frames.append(frame_from_bars(bars[-lookback:]))
        for timeframe in higher:
            stored = db.last_bars(symbol, timeframe, lookback)
            if stored:
                warm.frames.append(frame_from_bars(stored, derived=True))
    return warm
