"""The shape every long-only rule shares: vectorised conditions and explained signals.

A rule subclasses :class:`Rule` and implements ``required_features`` (indicator specs) and
``evaluate``, which returns, for every bar of a frame, whether the bar is a buy candidate and
whether it is a sell candidate, plus the named columns that explain a decision. ``decider``
hands them on as :class:`~messages.trading.Candidates`; the executor applies them with the
position its account holds, in time order: a buy candidate while flat buys, a sell candidate
while long sells all; anything else is ignored. It jumps from one candidate of the side that
matters to the next, so Python runs once per decision, never once per bar. Conditions may
read the previous bar (a rule carries that bar's values between frames), never a later one,
so one evaluation over many bars gives exactly what bar-by-bar evaluations give.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import numpy as np

from actors.feature.indicators import MAX_PERIOD
from messages.market import BarFrame, readonly
from messages.trading import Candidates

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
    """A long-only rule for one symbol and timeframe.

    It holds no position: the executor's account does. State lives in attributes rebound to
    immutable values (floats, tuples), never changed in place: the strategy actor checkpoints a
    rule with a shallow copy, and a copy explains the signals of a frame it handed on.
    """

    name: ClassVar[str] = ""
    params: tuple[tuple[str, float | int | bool], ...] = ()  # set by the spec that builds the rule

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

    def decider(self, frame: BarFrame) -> Candidates:
        """The frame's candidates, for the executor to take with the position it holds."""
        buy, sell, inputs = self.evaluate(frame)
        explain = copy.copy(self).reason
        return Candidates(self.name, self.params, frame.symbol, frame.timeframe, frame.ts, frame.close,
                          readonly(np.flatnonzero(buy)), readonly(np.flatnonzero(sell)),
                          tuple((key, np.asarray(values)) for key, values in inputs.items()), explain)


def prediction_of(frame: BarFrame) -> np.ndarray:
    """The model's probabilities for the frame, NaN where there are none."""
    if frame.prediction is None:
        return np.full(len(frame), math.nan)
    return np.asarray(frame.prediction, dtype=np.float64)
