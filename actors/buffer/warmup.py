"""Warm-up from the store: the last stored bars, so live continues the stored series."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from actors.store.db import Database
from messages.market import Bar, BarFrame, timeframe_ns

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


def _frame(rows: pd.DataFrame, symbol: str, timeframe: str, derived: bool = False) -> BarFrame:
    frame = BarFrame.from_columns(symbol, timeframe, **{k: rows[k].to_numpy() for k in
                                                        ("ts", "open", "high", "low", "close", "volume")})
    return dataclasses.replace(frame, derived=True) if derived else frame


def load_warmup(db: Database, symbols: Iterable[str], base: str, higher: Iterable[str], lookback: int) -> WarmUp:
    """Read the warm-up for ``symbols``: ``base`` bars and ``higher`` timeframes derived from them."""
    higher = tuple(higher)
    base_ns = timeframe_ns(base)
    base_count = max([lookback, *(timeframe_ns(tf) // base_ns for tf in higher)])
    warm = WarmUp()
    for symbol in symbols:
        rows = db.last_bars(symbol, base, base_count)
        if rows.empty:
            continue
        warm.base[symbol] = [Bar(symbol, int(ts), base, o, h, lo, c, v) for ts, o, h, lo, c, v in zip(
            rows["ts"].tolist(), rows["open"].tolist(), rows["high"].tolist(), rows["low"].tolist(),
            rows["close"].tolist(), rows["volume"].tolist(), strict=True)]
        warm.frames.append(_frame(rows.iloc[-lookback:], symbol, base))
        for timeframe in higher:
            rows = db.last_bars(symbol, timeframe, lookback)
            if not rows.empty:
                warm.frames.append(_frame(rows, symbol, timeframe, derived=True))
    return warm
