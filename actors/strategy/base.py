"""Helpers for vectorised strategies (``Strategy.evaluate``).

``evaluate`` returns, for every bar of a frame, whether the bar is a buy candidate and whether
it is a sell candidate, plus the named columns that explain a decision; the executor applies
them with the position its account holds, in time order: a buy candidate while flat buys, a
sell candidate while long sells all; anything else is ignored. Conditions may read the previous
bar (a strategy carries that bar's values between frames in attributes rebound to immutable
values), never a later one, so one evaluation over many bars gives exactly what bar-by-bar
evaluations give.
"""

from __future__ import annotations

import math

import numpy as np

from actors.feature.indicators import MAX_PERIOD
from messages.market import BarFrame

__all__ = ["Evaluation", "crossed_above", "crossed_below", "last", "prediction_of", "period_ok", "previous", "require"]

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


def prediction_of(frame: BarFrame) -> np.ndarray:
    """The model's probabilities for the frame, NaN where there are none."""
    if frame.prediction is None:
        return np.full(len(frame), math.nan)
    return np.asarray(frame.prediction, dtype=np.float64)
