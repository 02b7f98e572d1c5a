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

from messages.market import BarFrame, readonly
from messages.trading import BUY, SELL, Signal

__all__ = ["SmaCross"]


class SmaCross:
    """The rule for one symbol and timeframe; remembers the previous bar and the position."""

    name = "sma_cross"
    params: tuple[tuple[str, float | int | bool], ...] = ()  # set by the spec that builds the rule

    def __init__(self, fast: int = 10, slow: int = 30, min_prob: float = 0.0) -> None:
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast ({fast}) < slow ({slow})")
        if not 0.0 <= min_prob < 1.0:
            raise ValueError(f"min_prob ({min_prob:g}) must be in [0, 1)")
        self.fast, self.slow, self.min_prob = fast, slow, min_prob
        self.fast_key, self.slow_key = f"sma_{fast}", f"sma_{slow}"
        self.long = False
        self._prev_diff = math.nan

    def required_features(self) -> tuple[str, ...]:
        """Indicator specs this rule reads."""
        return (f"sma:{self.fast}", f"sma:{self.slow}")

    def needs_prediction(self) -> bool:
        """Whether buys are gated on the model's probability."""
        return self.min_prob > 0

    def update(self, frame: BarFrame) -> tuple[np.ndarray, list[Signal]]:
        """Return the signal column (+1 buy, -1 sell, 0) and the signals for the frame."""
        fast = np.asarray(frame.feature(self.fast_key))
        slow = np.asarray(frame.feature(self.slow_key))
        diff = fast - slow
        prev = np.concatenate(([self._prev_diff], diff[:-1]))
        up = (diff > 0) & (prev < 0)
        down = (diff < 0) & (prev > 0)
        if len(diff):
            self._prev_diff = float(diff[-1])
        column = np.zeros(len(diff), dtype=np.int8)
        signals: list[Signal] = []
        prediction = frame.prediction
        for i in np.flatnonzero(up | down).tolist():
            prob = math.nan if prediction is None else float(prediction[i])
            if up[i] and not self.long:
                if self.min_prob > 0 and not prob >= self.min_prob:
                    continue
                self.long = True
                column[i] = 1
                signals.append(self._signal(frame, i, BUY, "fast crossed above slow", fast, slow, prob))
            elif down[i] and self.long:
                self.long = False
                column[i] = -1
                signals.append(self._signal(frame, i, SELL, "fast crossed below slow", fast, slow, prob))
        return readonly(column), signals

    def _signal(self, frame: BarFrame, i: int, side: str, reason: str, fast: np.ndarray,
                slow: np.ndarray, prob: float) -> Signal:
        return Signal(
            self.name, frame.symbol, frame.timeframe, int(frame.ts[i]), side, float(frame.close[i]), reason,
            ((self.fast_key, float(fast[i])), (self.slow_key, float(slow[i])), ("prob_up", prob),
             ("min_prob", self.min_prob)), self.params,
        )
