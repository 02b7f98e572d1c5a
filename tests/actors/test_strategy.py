"""The sma_cross rule: crosses, position state, the tie rule, probability gating, batching."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.feature.indicators import SMA
from actors.strategy.sma_cross import SmaCross
from messages.market import BarFrame, readonly
from messages.trading import BUY, SELL
from tests.helpers import FilledAtOnce

H = 3_600_000_000_000
NAN = math.nan


def frame_with(fast: list[float], slow: list[float], close: list[float] | None = None,
               prediction: list[float] | None = None, first: int = 0) -> BarFrame:
    n = len(fast)
    close = close if close is not None else [100.0 + i for i in range(n)]
    frame = BarFrame.from_columns("BTCUSD", "1h", ts=[(first + i + 1) * H for i in range(n)], open=close,
                                  high=close, low=close, close=close, volume=[1.0] * n)
    return dataclasses.replace(
        frame,
        features=(("sma_2", readonly(np.array(fast, dtype=float))), ("sma_4", readonly(np.array(slow, dtype=float)))),
        prediction=None if prediction is None else readonly(np.array(prediction, dtype=float)),
    )


def diff_frame(diff: list[float], prediction: list[float] | None = None, first: int = 0) -> BarFrame:
    """A frame whose fast - slow equals ``diff`` (slow fixed at 100)."""
    return frame_with([100.0 + d for d in diff], [100.0] * len(diff), prediction=prediction, first=first)


def sma(period: int, close: list[float] | np.ndarray) -> np.ndarray:
    close = np.asarray(close, dtype=np.float64)
    return SMA(period).update(close, close, close)[0]


def indices(column: np.ndarray, value: int) -> list[int]:
    return np.flatnonzero(column == value).tolist()


def test_hand_made_closes_buy_and_sell_at_the_crosses() -> None:
    close = [5.0, 4.0, 3.0, 2.0, 3.0, 6.0, 7.0, 6.0, 3.0, 2.0, 4.0, 8.0]
    sma2 = [NAN, 4.5, 3.5, 2.5, 2.5, 4.5, 6.5, 6.5, 4.5, 2.5, 3.0, 6.0]
    sma4 = [NAN, NAN, NAN, 3.5, 3.0, 3.5, 4.5, 5.5, 5.5, 4.5, 3.75, 4.25]
    # fast - slow from bar 3:  -1, -0.5, +1, +2, +1, -1, -2, -0.75, +1.75
    # up at 5 (flat: buy), down at 8 (long: sell), up at 11 (flat: buy)
    assert np.array_equal(sma(2, close), sma2, equal_nan=True)
    assert np.array_equal(sma(4, close), sma4, equal_nan=True)
    rule = FilledAtOnce(SmaCross(2, 4))
    column, signals = rule.update(frame_with(sma2, sma4, close))
    assert indices(column, 1) == [5, 11]
    assert indices(column, -1) == [8]
    assert [(s.side, s.ts, s.price) for s in signals] == [(BUY, 6 * H, 6.0), (SELL, 9 * H, 3.0), (BUY, 12 * H, 8.0)]
    assert rule.long
    candidates = SmaCross(2, 4).decider(frame_with(sma2, sma4, close))  # shared between threads: immutable
    assert candidates.buy == (5, 11) and candidates.sell == (8,)


def test_signal_records_its_inputs_and_reason() -> None:
    _, (signal,) = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([-1.0, 2.0]))
    assert (signal.strategy, signal.symbol, signal.timeframe) == ("sma_cross", "BTCUSD", "1h")
    assert signal.reason == "fast crossed above slow"
    name_values = dict(signal.inputs)
    assert name_values["sma_2"] == 102.0 and name_values["sma_4"] == 100.0 and name_values["min_prob"] == 0.0
    assert math.isnan(name_values["prob_up"])  # no model prediction on the frame


def test_cross_down_while_flat_is_not_a_sell() -> None:
    column, signals = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([1.0, -1.0, -2.0, 1.0]))
    assert indices(column, -1) == [] and indices(column, 1) == [3]
    assert [s.side for s in signals] == [BUY]


def test_no_second_buy_while_long() -> None:
    # up at 1 (buy); tie at 2 and -1 at 3 are no cross down; up again at 4 while long; down at 5 (sell)
    column, signals = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([-1.0, 1.0, 0.0, -1.0, 1.0, -1.0]))
    assert indices(column, 1) == [1]
    assert indices(column, -1) == [5]
    assert [s.side for s in signals] == [BUY, SELL]


def test_tie_on_the_previous_bar_means_no_cross() -> None:
    column, signals = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([-1.0, 0.0, 1.0, 2.0]))
    assert signals == [] and not column.any()


def test_tie_on_the_current_bar_is_not_a_cross() -> None:
    column, _ = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([-1.0, 0.0]))
    assert not column.any()


def test_tie_before_a_cross_down_means_no_sell() -> None:
    column, _ = FilledAtOnce(SmaCross(2, 4)).update(diff_frame([-1.0, 1.0, 0.0, -1.0]))
    assert indices(column, 1) == [1] and indices(column, -1) == []


def test_warm_up_nans_are_never_a_cross() -> None:
    column, _ = FilledAtOnce(SmaCross(2, 4)).update(frame_with([NAN, 1.0, 2.0, 3.0], [NAN, NAN, NAN, 1.0]))
    assert not column.any()


def test_buy_below_min_prob_is_blocked() -> None:
    rule = FilledAtOnce(SmaCross(2, 4, min_prob=0.55))
    column, signals = rule.update(diff_frame([-1.0, 1.0, -1.0], prediction=[0.9, 0.54, 0.9]))
    assert signals == [] and not column.any() and not rule.long  # blocked buy: no later sell either


def test_buy_at_or_above_min_prob_goes_through() -> None:
    rule = FilledAtOnce(SmaCross(2, 4, min_prob=0.55))
    column, (signal,) = rule.update(diff_frame([-1.0, 1.0], prediction=[0.1, 0.55]))
    assert indices(column, 1) == [1]
    assert dict(signal.inputs)["prob_up"] == 0.55 and dict(signal.inputs)["min_prob"] == 0.55


def test_missing_prediction_blocks_buys_when_min_prob_is_set() -> None:
    assert FilledAtOnce(SmaCross(2, 4, min_prob=0.5)).update(diff_frame([-1.0, 1.0]))[1] == []
    assert FilledAtOnce(SmaCross(2, 4, min_prob=0.5)).update(diff_frame([-1.0, 1.0], prediction=[NAN, NAN]))[1] == []


def test_min_prob_does_not_gate_sells() -> None:
    rule = FilledAtOnce(SmaCross(2, 4, min_prob=0.6))
    _, signals = rule.update(diff_frame([-1.0, 1.0, -1.0], prediction=[0.5, 0.7, 0.01]))
    assert [s.side for s in signals] == [BUY, SELL]


def test_cross_between_two_frames_is_detected() -> None:
    rule = FilledAtOnce(SmaCross(2, 4))
    assert rule.update(diff_frame([-2.0, -1.0]))[1] == []
    column, (signal,) = rule.update(diff_frame([1.0, 2.0], first=2))
    assert indices(column, 1) == [0] and signal.ts == 3 * H


def test_empty_frame_keeps_the_previous_bar() -> None:
    rule = FilledAtOnce(SmaCross(2, 4))
    rule.update(diff_frame([-1.0]))
    column, signals = rule.update(diff_frame([]))
    assert len(column) == 0 and signals == []
    assert [s.side for s in rule.update(diff_frame([1.0], first=1))[1]] == [BUY]


def test_required_features_are_the_two_smas() -> None:
    assert SmaCross(3, 7).required_features() == ("sma:3", "sma:7")


_DIFFS = st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, NAN]), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(_DIFFS, st.lists(st.integers(min_value=0, max_value=10), max_size=8), st.sampled_from([0.0, 0.5]),
       st.integers(min_value=0, max_value=2**32))
def test_batch_and_incremental_give_the_same_signals(diff: list[float], cuts: list[int], min_prob: float,
                                                      seed: int) -> None:
    prediction = np.random.default_rng(seed).uniform(0.0, 1.0, len(diff)).tolist()
    whole = FilledAtOnce(SmaCross(2, 4, min_prob))
    whole_column, whole_signals = whole.update(diff_frame(diff, prediction))
    parts = FilledAtOnce(SmaCross(2, 4, min_prob))
    frame = diff_frame(diff, prediction)
    columns, signals, start = [], [], 0
    for size in [*cuts, len(diff)]:
        stop = min(start + size, len(diff))
        column, new = parts.update(frame.slice(start, stop))
        columns.append(column)
        signals += new
        start = stop
    assert np.array_equal(np.concatenate(columns), whole_column)
    assert [(s.ts, s.side) for s in signals] == [(s.ts, s.side) for s in whole_signals]
    assert parts.long == whole.long
    # signals alternate buy, sell, buy, ... starting with a buy
    assert [s.side for s in whole_signals] == [BUY if i % 2 == 0 else SELL for i in range(len(whole_signals))]


@settings(max_examples=200, deadline=None)
@given(_DIFFS, st.sampled_from([0.0, 0.5]), st.booleans(), st.booleans(), st.integers(min_value=0, max_value=2**32))
def test_update_equals_the_rule_applied_bar_by_bar(diff: list[float], min_prob: float, long: bool,
                                                   with_prediction: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    prediction = rng.uniform(0.0, 1.0, len(diff)).tolist() if with_prediction else None
    rule = FilledAtOnce(SmaCross(2, 4, min_prob))
    rule.long = long
    column, signals = rule.update(diff_frame(diff, prediction))
    expected, previous = [], NAN  # the rule as written in the module docstring, one bar at a time
    for i, d in enumerate(diff):
        prob = NAN if prediction is None else prediction[i]
        if d > 0 and previous < 0 and not long and (min_prob == 0 or prob >= min_prob):
            long = True
            expected.append((i, BUY, "fast crossed above slow", prob))
        elif d < 0 and previous > 0 and long:
            long = False
            expected.append((i, SELL, "fast crossed below slow", prob))
        previous = d
    assert [(i, side) for i, side, _, _ in expected] == [(i, BUY if v > 0 else SELL) for i in np.flatnonzero(column)
                                                         for v in [column[i]]]
    assert rule.long == long
    assert [(s.ts, s.side, s.reason, s.price) for s in signals] == [((i + 1) * H, side, reason, 100.0 + i)
                                                                    for i, side, reason, _ in expected]
    for signal, (i, _, _, prob) in zip(signals, expected, strict=True):
        inputs = dict(signal.inputs)
        assert inputs["sma_2"] == 100.0 + diff[i] and inputs["sma_4"] == 100.0 and inputs["min_prob"] == min_prob
        assert inputs["prob_up"] == prob or (math.isnan(prob) and math.isnan(inputs["prob_up"]))


@pytest.mark.parametrize(("fast", "slow"), [(2, 4), (10, 30)])
def test_signals_on_a_random_walk_alternate_and_match_a_vectorised_reference(fast: int, slow: int) -> None:
    rng = np.random.default_rng(fast * 100 + slow)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 2000)))
    f, s = sma(fast, close), sma(slow, close)
    frame = dataclasses.replace(frame_with(f.tolist(), s.tolist(), close.tolist()),
                                features=((f"sma_{fast}", readonly(f)), (f"sma_{slow}", readonly(s))))
    column, signals = FilledAtOnce(SmaCross(fast, slow)).update(frame)
    d = f - s
    up = np.flatnonzero((d[1:] > 0) & (d[:-1] < 0)) + 1
    down = np.flatnonzero((d[1:] < 0) & (d[:-1] > 0)) + 1
    expected, long = {}, False  # long-only state machine over the crosses in time order
    for i in sorted([*up.tolist(), *down.tolist()]):
        if i in set(up.tolist()) and not long:
            expected[i], long = 1, True
        elif i in set(down.tolist()) and long:
            expected[i], long = -1, False
    assert {i: int(column[i]) for i in np.flatnonzero(column)} == expected
    assert len(signals) == len(expected) > 10
