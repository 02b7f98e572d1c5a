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

UP, DOWN = "fast crossed above slow", "fast crossed below slow"


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
        """Return the signal column (+1 buy, -1 sell, 0) and the signals for the frame.

        Vectorised: the candidates are the crosses up (that pass ``min_prob``) and the crosses
        down; walking them in time order, a cross up while flat buys and a cross down while long
        sells, so the ones that trade are exactly those whose side differs from the candidate
        before them (the first one compared with the position held before the frame).
        """
        fast = np.asarray(frame.feature(self.fast_key))
        slow = np.asarray(frame.feature(self.slow_key))
        diff = fast - slow
        prev = np.concatenate(([self._prev_diff], diff[:-1]))
        up = (diff > 0) & (prev < 0)
        down = (diff < 0) & (prev > 0)
        if len(diff):
            self._prev_diff = float(diff[-1])
        prediction = frame.prediction
        if self.min_prob > 0:
            up &= np.asarray(prediction, dtype=np.float64) >= self.min_prob if prediction is not None else False
        candidates = np.flatnonzero(up | down)
        sides = np.where(up[candidates], 1, -1).astype(np.int8)
        changed = sides != np.concatenate(([1 if self.long else -1], sides[:-1]))
        trades = candidates[changed]
        column = np.zeros(len(diff), dtype=np.int8)
        if not len(trades):
            return readonly(column), []
        column[trades] = sides[changed]
        self.long = bool(column[trades[-1]] > 0)
        probs = np.full(len(trades), math.nan) if prediction is None else np.asarray(prediction, dtype=np.float64)[trades]
        signals = [
            Signal(self.name, frame.symbol, frame.timeframe, ts, BUY if buy else SELL, close, UP if buy else DOWN,
                   ((self.fast_key, f), (self.slow_key, sl), ("prob_up", prob), ("min_prob", self.min_prob)),
                   self.params)
            for ts, close, buy, f, sl, prob in zip(
                frame.ts[trades].tolist(), frame.close[trades].tolist(), (column[trades] > 0).tolist(),
                fast[trades].tolist(), slow[trades].tolist(), probs.tolist(), strict=True)
        ]
        return readonly(column), signals
