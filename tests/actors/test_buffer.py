"""Tick-to-bar aggregation (BarAggregator) and rolling windows (BarWindow)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.buffer.bars import BarAggregator, BarWindow
from messages.market import Bar, BarFrame, Tick

S = 1_000_000_000
M = 60 * S
T10 = pd.Timestamp("2024-01-01T10:00:00Z").value  # 10:00:00 in ns


def at(hhmmss: str) -> int:
    return pd.Timestamp(f"2024-01-01T{hhmmss}Z").value


def tk(ts: int, price: float, volume: float = 1.0, symbol: str = "BTCUSD") -> Tick:
    return Tick(symbol, ts, math.nan, math.nan, price, volume)


def test_bar_is_labelled_with_its_close_time() -> None:
    agg = BarAggregator("1m")
    assert agg.add([tk(at("10:00:30"), 100.0)]) == []
    (bar,) = agg.add([tk(at("10:01:05"), 101.0)])
    assert bar.ts == at("10:01:00")


def test_tick_exactly_on_a_boundary_opens_the_next_bar() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:00:59.999999999"), 100.0, 1.0)])
    (first,) = agg.add([tk(at("10:01:00"), 200.0, 2.0)])
    assert (first.ts, first.close, first.volume) == (at("10:01:00"), 100.0, 1.0)
    (second,) = agg.add([tk(at("10:02:00"), 300.0)])
    assert (second.ts, second.open, second.close, second.volume) == (at("10:02:00"), 200.0, 200.0, 2.0)


def test_bar_has_open_high_low_close_and_summed_volume() -> None:
    agg = BarAggregator("1m")
    ticks = [tk(T10 + 1 * S, 100.0, 1.0), tk(T10 + 10 * S, 102.0, 2.0), tk(T10 + 20 * S, 99.0, 3.0),
             tk(T10 + 59 * S, 101.0, 4.0)]
    assert agg.add(ticks) == []
    closed = agg.add([tk(T10 + M + 1, 500.0)])
    assert closed == [Bar("BTCUSD", T10 + M, "1m", 100.0, 102.0, 99.0, 101.0, 10.0)]


def test_falling_then_rising_prices_track_both_extremes() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(T10, p) for p in (10.0, 8.0, 7.0, 12.0, 9.0)])
    (bar,) = agg.add([tk(T10 + M, 1.0)])
    assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 12.0, 7.0, 9.0)


def test_bar_is_emitted_only_when_a_later_bars_tick_arrives() -> None:
    agg = BarAggregator("1m")
    for k in range(60):
        assert agg.add([tk(T10 + k * S, 100.0 + k)]) == []
    assert len(agg.add([tk(T10 + M, 1.0)])) == 1


def test_bars_closed_by_one_batch_are_returned_in_order() -> None:
    agg = BarAggregator("1m")
    closed = agg.add([tk(T10 + k * M, 100.0 + k) for k in range(4)])
    assert [b.ts for b in closed] == [T10 + M, T10 + 2 * M, T10 + 3 * M]
    assert [b.close for b in closed] == [100.0, 101.0, 102.0]


def test_quiet_minutes_become_empty_bars_at_the_previous_close() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:00:10"), 100.0, 2.0), tk(at("10:00:50"), 105.0, 1.0)])
    closed = agg.add([tk(at("10:03:05"), 110.0)])
    assert closed == [
        Bar("BTCUSD", at("10:01:00"), "1m", 100.0, 105.0, 100.0, 105.0, 3.0),
        Bar("BTCUSD", at("10:02:00"), "1m", 105.0, 105.0, 105.0, 105.0, 0.0),
        Bar("BTCUSD", at("10:03:00"), "1m", 105.0, 105.0, 105.0, 105.0, 0.0),
    ]
    assert agg.skipped_empty == 0


def test_empty_bars_per_gap_are_capped_by_max_fill() -> None:
    agg = BarAggregator("1m", max_fill=2)
    agg.add([tk(T10, 100.0)])
    closed = agg.add([tk(T10 + 10 * M, 110.0)])  # bars closing 10:02..10:10 are empty: 9 of them
    assert len(closed) == 1 + 2
    assert all(b.volume == 0.0 and b.close == 100.0 for b in closed[1:])
    # the empty bars emitted are the ones right before the new bar, so the window stays contiguous
    assert [b.ts for b in closed[1:]] == [T10 + 9 * M, T10 + 10 * M]
    assert agg.skipped_empty == 7


def test_max_fill_zero_emits_no_empty_bars_but_counts_them() -> None:
    agg = BarAggregator("1m", max_fill=0)
    agg.add([tk(T10, 100.0)])
    assert len(agg.add([tk(T10 + 4 * M, 1.0)])) == 1
    assert agg.skipped_empty == 3


def test_no_empty_bars_when_fill_is_off() -> None:
    agg = BarAggregator("1m", fill_empty=False)
    agg.add([tk(T10, 100.0)])
    closed = agg.add([tk(T10 + 5 * M, 110.0)])
    assert [b.ts for b in closed] == [T10 + M]
    assert agg.skipped_empty == 0


def test_late_tick_is_counted_and_dropped() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:05:10"), 100.0, 1.0)])
    assert agg.add([tk(at("10:04:50"), 1.0, 50.0)]) == []
    assert agg.late == 1
    (bar,) = agg.add([tk(at("10:05:20"), 101.0, 2.0), tk(at("10:06:00"), 102.0)])
    assert (bar.low, bar.high, bar.volume) == (100.0, 101.0, 3.0)
    assert agg.late == 1


def test_out_of_order_tick_within_the_open_bar_is_not_late() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:00:40"), 100.0, 1.0), tk(at("10:00:20"), 99.0, 1.0)])
    assert agg.late == 0
    (bar,) = agg.add([tk(at("10:01:00"), 1.0)])
    assert (bar.low, bar.close, bar.volume) == (99.0, 99.0, 2.0)


def test_symbols_are_aggregated_independently() -> None:
    agg = BarAggregator("1m")
    closed = agg.add([
        tk(T10 + 1, 100.0, 1.0, "A"), tk(T10 + 2, 5.0, 7.0, "B"), tk(T10 + M + 1, 101.0, 1.0, "A"),
        tk(T10 + 3, 4.0, 1.0, "B"),  # B is still in its first bar: not late
    ])
    assert closed == [Bar("A", T10 + M, "1m", 100.0, 100.0, 100.0, 100.0, 1.0)]
    assert agg.late == 0
    closed = agg.add([tk(T10 + 2 * M + 1, 6.0, 1.0, "B")])  # opens the bar closing 10:03
    assert [(b.symbol, b.ts, b.close, b.volume) for b in closed] == [
        ("B", T10 + M, 4.0, 8.0), ("B", T10 + 2 * M, 4.0, 0.0)]


def test_hourly_bars_close_on_the_hour() -> None:
    agg = BarAggregator("1h")
    agg.add([tk(at("10:59:59"), 1.0)])
    (bar,) = agg.add([tk(at("11:00:00"), 2.0)])
    assert bar.ts == at("11:00:00") and bar.timeframe == "1h"


_STREAM = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.integers(min_value=0, max_value=150 * S),
              st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=100)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_STREAM, st.booleans())
def test_random_time_ordered_ticks_make_consistent_bars(stream: list[tuple[str, int, int, int]], fill: bool) -> None:
    ticks, now = [], T10
    for symbol, step, price_cents, volume in stream:
        now += step
        ticks.append(tk(now, price_cents / 100.0, float(volume), symbol))
    agg = BarAggregator("1m", fill_empty=fill)
    cut = len(ticks) // 2
    closed = agg.add(ticks[:cut]) + agg.add(ticks[cut:])
    flush = [tk(now + M, 1.0, 0.0, s) for s in ("A", "B")]
    closed += agg.add(flush)

    # reference: group by (symbol, close time) in arrival order
    reference: dict[tuple[str, int], list[float]] = {}
    for t in ticks:
        key = (t.symbol, (t.ts // M + 1) * M)
        row = reference.setdefault(key, [t.last, t.last, t.last, t.last, 0.0])
        row[1], row[2], row[3] = max(row[1], t.last), min(row[2], t.last), t.last
        row[4] += t.volume

    assert agg.late == 0
    assert sum(b.volume for b in closed) == sum(t.volume for t in ticks)
    traded = {(b.symbol, b.ts): b for b in closed if (b.symbol, b.ts) in reference}
    assert set(traded) == set(reference)
    for key, (o, h, lo, c, v) in reference.items():
        b = traded[key]
        assert (b.open, b.high, b.low, b.close, b.volume) == (o, h, lo, c, v)
    for b in closed:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.ts % M == 0
    for symbol in ("A", "B"):
        times = [b.ts for b in closed if b.symbol == symbol]
        assert all(later > earlier for earlier, later in zip(times, times[1:]))
        if fill:  # every minute from the first to the last bar is present
            assert all(later - earlier == M for earlier, later in zip(times, times[1:]))
        empty = [b for b in closed if b.symbol == symbol and (symbol, b.ts) not in reference]
        assert all(b.volume == 0.0 and b.open == b.high == b.low == b.close for b in empty)
        assert fill or not empty


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=90 * S), st.integers(min_value=0, max_value=5)),
                min_size=1, max_size=40))
def test_open_bar_holds_the_volume_not_yet_emitted(stream: list[tuple[int, int]]) -> None:
    agg = BarAggregator("1m")
    now, total, emitted = T10, 0.0, 0.0
    for step, volume in stream:
        now += step
        total += volume
        emitted += sum(b.volume for b in agg.add([tk(now, 100.0, float(volume))]))
    open_volume = sum(b.volume for b in agg.add([tk(now + 2 * M, 100.0, 0.0)]))
    assert emitted + open_volume == total


# ---------------------------------------------------------------------------------------------
# BarWindow


def _frame(first: int, n: int, symbol: str = "BTCUSD") -> BarFrame:
    ts = [(first + i) * M for i in range(n)]
    close = [float(first + i) for i in range(n)]
    return BarFrame.from_columns(symbol, "1m", ts=ts, open=close, high=close, low=close, close=close,
                                 volume=[1.0] * n)


def test_window_keeps_the_last_size_bars() -> None:
    window = BarWindow(5)
    window.extend(_frame(0, 3))
    assert len(window) == 3
    window.extend(_frame(3, 4))
    assert len(window) == 5
    frame = window.frame()
    assert frame.close.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert frame.ts.tolist() == [2 * M, 3 * M, 4 * M, 5 * M, 6 * M]
    assert (frame.symbol, frame.timeframe) == ("BTCUSD", "1m")


def test_window_larger_than_one_frame_keeps_everything() -> None:
    window = BarWindow(100)
    window.extend(_frame(0, 10))
    window.extend(_frame(10, 10))
    assert window.frame().close.tolist() == [float(i) for i in range(20)]


def test_window_frame_is_a_read_only_copy() -> None:
    window = BarWindow(3)
    window.extend(_frame(0, 3))
    frame = window.frame()
    assert not frame.close.flags.writeable and not frame.ts.flags.writeable
    window.extend(_frame(3, 3))
    assert frame.close.tolist() == [0.0, 1.0, 2.0]


def test_window_of_one_keeps_only_the_latest_bar() -> None:
    window = BarWindow(1)
    window.extend(_frame(0, 4))
    assert window.frame().close.tolist() == [3.0]
    assert np.array_equal(window.frame().ts, [3 * M])


# ---------------------------------------------------------------------------------------------
# Checkpoint copies


def test_aggregator_copy_keeps_the_open_bar_and_is_independent() -> None:
    agg = BarAggregator("1m", max_fill=3)
    agg.add([tk(T10, 100.0, 1.0), tk(T10 - M, 1.0)])  # the second tick is late
    twin = agg.copy()
    agg.add([tk(T10 + 1, 200.0, 5.0)])  # changes the original's open bar only
    (bar,) = twin.add([tk(T10 + M, 1.0)])
    assert (bar.high, bar.volume) == (100.0, 1.0)
    assert (twin.timeframe, twin.fill_empty, twin.max_fill, twin.late) == ("1m", True, 3, 1)
    (bar,) = agg.add([tk(T10 + M, 1.0)])
    assert (bar.high, bar.volume) == (200.0, 6.0)


def test_window_copy_is_independent() -> None:
    window = BarWindow(4)
    window.extend(_frame(0, 3))
    twin = window.copy()
    window.extend(_frame(3, 3))
    assert twin.frame().close.tolist() == [0.0, 1.0, 2.0]
    twin.extend(_frame(10, 2))
    assert twin.frame().close.tolist() == [1.0, 2.0, 10.0, 11.0]
    assert window.frame().close.tolist() == [2.0, 3.0, 4.0, 5.0]
