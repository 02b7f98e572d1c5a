"""Backtest replay: bars in time order, cut into batches of frames (one frame per symbol), and the
flow-control rule that bounds how many are in the pipeline at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from messages.market import BarFrame, readonly

__all__ = ["ReplayPlan", "has_credit", "in_flight", "replay_chunks"]


class ReplayPlan:
    """Bars sorted by (ts, symbol) once, and the boundaries of every batch, so batch ``i`` is built
    on demand in O(its size) and a replay can resume at any batch (after a restart).

    ``bars`` has columns symbol, timeframe, ts (int64 ns close time), open, high, low, close,
    volume. Every batch holds about ``chunk`` bars and covers a time window: all bars of every
    symbol in it (one timestamp is never split), so the executor sees the market in time order
    across symbols. Within a batch, frames come in the order their symbols first appear.
    """

    COLUMNS = ("open", "high", "low", "close", "volume")

    def __init__(self, bars: pd.DataFrame, chunk: int) -> None:
        if chunk < 1:
            raise ValueError("a replay batch holds at least one bar")
        codes, symbols = pd.factorize(bars["symbol"], sort=True)  # codes in symbol order
        tf_codes, timeframes = pd.factorize(bars["timeframe"])
        ts = bars["ts"].to_numpy(dtype=np.int64)
        columns = {name: bars[name].to_numpy(dtype=np.float64) for name in self.COLUMNS}
        if not _in_time_order(ts, codes):
            order = np.lexsort((codes, ts))  # stable: by time, then symbol, then position
            ts, codes, tf_codes = ts[order], codes[order], tf_codes[order]
            columns = {name: column[order] for name, column in columns.items()}
        # the smallest integer type that holds the codes: these arrays are as long as the data set
        codes = codes.astype(np.min_scalar_type(max(len(symbols) - 1, 0)), copy=False)
        tf_codes = tf_codes.astype(np.min_scalar_type(max(len(timeframes) - 1, 0)), copy=False)
        self.symbols = [str(s) for s in symbols]
        self.timeframes = [str(t) for t in timeframes]
        self.ts, self.codes, self.tf_codes, self.columns = ts, codes, tf_codes, columns
        self.bounds = _bounds(ts, chunk)

    def __len__(self) -> int:
        """The number of batches."""
        return len(self.bounds) - 1

    @property
    def bars(self) -> int:
        """The number of bars."""
        return len(self.ts)

    def batch(self, i: int) -> tuple[BarFrame, ...]:
        """The frames of batch ``i`` (0-based)."""
        start, stop = int(self.bounds[i]), int(self.bounds[i + 1])
        window = self.codes[start:stop]
        frames = []
        for code in pd.unique(window):
            rows = np.flatnonzero(window == code) + start
            frames.append(BarFrame(
                self.symbols[code], self.timeframes[self.tf_codes[rows[0]]], readonly(self.ts[rows]),
                *(readonly(self.columns[name][rows]) for name in self.COLUMNS),
            ))
        return tuple(frames)


def replay_chunks(bars: pd.DataFrame, chunk: int) -> Iterator[tuple[BarFrame, ...]]:
    """Yield the batches of ``ReplayPlan(bars, chunk)`` in order."""
    plan = ReplayPlan(bars, chunk)
    for i in range(len(plan)):
        yield plan.batch(i)


def in_flight(counters: dict[str, int]) -> int:
    """Bars in the pipeline: counted into it (``bars``: replayed, plus any the buffer derived) and not
    yet out of it (processed by the executor, or dead-lettered)."""
    return counters["bars"] - counters["bars_processed"] - counters["bars_dead_lettered"]


def has_credit(counters: dict[str, int], window_bars: int) -> bool:
    """Whether the replay may send its next batch: fewer than ``window_bars`` bars are in flight."""
    return in_flight(counters) < window_bars


def _bounds(ts: np.ndarray, chunk: int) -> np.ndarray:
    """Start indices of every batch, plus the end: steps of ``chunk``, each moved forward to the end
    of the timestamp it would split."""
    n = len(ts)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    # the first index of each distinct timestamp run; a batch may end only there (or at n)
    run_starts = np.flatnonzero(np.diff(ts)) + 1
    bounds = [0]
    start = 0
    while start < n:
        stop = start + chunk
        if stop >= n:
            stop = n
        else:
            k = int(np.searchsorted(run_starts, stop, side="left"))
            stop = int(run_starts[k]) if k < len(run_starts) else n
        bounds.append(stop)
        start = stop
    return np.asarray(bounds, dtype=np.int64)


def _in_time_order(ts: np.ndarray, codes: np.ndarray) -> bool:
    """Whether bars are already sorted by (ts, symbol code), so sorting would change nothing."""
    steps = np.diff(ts)
    if (steps > 0).all():
        return True
    if (steps < 0).any():
        return False
    tied = np.flatnonzero(steps == 0)
    return bool((codes[tied] < codes[tied + 1]).all())
