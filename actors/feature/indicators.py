"""Incremental indicators over bar closes.

Each indicator keeps only what its next value needs and updates with a whole column at once.
Results do not depend on how the bars are cut into batches: updating with one bar at a time
gives exactly (bit for bit) what one update over all bars gives.

- ``sma:N``: simple moving average of the last N closes; NaN for the first N-1 bars.
- ``ema:N``: exponential moving average, alpha = 2/(N+1), seeded with the SMA of the first N
  closes (the TA-Lib convention); NaN for the first N-1 bars.
- ``ret:N``: simple return close[t] / close[t-N] - 1; NaN for the first N bars.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from messages.market import BarFrame, readonly

__all__ = ["EMA", "SMA", "Indicator", "IndicatorSet", "Return", "parse_indicator"]


class Indicator:
    """One indicator; ``update`` takes new closes and returns one value per close."""

    name: str

    def update(self, close: np.ndarray) -> np.ndarray:
        """Return the indicator for each of ``close``, continuing from earlier updates."""
        raise NotImplementedError


class SMA(Indicator):
    """Simple moving average; each window is summed in the same order whatever the batching."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.name = f"sma_{period}"
        self._tail = np.empty(0, dtype=np.float64)

    def update(self, close: np.ndarray) -> np.ndarray:
        n = self.period
        values = np.concatenate((self._tail, close))
        out = np.full(len(close), np.nan)
        if len(values) >= n:
            windows = sliding_window_view(values, n)
            total = windows[:, 0].copy()
            for j in range(1, n):
                total += windows[:, j]
            means = total / n
            out[len(out) - len(means):] = means[len(means) - min(len(means), len(out)):]
        self._tail = values[max(0, len(values) - (n - 1)):] if n > 1 else values[:0]
        return out


class EMA(Indicator):
    """Exponential moving average seeded with the SMA of the first ``period`` closes."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.name = f"ema_{period}"
        self.alpha = 2.0 / (period + 1.0)
        self._seed: list[float] = []
        self._value = float("nan")

    def update(self, close: np.ndarray) -> np.ndarray:
        out = np.empty(len(close))
        alpha, value, seed, n = self.alpha, self._value, self._seed, self.period
        for i, x in enumerate(close.tolist()):
            if len(seed) < n:
                seed.append(x)
                if len(seed) == n:
                    value = sum(seed) / n
            else:
                value = value + alpha * (x - value)
            out[i] = value
        self._value = value
        return out


class Return(Indicator):
    """Simple return over ``period`` bars."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.name = f"ret_{period}"
        self._tail = np.empty(0, dtype=np.float64)

    def update(self, close: np.ndarray) -> np.ndarray:
        n = self.period
        values = np.concatenate((self._tail, close))
        out = np.full(len(close), np.nan)
        if len(values) > n:
            ratios = values[n:] / values[:-n] - 1.0
            out[len(out) - len(ratios):] = ratios[len(ratios) - min(len(ratios), len(out)):]
        self._tail = values[max(0, len(values) - n):]
        return out


_KINDS: dict[str, type[Indicator]] = {"sma": SMA, "ema": EMA, "ret": Return}


def parse_indicator(spec: str) -> Indicator:
    """Build an indicator from ``"kind:period"``; ValueError lists what is valid."""
    kind, _, period = spec.partition(":")
    if kind not in _KINDS:
        raise ValueError(f"unknown indicator {spec!r}; valid kinds: {', '.join(_KINDS)} (as 'kind:period')")
    if not period.isdigit() or int(period) < 1:
        raise ValueError(f"indicator {spec!r} needs a positive integer period, e.g. '{kind}:10'")
    return _KINDS[kind](int(period))


class IndicatorSet:
    """All configured indicators of one symbol and timeframe."""

    def __init__(self, specs: tuple[str, ...] | list[str]) -> None:
        self.indicators = [parse_indicator(spec) for spec in specs]

    def update(self, frame: BarFrame) -> tuple[tuple[str, np.ndarray], ...]:
        """Return ``(name, column)`` pairs for the frame's bars."""
        close = np.asarray(frame.close, dtype=np.float64)
        return tuple((ind.name, readonly(ind.update(close))) for ind in self.indicators)
