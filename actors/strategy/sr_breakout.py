"""``sr_breakout``: support/resistance breakout on rolling highs and lows (Donchian channel).

resistance[t] = highest high of bars t-period..t-1 (``hh:period`` at the previous bar);
support[t] = lowest low of bars t-exit_period..t-1 (``ll:exit_period`` at the previous bar).
Both exclude bar t itself, so a close can go beyond them. At bar t's close:
buy while flat when close[t] > resistance[t]; sell while long when close[t] < support[t].
Long only.
"""

from __future__ import annotations

import math

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, last, period_ok, previous, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["SrBreakout"]


class SrBreakout(Strategy):
    """A close above the last ``period`` bars' high buys; a close below the last ``exit_period`` bars' low sells."""

    name = "sr_breakout"

    params = {"period": 20, "exit_period": 10}

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        self.high_key, self.low_key = f"hh_{self.period}", f"ll_{self.exit_period}"
        self._prev_high = math.nan
        self._prev_low = math.nan

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(period_ok(self.period), f"period ({self.period}) must be >= 1")
        require(period_ok(self.exit_period), f"exit_period ({self.exit_period}) must be >= 1")

    def required_features(self) -> tuple[str, ...]:
        """The rolling high and the rolling low."""
        return (f"hh:{self.period}", f"ll:{self.exit_period}")

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Close beyond the previous bar's rolling high (buy) or low (sell)."""
        close = np.asarray(frame.close)
        high, low = np.asarray(frame.feature(self.high_key)), np.asarray(frame.feature(self.low_key))
        resistance, support = previous(high, self._prev_high), previous(low, self._prev_low)
        self._prev_high, self._prev_low = last(high, self._prev_high), last(low, self._prev_low)
        inputs = {"close": close, "resistance": resistance, "support": support}
        return close > resistance, close < support, inputs

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Which level broke."""
        if side == BUY:
            return f"close above the highest high of the last {self.period} bars"
        return f"close below the lowest low of the last {self.exit_period} bars"
