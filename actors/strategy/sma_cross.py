"""The canonical strategy, ``sma_cross``.

fast = SMA(close, fast), slow = SMA(close, slow). At bar t's close:
cross up = fast[t] > slow[t] and fast[t-1] < slow[t-1];
cross down = fast[t] < slow[t] and fast[t-1] > slow[t-1].
Cross up while flat: buy. Cross down while long: sell all. Long only.
An exact tie (fast == slow) is not a side: a cross needs strict inequalities on both bars,
so after a tie no cross is reported (backtesting.py's ``crossover`` rule).
With ``min_prob`` > 0, a buy also needs the model's probability of a higher next close to
be at least ``min_prob``.
"""

from __future__ import annotations

import math

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, last, prediction_of, previous, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["SmaCross"]

UP, DOWN = "fast crossed above slow", "fast crossed below slow"


class SmaCross(Strategy):
    """Buy when the fast average crosses above the slow one; sell when it crosses below."""

    name = "sma_cross"

    params = {"fast": 10, "slow": 30, "min_prob": 0.0}

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        self.fast_key, self.slow_key = f"sma_{self.fast}", f"sma_{self.slow}"
        self._prev_diff = math.nan

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(1 <= self.fast < self.slow, f"need 1 <= fast ({self.fast}) < slow ({self.slow})")
        require(0.0 <= self.min_prob < 1.0, f"min_prob ({self.min_prob:g}) must be in [0, 1)")

    def required_features(self) -> tuple[str, ...]:
        """The two averages."""
        return (f"sma:{self.fast}", f"sma:{self.slow}")

    def needs_prediction(self) -> bool:
        """Whether buys are gated on the model's probability."""
        return self.min_prob > 0

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Crosses up (that pass ``min_prob``) buy; crosses down sell."""
        fast = np.asarray(frame.feature(self.fast_key))
        slow = np.asarray(frame.feature(self.slow_key))
        diff = fast - slow
        prev = previous(diff, self._prev_diff)
        self._prev_diff = last(diff, self._prev_diff)
        up = (diff > 0) & (prev < 0)
        down = (diff < 0) & (prev > 0)
        prob = prediction_of(frame)
        if self.min_prob > 0:
            up &= prob >= self.min_prob
        return up, down, {self.fast_key: fast, self.slow_key: slow, "prob_up": prob,
                          "min_prob": np.full(len(diff), self.min_prob)}

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Which way the averages crossed."""
        return UP if side == BUY else DOWN
