"""``ma_model``: a moving-average cross whose trades wait for the model to agree.

fast = SMA(close, fast), slow = SMA(close, slow), p = the model's probability that the next
close is higher. At bar t's close:
buy while flat when fast[t] > slow[t] and p[t] >= ``threshold``;
sell while long when fast[t] < slow[t] and p[t] <= 1 - ``threshold``.
So the cross sets the direction and the model picks the bar: if the model does not confirm a
cross up at once, the buy comes at the first later bar of the same up-leg where it does (or
never, if the averages cross back first); exits wait for the model the same way. Bars without
a prediction (warm-up) never act. Long only.
"""

from __future__ import annotations

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, period_ok, prediction_of, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["MaModel"]


class MaModel(Strategy):
    """SMA fast/slow direction, acted on only when the model's probability agrees."""

    name = "ma_model"

    params = {"fast": 10, "slow": 30, "threshold": 0.55}
    uses_model = True

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        self.fast_key, self.slow_key = f"sma_{self.fast}", f"sma_{self.slow}"

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(period_ok(self.fast) and period_ok(self.slow), "periods fast and slow must be >= 1")
        require(self.fast < self.slow, f"fast ({self.fast}) must be less than slow ({self.slow})")
        require(0.5 <= self.threshold < 1.0, f"threshold ({self.threshold:g}) must be in [0.5, 1)")

    def required_features(self) -> tuple[str, ...]:
        """The two moving averages."""
        return (f"sma:{self.fast}", f"sma:{self.slow}")

    def needs_prediction(self) -> bool:
        """Always: the model confirms every trade."""
        return True

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Up-leg and a confident model buys; down-leg and a confident model sells."""
        fast, slow = np.asarray(frame.feature(self.fast_key)), np.asarray(frame.feature(self.slow_key))
        prob = prediction_of(frame)
        buy = (fast > slow) & (prob >= self.threshold)
        sell = (fast < slow) & (prob <= 1.0 - self.threshold)
        return buy, sell, {self.fast_key: fast, self.slow_key: slow, "prob_up": prob}

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """The direction and the model's agreement."""
        if side == BUY:
            return f"fast above slow and P(up) >= {self.threshold:g}"
        return f"fast below slow and P(up) <= {1.0 - self.threshold:g}"
