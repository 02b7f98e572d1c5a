"""Backtest replay: bars in time order, cut into batches of frames (one frame per symbol)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from messages.market import BarFrame, readonly

__all__ = ["replay_chunks"]


def replay_chunks(bars: pd.DataFrame, chunk: int) -> Iterator[tuple[BarFrame, ...]]:
    """Yield batches of about ``chunk`` bars in (ts, symbol) order.

    ``bars`` has columns symbol, timeframe, ts (int64 ns close time), open, high, low, close,
    volume. Every batch covers a time window: all bars of every symbol in that window, so
    the executor sees the market in time order across symbols. Within a batch, frames come in
    the order their symbols first appear.
    """
    ordered = bars if _in_time_order(bars) else bars.sort_values(["ts", "symbol"], kind="stable")
    ts = ordered["ts"].to_numpy(dtype=np.int64)
    n = len(ordered)
    start = 0
    columns = {name: ordered[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close", "volume")}
    codes, symbols = pd.factorize(ordered["symbol"].to_numpy())
    timeframes = ordered["timeframe"].to_numpy()
    while start < n:
        stop = min(start + chunk, n)
        # never split one timestamp across batches
        if stop < n:
            stop = int(np.searchsorted(ts, ts[stop - 1], side="right"))
        window = codes[start:stop]
        frames = []
        for code in pd.unique(window):
            rows = np.flatnonzero(window == code) + start
            frames.append(BarFrame(
                str(symbols[code]), str(timeframes[rows[0]]), readonly(ts[rows]),
                *(readonly(columns[name][rows]) for name in ("open", "high", "low", "close", "volume")),
            ))
        yield tuple(frames)
        start = stop


def _in_time_order(bars: pd.DataFrame) -> bool:
    """Whether ``bars`` is already sorted by (ts, symbol), so sorting would change nothing."""
    ts = bars["ts"].to_numpy(dtype=np.int64)
    steps = np.diff(ts)
    if (steps > 0).all():
        return True
    if (steps < 0).any():
        return False
    tied = np.flatnonzero(steps == 0)
    symbols = bars["symbol"].to_numpy()
    return bool((symbols[tied] < symbols[tied + 1]).all())
