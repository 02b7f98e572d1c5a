"""The shape every long-only rule shares: vectorised conditions, a position, explained signals.

A rule subclasses :class:`Rule` and implements ``required_features`` (indicator specs) and
``evaluate``, which returns, for every bar of a frame, whether the bar is a buy candidate and
whether it is a sell candidate, plus the named columns that explain a decision. ``update``
then applies the position, in time order: a buy candidate while flat buys, a sell candidate
while long sells all; anything else is ignored. It jumps from one signal to the next (the
first buy candidate at or after a position, then the first sell candidate after it, ...),
so Python runs once per signal, never once per bar. Conditions may read the previous
bar (a rule carries that bar's values between frames), never a later one, so one update over
many bars gives exactly what bar-by-bar updates give.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from actors.feature.indicators import MAX_PERIOD
from messages.market import BarFrame, readonly
from messages.trading import BUY, SELL, Signal

__all__ = ["Evaluation", "Rule", "crossed_above", "crossed_below", "last", "prediction_of", "period_ok", "previous", "require"]

Evaluation = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]
"""``(buy, sell, inputs)``: two boolean columns and the named columns recorded with a signal."""


def previous(column: np.ndarray, before: float) -> np.ndarray:
    """Return ``column`` shifted one bar later, with ``before`` (the last bar of the previous frame) in front."""
    return np.concatenate(([before], column[:-1]))


def crossed_above(diff: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Where ``diff`` turned positive: ``diff[t] > 0`` and ``diff[t-1] < 0`` (a tie is not a side)."""
    return (diff > 0) & (prev < 0)


def crossed_below(diff: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Where ``diff`` turned negative: ``diff[t] < 0`` and ``diff[t-1] > 0``."""
    return (diff < 0) & (prev > 0)


def require(ok: bool, message: str) -> None:
    """Raise ValueError with ``message`` unless ``ok`` (parameter checks in a rule's ``__init__``)."""
    if not ok:
        raise ValueError(message)


def period_ok(value: int) -> bool:
    """Whether ``value`` is a usable indicator period."""
    return 1 <= value <= MAX_PERIOD


def last(column: np.ndarray, default: float) -> float:
    """The column's last value, or ``default`` for an empty column."""
    return float(column[-1]) if len(column) else default


class Rule:
    """A long-only rule for one symbol and timeframe; remembers its position.

    State lives in attributes rebound to immutable values (floats, bools, tuples), never changed
    in place: the strategy actor checkpoints a rule with a shallow copy.
    """

    name: ClassVar[str] = ""
    params: tuple[tuple[str, float | int | bool], ...] = ()  # set by the spec that builds the rule

    def __init__(self) -> None:
        self.long = False

    def required_features(self) -> tuple[str, ...]:
        """Indicator specs this rule reads (the feature actor adds them)."""
        raise NotImplementedError

    def needs_prediction(self) -> bool:
        """Whether this rule reads the model's probability (the model runs only if some rule does)."""
        return False

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Return buy and sell candidates for every bar, and the columns that explain them."""
        raise NotImplementedError

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Say in words why bar ``i`` is a ``side`` signal."""
        raise NotImplementedError

    def update(self, frame: BarFrame) -> tuple[np.ndarray, list[Signal]]:
        """Return the signal column (+1 buy, -1 sell, 0) and the signals for the frame."""
        buy, sell, inputs = self.evaluate(frame)
        candidates = {BUY: np.flatnonzero(buy), SELL: np.flatnonzero(sell)}
        column = np.zeros(len(frame), dtype=np.int8)
        signals: list[Signal] = []
        start = 0
        while True:
            side = SELL if self.long else BUY
            bars = candidates[side]
            k = int(np.searchsorted(bars, start))
            if k == len(bars):
                return readonly(column), signals
            i = int(bars[k])
            self.long = side == BUY
            column[i] = 1 if self.long else -1
            signals.append(self._signal(frame, i, side, inputs))
            start = i + 1

    def _signal(self, frame: BarFrame, i: int, side: str, inputs: dict[str, np.ndarray]) -> Signal:
        return Signal(
            self.name, frame.symbol, frame.timeframe, int(frame.ts[i]), side, float(frame.close[i]),
            self.reason(side, i, inputs), tuple((key, float(values[i])) for key, values in inputs.items()),
            self.params,
        )


def prediction_of(frame: BarFrame) -> np.ndarray:
    """The model's probabilities for the frame, NaN where there are none."""
    if frame.prediction is None:
        return np.full(len(frame), math.nan)
    return np.asarray(frame.prediction, dtype=np.float64)
