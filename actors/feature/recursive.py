"""Recursive indicators: each value follows from the previous one and the new bar.

State is a fixed handful of floats. Every bar goes through the same scalar Python step,
whether an update carries one bar or a hundred thousand, so results do not depend on the
batching (bit for bit). Formulas and warm-ups are in :mod:`actors.feature.indicators`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ATR", "EMA", "MACD", "RSI"]

NAN = math.nan


class _Ema:
    """A scalar EMA, alpha = 2/(N+1), seeded with the mean of its first N inputs (TA-Lib)."""

    __slots__ = ("alpha", "count", "period", "total", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self.alpha = 2.0 / (period + 1.0)
        self.count = 0
        self.total = 0.0
        self.value = NAN

    def step(self, x: float) -> float:
        """Take one input; return the EMA after it (NaN until N inputs are seen)."""
        if self.count < self.period:
            self.count += 1
            self.total += x
            if self.count == self.period:
                self.value = self.total / self.period
            return self.value
        self.value = (x - self.value) * self.alpha + self.value
        return self.value


class EMA:
    """``ema:N``: exponential moving average of the closes."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"ema_{period}",)
        self._ema = _Ema(period)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        step = self._ema.step
        return (np.array([step(x) for x in close.tolist()], dtype=np.float64),)


class MACD:
    """``macd:F:S:G``: EMA F - EMA S of the closes, its EMA G (signal), and their difference."""

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast, self.slow, self.signal = fast, slow, signal
        suffix = f"{fast}_{slow}_{signal}"
        self.names = (f"macd_{suffix}", f"macd_signal_{suffix}", f"macd_hist_{suffix}")
        self._fast, self._slow, self._signal = _Ema(fast), _Ema(slow), _Ema(signal)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return line, signal and histogram for the new bars, continuing from earlier updates."""
        fast, slow, signal = self._fast.step, self._slow.step, self._signal.step
        lines, signals = [], []
        for x in close.tolist():
            line = fast(x) - slow(x)
            lines.append(line)
            signals.append(signal(line) if line == line else NAN)  # the signal starts at the first line value
        line_col, signal_col = np.array(lines, dtype=np.float64), np.array(signals, dtype=np.float64)
        return line_col, signal_col, line_col - signal_col


class RSI:
    """``rsi:N``: Wilder's relative strength index of the closes."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"rsi_{period}",)
        self._seen = 0            # bars seen, counted up to N + 1
        self._prev = NAN          # previous close
        self._gain = 0.0          # sum of gains while seeding, then the average gain
        self._loss = 0.0

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        n, seen, prev, gain_avg, loss_avg = self.period, self._seen, self._prev, self._gain, self._loss
        out = []
        for x in close.tolist():
            change, prev = x - prev, x
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            if seen <= n:
                seen += 1
                if seen == 1:  # the first bar has no change
                    out.append(NAN)
                    continue
                gain_avg += gain
                loss_avg += loss
                if seen <= n:
                    out.append(NAN)
                    continue
                gain_avg /= n
                loss_avg /= n
            else:
                gain_avg = (gain_avg * (n - 1) + gain) / n
                loss_avg = (loss_avg * (n - 1) + loss) / n
            total = gain_avg + loss_avg
            out.append(100.0 * (gain_avg / total) if total != 0.0 else 50.0)  # flat: neutral
        self._seen, self._prev, self._gain, self._loss = seen, prev, gain_avg, loss_avg
        return (np.array(out, dtype=np.float64),)


class ATR:
    """``atr:N``: Wilder's average true range."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.names = (f"atr_{period}",)
        self._seen = 0            # bars seen, counted up to N + 1
        self._prev = NAN          # previous close
        self._atr = 0.0           # sum of true ranges while seeding, then the ATR

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the column for the new bars, continuing from earlier updates."""
        n, seen, prev, atr = self.period, self._seen, self._prev, self._atr
        out = []
        for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist()):
            true_range = max(h - lo, abs(h - prev), abs(lo - prev))
            prev = c
            if seen <= n:
                seen += 1
                if seen == 1:  # the first bar has no previous close, hence no true range
                    out.append(NAN)
                    continue
                atr += true_range
                if seen <= n:
                    out.append(NAN)
                    continue
                atr /= n
            else:
                atr = (atr * (n - 1) + true_range) / n
            out.append(atr)
        self._seen, self._prev, self._atr = seen, prev, atr
        return (np.array(out, dtype=np.float64),)
