"""Incremental indicators per symbol and timeframe, declared by specs like ``"rsi:14"``.

Every indicator keeps bounded state (a few floats, or a tail of at most N inputs) and
updates with whole columns of high, low and close. Results do not depend on how the bars
are cut into batches: bar-by-bar updates give exactly (bit for bit) what one update over
all bars gives. Recursive indicators run one scalar step per bar (:mod:`.recursive`);
window indicators combine each window's values in a fixed order (:mod:`.windows`).
Output names are the spec with ``_`` for ``:`` unless listed. "Warm-up W" means the first
W values are NaN and none after (for finite inputs). x is the close, t the bar index.

- ``sma:N``: ``mean(x[t-N+1..t])``, summed oldest first. Warm-up N-1.
- ``ema:N``: alpha = 2/(N+1); ``ema[N-1] = sma:N at N-1``, then
  ``ema[t] = (x[t] - ema[t-1]) * alpha + ema[t-1]`` (TA-Lib). Warm-up N-1.
- ``wma:N``: ``sum(k * x[t-N+k], k=1..N) / (N(N+1)/2)``: weight N on the newest. Warm-up N-1.
- ``std:N``: population standard deviation (ddof=0, as TA-Lib STDDEV and pandas
  ``rolling(N).std(ddof=0)``), two passes over the window's deviations from its first
  value, so a flat window gives exactly 0. Warm-up N-1.
- ``rsi:N``: Wilder (TA-Lib). Changes ``d[t] = x[t] - x[t-1]`` (t >= 1), gain
  ``max(d, 0)``, loss ``max(-d, 0)``. At t = N the averages are the plain means of the
  first N gains and losses; then ``avg = (avg * (N-1) + new) / N``.
  ``rsi = 100 * avg_gain / (avg_gain + avg_loss)``, and 50 when both are 0 (no move in the
  first N bars; TA-Lib gives 0 there). Warm-up N.
- ``atr:N``: Wilder average true range (TA-Lib). ``tr[t] = max(high - low,
  |high - close[t-1]|, |low - close[t-1]|)`` for t >= 1; bar 0 has no previous close and no
  true range. ``atr[N] = mean(tr[1..N])``, then ``atr = (atr * (N-1) + tr) / N``. Warm-up N.
- ``macd:F:S:G`` (F < S): ``macd_F_S_G = ema:F - ema:S`` (both as ``ema:N`` above, so it
  equals ``ema_F - ema_S``), warm-up S-1; ``macd_signal_F_S_G`` = EMA G of the line,
  seeded with the mean of its first G values, warm-up S+G-2; ``macd_hist_F_S_G`` = line -
  signal, warm-up S+G-2. TA-Lib differs: it seeds the fast EMA at bar S-1 with the mean of
  ``x[S-F..S-1]`` and withholds the line until S+G-2; the gap decays as (1 - 2/(F+1))^t.
- ``bb:N:K`` (K a positive number, named with the spec's text: ``bb:20:2.5`` -> ``..._20_2.5``):
  ``bb_mid_N_K`` = sma:N, ``bb_up_N_K`` / ``bb_low_N_K`` = mid +/- K * std:N,
  ``bb_pctb_N_K`` = (x - low) / (up - low), 0.5 when up == low (a flat window),
  ``bb_width_N_K`` = (up - low) / mid. Warm-up N-1 for all five.
- ``ret:N``: ``x[t] / x[t-N] - 1``. Warm-up N.
- ``logret:N``: ``log(x[t] / x[t-N])``. Warm-up N.
- ``hh:N`` / ``ll:N``: highest high / lowest low of bars t-N+1..t (the current bar
  included). Warm-up N-1.

N, F, S, G are integers from 1 to MAX_PERIOD, written without leading zeros.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from actors.feature.recursive import ATR, EMA, MACD, RSI
from actors.feature.windows import SMA, WMA, Bollinger, Highest, LogReturn, Lowest, Return, StdDev
from messages.market import BarFrame, readonly

__all__ = [
    "spec_for_column",
    "ATR", "EMA", "MACD", "MAX_PERIOD", "RSI", "SMA", "WMA", "Bollinger", "Highest", "Indicator",
    "IndicatorSet", "LogReturn", "Lowest", "Return", "StdDev", "VALID_FORMS", "output_names", "parse_indicator",
]

MAX_PERIOD = 100_000

_PERIODIC: dict[str, Callable[[int], Indicator]] = {
    "sma": SMA, "ema": EMA, "ret": Return, "logret": LogReturn, "wma": WMA, "std": StdDev,
    "rsi": RSI, "atr": ATR, "hh": Highest, "ll": Lowest,
}
_INTEGER = re.compile(r"[1-9][0-9]*")
_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
VALID_FORMS = (
    f"valid kinds: {', '.join(_PERIODIC)}, macd, bb; forms: {', '.join(f'{kind}:N' for kind in _PERIODIC)} "
    "(e.g. 'rsi:14'), macd:FAST:SLOW:SIGNAL with FAST < SLOW (e.g. 'macd:12:26:9'), bb:N:K with K a positive "
    f"number (e.g. 'bb:20:2' or 'bb:20:2.5'); N, FAST, SLOW and SIGNAL are integers from 1 to {MAX_PERIOD}"
)


@runtime_checkable
class Indicator(Protocol):
    """One indicator: ``names`` of its output columns, and ``update`` giving one value per bar in each."""

    names: tuple[str, ...]

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return one new column per name for these bars, continuing from earlier updates."""
        ...


