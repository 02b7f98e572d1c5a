"""Market data messages: timeframes, ticks, bars, and the read-only BarFrame."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from messages.market import Bar, BarFrame, Tick, frame_from_bars, readonly, timeframe_ns
from messages.trading import Candidates

H = 3_600_000_000_000


@pytest.mark.parametrize(("timeframe", "ns"), [
    ("1s", 1_000_000_000), ("1m", 60_000_000_000), ("5m", 300_000_000_000), ("1h", 3_600_000_000_000),
    ("4h", 14_400_000_000_000), ("1d", 86_400_000_000_000), ("90s", 90_000_000_000),
])
def test_timeframe_length_in_nanoseconds(timeframe: str, ns: int) -> None:
    assert timeframe_ns(timeframe) == ns


@pytest.mark.parametrize("timeframe", ["", "m", "0m", "1x", "-1m", "1.5m", "1 m", "m1", "1M", "00h", "1"])
def test_malformed_timeframe_is_a_value_error(timeframe: str) -> None:
    with pytest.raises(ValueError, match="bad timeframe"):
        timeframe_ns(timeframe)


def test_timeframe_that_is_not_a_string_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad timeframe"):
        timeframe_ns(60)  # type: ignore[arg-type]


def test_tick_has_quote_only_when_bid_is_a_number() -> None:
    assert Tick("X", 1, 1.0, 2.0, 1.5).has_quote
    assert not Tick("X", 1, math.nan, math.nan, 1.5).has_quote


def test_messages_are_frozen() -> None:
    bar = Bar("X", 1, "1m", 1.0, 1.0, 1.0, 1.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bar.close = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):  # Tick is an immutable NamedTuple (built per tick, so cheaper)
        Tick("X", 1, 1.0, 1.0, 1.0).last = 2.0  # type: ignore[misc]


def _frame(n: int = 5) -> BarFrame:
    close = [100.0 + i for i in range(n)]
    return BarFrame.from_columns(
        "BTCUSD", "1h", ts=[(i + 1) * H for i in range(n)], open=[c - 0.5 for c in close],
        high=[c + 1 for c in close], low=[c - 1 for c in close], close=close, volume=[float(i) for i in range(n)],
    )


def test_frame_columns_are_read_only() -> None:
    frame = _frame()
    for name in ("ts", "open", "high", "low", "close", "volume"):
        column = getattr(frame, name)
        assert not column.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            column[0] = 1


def test_frame_columns_have_fixed_dtypes() -> None:
    frame = _frame()
    assert frame.ts.dtype == np.int64
    assert all(getattr(frame, n).dtype == np.float64 for n in ("open", "high", "low", "close", "volume"))


def test_from_columns_copies_its_inputs() -> None:
    close = np.array([1.0, 2.0, 3.0])
    frame = BarFrame.from_columns("X", "1m", ts=[1, 2, 3], open=close, high=close, low=close, close=close,
                                  volume=np.zeros(3))
    close[0] = 99.0
    assert frame.close[0] == 1.0
    assert close.flags.writeable  # the caller's array is untouched


def test_frame_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _frame().symbol = "ETHUSD"  # type: ignore[misc]


def test_readonly_marks_an_array_read_only_and_returns_it() -> None:
    array = np.arange(3)
    assert readonly(array) is array and not array.flags.writeable


def test_frame_from_bars_builds_the_columns_in_order() -> None:
    bars = [Bar("ETHUSD", (i + 1) * H, "1h", 10.0 + i, 12.0 + i, 9.0 + i, 11.0 + i, 2.0 * i) for i in range(4)]
    frame = frame_from_bars(bars)
    assert (frame.symbol, frame.timeframe, len(frame)) == ("ETHUSD", "1h", 4)
    assert frame.ts.tolist() == [H, 2 * H, 3 * H, 4 * H]
    assert frame.open.tolist() == [10.0, 11.0, 12.0, 13.0]
    assert frame.high.tolist() == [12.0, 13.0, 14.0, 15.0]
    assert frame.low.tolist() == [9.0, 10.0, 11.0, 12.0]
    assert frame.close.tolist() == [11.0, 12.0, 13.0, 14.0]
    assert frame.volume.tolist() == [0.0, 2.0, 4.0, 6.0]
    assert [frame.bar(i) for i in range(4)] == bars
    assert not frame.close.flags.writeable


def test_bar_accessor_returns_plain_python_types() -> None:
    bar = _frame().bar(2)
    assert type(bar.ts) is int and type(bar.close) is float


def test_slice_takes_bars_and_enrichment_and_stays_read_only() -> None:
    frame = dataclasses.replace(
        _frame(6), features=(("sma_2", readonly(np.arange(6, dtype=float))),),
        prediction=readonly(np.linspace(0.1, 0.6, 6)),
    )
    frame = dataclasses.replace(frame, decider=Candidates(
        "r", (), frame.symbol, frame.timeframe, frame.ts, frame.close, (1,), (4,),
        (("sma_2", frame.feature("sma_2")),), lambda side, i, inputs: side))
    part = frame.slice(2, 5)
    assert len(part) == 3
    assert part.ts.tolist() == [3 * H, 4 * H, 5 * H]
    assert part.close.tolist() == [102.0, 103.0, 104.0]
    assert part.feature("sma_2").tolist() == [2.0, 3.0, 4.0]
    assert part.prediction is not None and part.prediction.tolist() == pytest.approx([0.3, 0.4, 0.5])
    assert part.decider is not None and part.decider.buy == () and part.decider.sell == (2,)
    assert part.decider.decide(2, 1.0).ts == 5 * H and part.decider.first(0, 0.0) == 3  # no buy left: past the end
    for column in (part.ts, part.open, part.close, part.feature("sma_2"), part.prediction, part.decider.ts):
        assert not column.flags.writeable


def test_slice_without_enrichment_keeps_none() -> None:
    part = _frame().slice(0, 2)
    assert part.features == () and part.prediction is None and part.decider is None


def test_missing_feature_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="sma_10"):
        _frame().feature("sma_10")
