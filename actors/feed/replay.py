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
    codes, symbols = pd.factorize(bars["symbol"], sort=True)  # codes in symbol order
    tf_codes, timeframes = pd.factorize(bars["timeframe"])
    ts = bars["ts"].to_numpy(dtype=np.int64)
    columns = {name: bars[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close", "volume")}
    if not _in_time_order(ts, codes):
        order = np.lexsort((codes, ts))  # stable: by time, then symbol, then position
        ts, codes, tf_codes = ts[order], codes[order], tf_codes[order]
        columns = {name: column[order] for name, column in columns.items()}
    n = len(ts)
    start = 0
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
                str(symbols[code]), str(timeframes[tf_codes[rows[0]]]), readonly(ts[rows]),
                *(readonly(columns[name][rows]) for name in ("open", "high", "low", "close", "volume")),
            ))
        yield tuple(frames)
        start = stop


def _in_time_order(ts: np.ndarray, codes: np.ndarray) -> bool:
    """Whether bars are already sorted by (ts, symbol code), so sorting would change nothing."""
    steps = np.diff(ts)
    if (steps > 0).all():
        return True
    if (steps < 0).any():
        return False
    tied = np.flatnonzero(steps == 0)
    return bool((codes[tied] < codes[tied + 1]).all())
