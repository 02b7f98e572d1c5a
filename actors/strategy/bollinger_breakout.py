"""``bollinger_breakout``: buy a close above the upper Bollinger band, exit back at the middle.

mid, up = the ``bb:period:k`` middle (SMA) and upper (mid + k * population std) bands.
At bar t's close: buy while flat when close[t] > up[t]; sell while long when close[t] < mid[t].
Long only. Both are levels, not crosses: the first close beyond the band while flat buys.
"""

from __future__ import annotations

import math

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, period_ok, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["BollingerBreakout", "number_text"]


def number_text(value: float) -> str:
    """Write a positive number as an indicator spec does: ``2.0`` -> ``"2"``, ``2.5`` -> ``"2.5"``."""
    return np.format_float_positional(value, trim="-")


class BollingerBreakout(Strategy):
    """Volatility breakout: a close above the upper band buys; a close below the middle band sells."""

    name = "bollinger_breakout"

    params = {"period": 20, "k": 2.0}

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        suffix = f"{self.period}_{number_text(self.k)}"
        self.keys = (f"bb_up_{suffix}", f"bb_mid_{suffix}", f"bb_low_{suffix}", f"bb_pctb_{suffix}", f"bb_width_{suffix}")

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(period_ok(self.period), f"period ({self.period}) must be >= 1")
        require(math.isfinite(self.k) and self.k > 0.0, f"k ({self.k:g}) must be a positive number")

    def required_features(self) -> tuple[str, ...]:
        """The Bollinger bands."""
        return (f"bb:{self.period}:{number_text(self.k)}",)

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Close above the upper band buys; close below the middle band sells."""
        close = np.asarray(frame.close)
        up, mid, low, pctb, width = (np.asarray(frame.feature(key)) for key in self.keys)
        inputs = {"close": close, self.keys[0]: up, self.keys[1]: mid, self.keys[2]: low, self.keys[3]: pctb,
                  self.keys[4]: width}
        return close > up, close < mid, inputs

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Which band was crossed."""
        if side == BUY:
            return f"close above the upper band ({self.k:g} std over {self.period})"
        return f"close below the middle band (SMA {self.period})"
