"""Window indicators: each value is a function of the last few bars only.

Each indicator carries the tail of its inputs that the next window needs (at most N values)
and computes every window with the same floating-point operations in the same order,
whatever the batching: columns of the window are combined one offset at a time, never
with ``np.sum`` (whose pairwise order depends on the length). One update over many bars
therefore gives bit for bit what bar-by-bar updates give. Formulas and warm-ups are in
:mod:`actors.feature.indicators`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["SMA", "WMA", "Bollinger", "Highest", "LogReturn", "Lowest", "Return", "StdDev"]


class _Tail:
    """The last ``span - 1`` values of one input column, and the windows of ``span`` they complete."""

    def __init__(self, span: int) -> None:
        self.span = span
        self._tail = np.empty(0, dtype=np.float64)

    def windows(self, x: np.ndarray) -> np.ndarray:
        """Return one row per complete window ending at a value of ``x`` (rows for the first values may be missing)."""
        n = self.span
        values = np.concatenate((self._tail, x))
        self._tail = values[len(values) - min(len(values), n - 1):].copy()  # a copy: keep no batch alive
        if len(values) < n:
            return np.empty((0, n))
        return sliding_window_view(values, n)


def _aligned(values: np.ndarray, count: int) -> np.ndarray:
    """Return ``values`` right-aligned in a column of ``count``, NaN in front (the warm-up)."""
    out = np.full(count, np.nan)
    out[count - len(values):] = values
    return out


def _sum(w: np.ndarray) -> np.ndarray:
    """Sum each window left to right: ((w0 + w1) + w2) + ..."""
    total = w[:, 0].copy()
    for j in range(1, w.shape[1]):
        total += w[:, j]
    return total


def _pstd(w: np.ndarray) -> np.ndarray:
    """Population standard deviation of each window, two-pass on deviations from the window's first value.

    Shifting by the first value keeps the two passes accurate and makes a constant window exactly 0.
    """
    n = w.shape[1]
    base = w[:, 0]
    mean = np.zeros(len(w))
    for j in range(1, n):
        mean += w[:, j] - base
    mean /= n
    squares = mean * mean  # offset 0: deviation 0 - mean
    for j in range(1, n):
        dev = (w[:, j] - base) - mean
        squares += dev * dev
    return np.sqrt(squares / n)


class SMA:
    """``sma:N``: mean of the last N closes."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"sma_{period}",)
        self._tail = _Tail(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        return (_aligned(_sum(self._tail.windows(close)) / self.period, len(close)),)


class WMA:
    """``wma:N``: linearly weighted mean of the last N closes, weights 1 (oldest) to N (newest)."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"wma_{period}",)
        self._tail = _Tail(period)
        self._denominator = period * (period + 1) / 2.0

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        w = self._tail.windows(close)
        total = w[:, 0].copy()
        for j in range(1, self.period):
            total += w[:, j] * float(j + 1)
        return (_aligned(total / self._denominator, len(close)),)


class StdDev:
    """``std:N``: population standard deviation (ddof=0) of the last N closes."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"std_{period}",)
        self._tail = _Tail(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        return (_aligned(_pstd(self._tail.windows(close)), len(close)),)


class Bollinger:
    """``bb:N:K``: SMA N of the closes, bands at K population standard deviations, %b and width."""

    def __init__(self, period: int, k: float, label: str | None = None) -> None:
        self.period = period
        self.k = k
        suffix = f"{period}_{label if label is not None else f'{k:g}'}"
        self.names = tuple(f"bb_{part}_{suffix}" for part in ("mid", "up", "low", "pctb", "width"))
        self._tail = _Tail(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return mid, upper, lower, %b and width for the new bars, continuing from earlier updates."""
        w = self._tail.windows(close)
        mid = _sum(w) / self.period
        spread = self.k * _pstd(w)
        upper, lower = mid + spread, mid - spread
        band = upper - lower
        with np.errstate(divide="ignore", invalid="ignore"):
            pctb = np.where(band > 0.0, (w[:, -1] - lower) / band, 0.5)
            width = band / mid
        return tuple(_aligned(column, len(close)) for column in (mid, upper, lower, pctb, width))


class Highest:
    """``hh:N``: highest high of the last N bars, the current one included."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"hh_{period}",)
        self._tail = _Tail(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        return (_aligned(self._tail.windows(high).max(axis=1), len(high)),)


class Lowest:
    """``ll:N``: lowest low of the last N bars, the current one included."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"ll_{period}",)
        self._tail = _Tail(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        return (_aligned(self._tail.windows(low).min(axis=1), len(low)),)


class Return:
    """``ret:N``: simple return ``close[t] / close[t-N] - 1``."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"ret_{period}",)
        self._tail = _Tail(period + 1)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        w = self._tail.windows(close)
        return (_aligned(w[:, -1] / w[:, 0] - 1.0, len(close)),)


class LogReturn:
    """``logret:N``: log return ``log(close[t] / close[t-N])``."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"logret_{period}",)
        self._tail = _Tail(period + 1)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        w = self._tail.windows(close)
        return (_aligned(np.log(w[:, -1] / w[:, 0]), len(close)),)