def _periods(spec: str, texts: list[str], count: int, form: str) -> list[int]:
    if len(texts) != count or not all(_INTEGER.fullmatch(t) and int(t) <= MAX_PERIOD for t in texts):
        raise ValueError(f"indicator {spec!r} needs positive integer periods up to {MAX_PERIOD}, as {form!r}; "
                         f"{VALID_FORMS}")
    return [int(text) for text in texts]


def parse_indicator(spec: str) -> Indicator:
    """Build the indicator of ``spec``; ValueError naming every valid kind and its form if it is wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"indicator {spec!r} is not a string; {VALID_FORMS}")
    kind, *texts = spec.split(":")
    if kind in _PERIODIC:
        (period,) = _periods(spec, texts, 1, f"{kind}:N")
        return _PERIODIC[kind](period)
    if kind == "macd":
        fast, slow, signal = _periods(spec, texts, 3, "macd:FAST:SLOW:SIGNAL")
        if fast >= slow:
            raise ValueError(f"indicator {spec!r} needs FAST < SLOW, as in 'macd:12:26:9'; {VALID_FORMS}")
        return MACD(fast, slow, signal)
    if kind == "bb":
        (period,) = _periods(spec, texts[:1], 1, "bb:N:K")
        if len(texts) != 2 or not _NUMBER.fullmatch(texts[1]) or float(texts[1]) <= 0.0:
            raise ValueError(f"indicator {spec!r} needs a positive number K, as 'bb:N:K'; {VALID_FORMS}")
        return Bollinger(period, float(texts[1]), texts[1])
    raise ValueError(f"unknown indicator {spec!r}; {VALID_FORMS}")


def output_names(spec: str) -> tuple[str, ...]:
    """Return the names of the columns ``spec`` produces (ValueError as ``parse_indicator``)."""
    return parse_indicator(spec).names


_COLUMN_FORMS = (
    (re.compile(r"macd(?:_signal|_hist)?_(\d+)_(\d+)_(\d+)"), "macd:{}:{}:{}"),
    (re.compile(r"bb_(?:mid|up|low|pctb|width)_(\d+)_([0-9.]+)"), "bb:{}:{}"),
    (re.compile(r"([a-z]+)_(\d+)"), "{}:{}"),
)


def spec_for_column(column: str) -> str:
    """The indicator spec that produces ``column`` (e.g. ``"macd_hist_12_26_9"`` -> ``"macd:12:26:9"``);
    ValueError if no indicator does."""
    for pattern, form in _COLUMN_FORMS:
        match = pattern.fullmatch(column)
        if match:
            spec = form.format(*match.groups())
            try:
                if column in output_names(spec):
                    return spec
            except ValueError:
                pass
    raise ValueError(f"no indicator produces a column named {column!r}")


class IndicatorSet:
    """All configured indicators of one symbol and timeframe."""

    def __init__(self, specs: tuple[str, ...] | list[str]) -> None:
        self.indicators = [parse_indicator(spec) for spec in specs]
        self.names = tuple(name for indicator in self.indicators for name in indicator.names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"indicators {list(specs)} produce a column name twice: {self.names}")

    def update(self, frame: BarFrame) -> tuple[tuple[str, np.ndarray], ...]:
        """Return ``(name, read-only column)`` pairs, one value per bar of ``frame``."""
        high, low, close = (np.asarray(c, dtype=np.float64) for c in (frame.high, frame.low, frame.close))
        pairs: list[tuple[str, np.ndarray]] = []
        for indicator in self.indicators:
            columns = indicator.update(high, low, close)
            pairs.extend((name, readonly(column)) for name, column in zip(indicator.names, columns, strict=True))
        return tuple(pairs)
