"""``macd_rsi``: a MACD cross confirmed by RSI.

h = MACD line - signal line (``macd_hist_F_S_G`` of ``macd:fast:slow:signal``), r = RSI(rsi).
At bar t's close:
cross up = h[t] > 0 and h[t-1] < 0; cross down = h[t] < 0 and h[t-1] > 0 (a tie is not a side).
Buy while flat: cross up and r[t] < ``buy_below`` (momentum turns up, not yet overbought).
Sell while long: cross down, or r[t] > ``sell_above`` (take profit when overbought). Long only.
"""

from __future__ import annotations

import math

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, crossed_above, crossed_below, last, period_ok, previous, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["MacdRsi"]


class MacdRsi(Strategy):
    """MACD line crossing its signal line, bought only below an RSI ceiling, sold on the reverse cross or RSI peak."""

    name = "macd_rsi"

    params = {"fast": 12, "slow": 26, "signal": 9, "rsi": 14, "buy_below": 70.0, "sell_above": 80.0}

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        suffix = f"{self.fast}_{self.slow}_{self.signal}"
        self.keys = (f"macd_{suffix}", f"macd_signal_{suffix}", f"macd_hist_{suffix}", f"rsi_{self.rsi}")
        self._prev_hist = math.nan

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(all(period_ok(p) for p in (self.fast, self.slow, self.signal, self.rsi)),
                "periods fast, slow, signal and rsi must be >= 1")
        require(self.fast < self.slow, f"fast ({self.fast}) must be less than slow ({self.slow})")
        require(0.0 < self.buy_below <= 100.0, f"buy_below ({self.buy_below:g}) must be in (0, 100]")
        require(0.0 < self.sell_above <= 100.0, f"sell_above ({self.sell_above:g}) must be in (0, 100]")

    def required_features(self) -> tuple[str, ...]:
        """The MACD and the RSI."""
        return (f"macd:{self.fast}:{self.slow}:{self.signal}", f"rsi:{self.rsi}")

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Cross up under the RSI ceiling buys; cross down or RSI above ``sell_above`` sells."""
        line, sig, hist, rsi = (np.asarray(frame.feature(key)) for key in self.keys)
        prev = previous(hist, self._prev_hist)
        self._prev_hist = last(hist, self._prev_hist)
        buy = crossed_above(hist, prev) & (rsi < self.buy_below)
        sell = crossed_below(hist, prev) | (rsi > self.sell_above)
        inputs = {self.keys[0]: line, self.keys[1]: sig, self.keys[2]: hist, "prev_" + self.keys[2]: prev,
                  self.keys[3]: rsi}
        return buy, sell, inputs

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Which condition fired."""
        if side == BUY:
            return f"MACD crossed above its signal with RSI below {self.buy_below:g}"
        hist, prev, rsi = inputs[self.keys[2]][i], inputs["prev_" + self.keys[2]][i], inputs[self.keys[3]][i]
        parts = []
        if hist < 0 < prev:
            parts.append("MACD crossed below its signal")
        if rsi > self.sell_above:
            parts.append(f"RSI above {self.sell_above:g}")
        return " and ".join(parts)
