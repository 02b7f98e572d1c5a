"""``rsi_trend``: RSI pullbacks bought only in the direction of a long moving average.

r = RSI(rsi), m = SMA(close, trend). At bar t's close:
buy while flat when close[t] > m[t] (uptrend) and r[t] < ``oversold`` (a pullback);
sell while long when r[t] > ``overbought`` (the bounce is done) or close[t] < m[t] (the trend broke).
Long only: in a downtrend (close <= m) RSI buy signals are ignored.
"""

from __future__ import annotations

import numpy as np

from actors.strategy.api import ParamValue, Strategy
from actors.strategy.base import Evaluation, period_ok, require
from messages.market import BarFrame
from messages.trading import BUY

__all__ = ["RsiTrend"]


class RsiTrend(Strategy):
    """Buy oversold RSI above the trend average; sell overbought RSI or a close below the average."""

    name = "rsi_trend"

    params = {"rsi": 14, "trend": 200, "oversold": 30.0, "overbought": 70.0}

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        super().__init__(*args, **values)
        self.rsi_key, self.trend_key = f"rsi_{self.rsi}", f"sma_{self.trend}"

    def check(self) -> None:
        """Refuse a bad combination of parameters."""
        require(period_ok(self.rsi) and period_ok(self.trend), "periods rsi and trend must be >= 1")
        require(0.0 <= self.oversold < self.overbought <= 100.0,
                f"need 0 <= oversold ({self.oversold:g}) < overbought ({self.overbought:g}) <= 100")

    def required_features(self) -> tuple[str, ...]:
        """The RSI and the trend average."""
        return (f"rsi:{self.rsi}", f"sma:{self.trend}")

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Oversold in an uptrend buys; overbought or below the trend sells."""
        close = np.asarray(frame.close)
        rsi, trend = np.asarray(frame.feature(self.rsi_key)), np.asarray(frame.feature(self.trend_key))
        buy = (close > trend) & (rsi < self.oversold)
        sell = (rsi > self.overbought) | (close < trend)
        return buy, sell, {"close": close, self.rsi_key: rsi, self.trend_key: trend}

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Which condition fired."""
        if side == BUY:
            return f"RSI below {self.oversold:g} while close is above SMA {self.trend}"
        parts = []
        if inputs[self.rsi_key][i] > self.overbought:
            parts.append(f"RSI above {self.overbought:g}")
        if inputs["close"][i] < inputs[self.trend_key][i]:
            parts.append(f"close below SMA {self.trend}")
        return " and ".join(parts)
