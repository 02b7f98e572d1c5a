"""The five rules beside sma_cross: hand-made series with their signals written out, and batching."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.feature.indicators import IndicatorSet
from actors.strategy.bollinger_breakout import BollingerBreakout
from actors.strategy.ma_model import MaModel
from actors.strategy.macd_rsi import MacdRsi
from actors.strategy.registry import STRATEGIES, make_spec
from actors.strategy.rsi_trend import RsiTrend
from actors.strategy.sr_breakout import SrBreakout
from messages.market import BarFrame, readonly
from messages.trading import BUY, SELL
from tests.helpers import FilledAtOnce

pytestmark = pytest.mark.timeout(60)

H = 3_600_000_000_000
NAN = math.nan


def frame_of(close: list[float], features: dict[str, list[float]] | None = None,
             prediction: list[float] | None = None, spread: float = 0.0) -> BarFrame:
    """A frame with these closes (high/low ``spread`` around them) and feature columns."""
    n = len(close)
    c = np.asarray(close, dtype=float)
    frame = BarFrame.from_columns("BTCUSD", "1h", ts=[(i + 1) * H for i in range(n)], open=c, high=c + spread,
                                  low=c - spread, close=c, volume=np.ones(n))
    return dataclasses.replace(
        frame,
        features=tuple((k, readonly(np.asarray(v, dtype=float))) for k, v in (features or {}).items()),
        prediction=None if prediction is None else readonly(np.asarray(prediction, dtype=float)),
    )


def bars(column: np.ndarray, value: int) -> list[int]:
    return np.flatnonzero(column == value).tolist()


# ---------------------------------------------------------------------------------------------
# macd_rsi


def macd_frame(hist: list[float], rsi: list[float]) -> BarFrame:
    n = len(hist)
    return frame_of([100.0] * n, {"macd_12_26_9": [1.0] * n, "macd_signal_12_26_9": [1.0 - h for h in hist],
                                  "macd_hist_12_26_9": hist, "rsi_14": rsi})


def test_macd_rsi_buys_a_cross_up_under_the_rsi_ceiling_and_sells_a_cross_down_or_an_rsi_peak() -> None:
    hist = [-1.0, 1.0, 2.0, -1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0]
    rsi = [50.0, 60.0, 65.0, 55.0, 72.0, 60.0, 85.0, 40.0, 69.9, 81.0, 50.0]
    # 1: cross up, RSI 60 < 70: buy.  3: cross down: sell.  4: cross up but RSI 72: no buy.
    # 6: RSI 85 while flat: nothing.  7: cross down while flat: nothing.  8: cross up, RSI 69.9: buy.
    # 9: RSI 81 > 80 while long: sell.  10: no cross, so no new buy.
    rule = FilledAtOnce(MacdRsi())
    column, signals = rule.update(macd_frame(hist, rsi))
    assert bars(column, 1) == [1, 8] and bars(column, -1) == [3, 9]
    assert [(s.side, s.reason) for s in signals] == [
        (BUY, "MACD crossed above its signal with RSI below 70"), (SELL, "MACD crossed below its signal"),
        (BUY, "MACD crossed above its signal with RSI below 70"), (SELL, "RSI above 80")]
    assert dict(signals[0].inputs) == {"macd_12_26_9": 1.0, "macd_signal_12_26_9": 0.0, "macd_hist_12_26_9": 1.0,
                                       "prev_macd_hist_12_26_9": -1.0, "rsi_14": 60.0}
    assert not rule.long


def test_macd_rsi_cross_down_with_rsi_peak_names_both() -> None:
    _, signals = FilledAtOnce(MacdRsi()).update(macd_frame([-1.0, 1.0, -1.0], [50.0, 50.0, 90.0]))
    assert signals[-1].reason == "MACD crossed below its signal and RSI above 80"


def test_macd_rsi_tie_is_not_a_cross() -> None:
    column, _ = FilledAtOnce(MacdRsi()).update(macd_frame([-1.0, 0.0, 1.0], [50.0, 50.0, 50.0]))
    assert not column.any()


# ---------------------------------------------------------------------------------------------
# rsi_trend


def test_rsi_trend_buys_oversold_above_the_trend_and_sells_overbought_or_below_it() -> None:
    close = [100.0, 102.0, 103.0, 104.0, 104.0, 100.0, 102.0, 102.0]
    trend = [101.0] * 8
    rsi = [20.0, 25.0, 50.0, 75.0, 28.0, 40.0, 30.0, 10.0]
    # 0: oversold but below the trend: ignored.  1: buy.  3: RSI 75 > 70: sell.  4: buy.
    # 5: close 100 < 101: sell.  6: RSI exactly 30 is not below 30.  7: buy.
    rule = FilledAtOnce(RsiTrend(trend=50))
    column, signals = rule.update(frame_of(close, {"rsi_14": rsi, "sma_50": trend}))
    assert bars(column, 1) == [1, 4, 7] and bars(column, -1) == [3, 5]
    assert [s.reason for s in signals[1:4]] == [
        "RSI above 70", "RSI below 30 while close is above SMA 50", "close below SMA 50"]
    assert dict(signals[0].inputs) == {"close": 102.0, "rsi_14": 25.0, "sma_50": 101.0}
    assert rule.long


# ---------------------------------------------------------------------------------------------
# bollinger_breakout


def test_bollinger_breakout_buys_above_the_upper_band_and_sells_below_the_middle() -> None:
    close = [105.0, 101.0, 105.0, 106.0, 101.0, 104.0, 104.5]
    up = [NAN, 104.0, 104.0, 107.0, 106.0, 104.0, 104.0]
    mid = [NAN, 100.0, 101.0, 102.0, 102.0, 101.0, 101.0]
    # 0: warm-up.  2: 105 > 104: buy.  3: below the upper band but above the middle: hold.
    # 4: 101 < 102: sell.  5: 104 == upper: no buy.  6: 104.5 > 104: buy.
    features = {"bb_up_20_2.5": up, "bb_mid_20_2.5": mid, "bb_low_20_2.5": [98.0] * 7,
                "bb_pctb_20_2.5": [0.5] * 7, "bb_width_20_2.5": [0.1] * 7}
    rule = FilledAtOnce(BollingerBreakout(20, 2.5))
    assert rule.required_features() == ("bb:20:2.5",)
    column, signals = rule.update(frame_of(close, features))
    assert bars(column, 1) == [2, 6] and bars(column, -1) == [4]
    assert [s.reason for s in signals[:2]] == ["close above the upper band (2.5 std over 20)",
                                               "close below the middle band (SMA 20)"]
    assert dict(signals[0].inputs)["bb_up_20_2.5"] == 104.0


def test_bollinger_k_is_written_as_the_indicator_spells_it() -> None:
    assert BollingerBreakout(20, 2.0).required_features() == ("bb:20:2",)
    assert BollingerBreakout(20, 0.00001).required_features() == ("bb:20:0.00001",)


# ---------------------------------------------------------------------------------------------
# sr_breakout


def test_sr_breakout_on_real_rolling_highs_and_lows_of_the_previous_bars() -> None:
    close = [10.0, 11.0, 12.0, 11.0, 13.0, 12.0, 10.0, 9.0, 11.0, 14.0]
    frame = frame_of(close, spread=0.5)
    rule = FilledAtOnce(SrBreakout(period=3, exit_period=2))
    frame = dataclasses.replace(frame, features=IndicatorSet(rule.required_features()).update(frame))
    assert np.array_equal(frame.feature("hh_3"), [NAN, NAN, 12.5, 12.5, 13.5, 13.5, 13.5, 12.5, 11.5, 14.5],
                          equal_nan=True)
    assert np.array_equal(frame.feature("ll_2"), [NAN, 9.5, 10.5, 10.5, 10.5, 11.5, 9.5, 8.5, 8.5, 10.5],
                          equal_nan=True)
    # resistance = hh_3 one bar earlier, support = ll_2 one bar earlier:
    # 4: 13 > 12.5: buy.  6: 10 < 11.5: sell.  9: 14 > 11.5: buy.
    column, signals = rule.update(frame)
    assert bars(column, 1) == [4, 9] and bars(column, -1) == [6]
    assert dict(signals[0].inputs) == {"close": 13.0, "resistance": 12.5, "support": 10.5}
    assert signals[1].reason == "close below the lowest low of the last 2 bars"


def test_sr_breakout_carries_the_previous_bar_between_frames() -> None:
    rule = FilledAtOnce(SrBreakout(period=3, exit_period=2))
    first = frame_of([10.0, 11.0, 12.0], {"hh_3": [NAN, NAN, 12.5], "ll_2": [NAN, 9.5, 10.5]})
    assert rule.update(first)[1] == []
    column, (signal,) = rule.update(frame_of([13.0], {"hh_3": [13.5], "ll_2": [12.5]}))
    assert column.tolist() == [1] and dict(signal.inputs)["resistance"] == 12.5


# ---------------------------------------------------------------------------------------------
# ma_model


def test_ma_model_acts_in_the_mas_direction_only_when_the_model_agrees() -> None:
    diff = [-1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 0.0, 1.0]
    prob = [0.9, 0.5, 0.65, 0.1, 0.45, 0.3, NAN, 0.9, 0.6]
    # 1: up but P 0.5 < 0.6.  2: P 0.65: buy.  3: P 0.1 but fast > slow: hold.
    # 4: down, P 0.45 > 0.4: hold.  5: P 0.3 <= 0.4: sell.  6: no prediction.  7: tie.  8: P 0.6: buy.
    rule = FilledAtOnce(MaModel(threshold=0.6))
    assert rule.needs_prediction()
    frame = frame_of([100.0] * 9, {"sma_10": [100.0 + d for d in diff], "sma_30": [100.0] * 9}, prediction=prob)
    column, signals = rule.update(frame)
    assert bars(column, 1) == [2, 8] and bars(column, -1) == [5]
    assert [s.reason for s in signals] == ["fast above slow and P(up) >= 0.6", "fast below slow and P(up) <= 0.4",
                                           "fast above slow and P(up) >= 0.6"]
    assert dict(signals[0].inputs) == {"sma_10": 101.0, "sma_30": 100.0, "prob_up": 0.65}


def test_ma_model_without_predictions_never_trades() -> None:
    frame = frame_of([100.0] * 3, {"sma_10": [99.0, 101.0, 102.0], "sma_30": [100.0] * 3})
    column, signals = FilledAtOnce(MaModel()).update(frame)
    assert signals == [] and not column.any()


# ---------------------------------------------------------------------------------------------
# every rule: batching, alternation, what it reads


def random_frame(seed: int, n: int, spec_features: tuple[str, ...]) -> BarFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    frame = BarFrame.from_columns("BTCUSD", "1h", ts=np.arange(1, n + 1) * H, open=close, high=close * 1.01,
                                  low=close * 0.99, close=close, volume=np.ones(n))
    return dataclasses.replace(frame, features=IndicatorSet(spec_features).update(frame),
                               prediction=readonly(rng.uniform(0.2, 0.8, n)))


SMALL = {
    "sma_cross": {"fast": 2, "slow": 5, "min_prob": 0.5}, "macd_rsi": {"fast": 3, "slow": 6, "signal": 2, "rsi": 3},
    "rsi_trend": {"rsi": 3, "trend": 8, "oversold": 40.0, "overbought": 60.0},
    "bollinger_breakout": {"period": 5, "k": 1.0}, "sr_breakout": {"period": 4, "exit_period": 2},
    "ma_model": {"fast": 2, "slow": 5, "threshold": 0.55},
}


def test_small_parameters_cover_every_strategy() -> None:
    assert set(SMALL) == set(STRATEGIES)


@pytest.mark.parametrize("name", list(SMALL))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), cuts=st.lists(st.integers(min_value=0, max_value=9), max_size=12))
def test_batch_and_bar_by_bar_give_the_same_signals(name: str, seed: int, cuts: list[int]) -> None:
    spec = make_spec(name, SMALL[name])
    frame = random_frame(seed, 120, spec.features)
    whole = FilledAtOnce(spec.build())
    whole_column, whole_signals = whole.update(frame)
    parts = FilledAtOnce(spec.build())
    columns, signals, start = [], [], 0
    for size in [*cuts, *([1] * len(frame))]:
        stop = min(start + size, len(frame))
        column, new = parts.update(frame.slice(start, stop))
        columns.append(column)
        signals += new
        start = stop
    assert np.array_equal(np.concatenate(columns), whole_column)
    assert signals == whole_signals
    assert parts.long == whole.long
    assert [s.side for s in whole_signals] == [BUY if i % 2 == 0 else SELL for i in range(len(whole_signals))]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_defaults_trade_on_a_long_random_walk_and_every_input_is_explained(name: str) -> None:
    spec = make_spec(name)
    frame = random_frame(7, 3000, spec.features)
    column, signals = FilledAtOnce(spec.build()).update(frame)
    assert len(signals) >= 4, name
    assert len(signals) == np.count_nonzero(column)
    for signal in signals:
        assert signal.strategy == name and signal.reason
        assert signal.inputs and all(isinstance(v, float) for _, v in signal.inputs)
