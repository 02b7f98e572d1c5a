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
    agg.add([tk(T10 + i * S, p) for i, p in enumerate((10.0, 8.0, 7.0, 12.0, 9.0))])
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


def test_out_of_order_tick_within_the_open_bar_is_not_late_and_ordered_by_time() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:00:40"), 100.0, 1.0), tk(at("10:00:20"), 99.0, 1.0)])
    assert agg.late == 0
    (bar,) = agg.add([tk(at("10:01:00"), 1.0)])
    # open is the earliest tick, close the latest, whatever the order they arrived in
    assert (bar.open, bar.low, bar.high, bar.close, bar.volume) == (99.0, 99.0, 100.0, 100.0, 2.0)


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


def _ticks(stream: list[tuple[str, int, int, int]]) -> list[Tick]:
    ticks, now = [], T10
    for symbol, step, price_cents, volume in stream:
        now += step
        ticks.append(tk(now, price_cents / 100.0, volume / 8.0, symbol))
    return ticks


def reference_bars(ticks: list[Tick]) -> dict[tuple[str, int], tuple[float, float, float, float, float]]:
    """Bars by the documented rules, computed the slow way: distinct ticks grouped by (symbol,
    close time); open/close = lowest/highest (ts, price); volume summed exactly."""
    groups: dict[tuple[str, int], set[tuple[int, float, float]]] = {}
    for t in ticks:
        groups.setdefault((t.symbol, (t.ts // M + 1) * M), set()).add((t.ts, t.last, t.volume))
    out = {}
    for key, rows in groups.items():
        ordered = sorted((ts, price) for ts, price, _ in rows)
        prices = [price for _, price in ordered]
        out[key] = (ordered[0][1], max(prices), min(prices), ordered[-1][1], math.fsum(v for _, _, v in rows))
    return out


def _flush(agg: BarAggregator, ticks: list[Tick]) -> list[Bar]:
    last = max((t.ts for t in ticks), default=T10)
    return agg.add([tk(last + 2 * M, 1.0, 0.0, s) for s in ("A", "B")])


@settings(max_examples=200, deadline=None)
@given(_STREAM, st.booleans())
def test_random_time_ordered_ticks_make_consistent_bars(stream: list[tuple[str, int, int, int]], fill: bool) -> None:
    ticks = _ticks(stream)
    agg = BarAggregator("1m", fill_empty=fill)
    cut = len(ticks) // 2
    closed = agg.add(ticks[:cut]) + agg.add(ticks[cut:])
    closed = [b for b in closed + _flush(agg, ticks) if b.ts <= max((t.ts for t in ticks), default=0) + M]
    reference = reference_bars(ticks)

    assert agg.late == 0
    distinct = {(t.symbol, t.ts, t.last, t.volume) for t in ticks}
    assert agg.duplicates == len(ticks) - len(distinct)
    assert sum(b.volume for b in closed) == math.fsum(v for *_, v in distinct)   # volume conserved
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


@settings(max_examples=200, deadline=None)
@given(_STREAM, st.randoms(use_true_random=False), st.integers(min_value=0, max_value=30))
def test_shuffling_within_each_second_and_repeating_ticks_changes_no_bar(
        stream: list[tuple[str, int, int, int]], rng, repeats: int) -> None:
    ticks = _ticks(stream)
    clean = BarAggregator("1m")
    expected = clean.add(ticks) + _flush(clean, ticks)
    repeated = ticks + [rng.choice(ticks) for _ in range(repeats if ticks else 0)]
    by_second: dict[int, list[Tick]] = {}
    for t in repeated:
        by_second.setdefault(t.ts // S, []).append(t)
    noisy: list[Tick] = []
    for second in sorted(by_second):
        group = by_second[second]
        rng.shuffle(group)
        noisy += group
    agg = BarAggregator("1m")
    got = agg.add(noisy[: len(noisy) // 3]) + agg.add(noisy[len(noisy) // 3:]) + _flush(agg, ticks)
    assert sorted(got, key=lambda b: (b.symbol, b.ts)) == sorted(expected, key=lambda b: (b.symbol, b.ts))
    assert agg.late == 0
    assert agg.duplicates == clean.duplicates + (repeats if ticks else 0)

@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=90 * S), st.integers(min_value=0, max_value=5)),
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


def quote(ts: int, bid: float, ask: float, last: float, volume: float = 1.0, symbol: str = "BTCUSD") -> Tick:
    return Tick(symbol, ts, bid, ask, last, volume)


def test_a_repeated_tick_is_dropped_and_counted_as_a_duplicate() -> None:
    agg = BarAggregator("1m")
    agg.add([quote(T10 + S, 99.0, 101.0, 100.0, 2.0), quote(T10 + S, 99.0, 101.0, 100.0, 2.0),
             tk(T10 + 2 * S, 100.5, 1.0), tk(T10 + 2 * S, 100.5, 1.0)])
    (bar,) = agg.add([tk(T10 + M, 1.0)])
    assert agg.duplicates == 2
    assert bar.volume == 3.0


def test_ticks_that_differ_in_any_price_or_the_volume_are_not_duplicates() -> None:
    agg = BarAggregator("1m")
    agg.add([quote(T10, 99.0, 101.0, 100.0), quote(T10, 99.5, 101.0, 100.0), quote(T10, 99.0, 100.5, 100.0),
             quote(T10, 99.0, 101.0, 100.2), quote(T10, 99.0, 101.0, 100.0, 3.0), tk(T10, 100.0)])
    (bar,) = agg.add([tk(T10 + M, 1.0)])
    assert agg.duplicates == 0
    assert bar.volume == 8.0


def test_duplicates_are_remembered_for_the_open_bar_only() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(T10 + S, 100.0)])
    agg.add([tk(T10 + M + S, 101.0)])       # closes the first bar
    agg.add([tk(T10 + S, 100.0)])           # its tick again: the bar is closed, so late, not duplicate
    assert (agg.late, agg.duplicates) == (1, 0)


def test_ticks_at_one_timestamp_open_low_and_close_high_in_any_arrival_order() -> None:
    for order in ((100.0, 101.0, 99.0), (99.0, 101.0, 100.0), (101.0, 100.0, 99.0)):
        agg = BarAggregator("1m")
        agg.add([tk(T10, p) for p in order])
        (bar,) = agg.add([tk(T10 + M, 1.0)])
        assert (bar.open, bar.high, bar.low, bar.close) == (99.0, 101.0, 99.0, 101.0)


def test_volume_is_summed_exactly_so_arrival_order_does_not_change_it() -> None:
    volumes = [0.1, 1e16, 0.2, -0.0, 0.3, 1.0, 1e-3]
    bars = []
    for order in (volumes, volumes[::-1], sorted(volumes)):
        agg = BarAggregator("1m")
        agg.add([tk(T10 + int(v * 1000) % 50 * S + i, 100.0, abs(v)) for i, v in enumerate(order)])
        bars.append(agg.add([tk(T10 + M, 1.0)])[0])
    assert bars[0].volume == bars[1].volume == bars[2].volume == math.fsum(abs(v) for v in volumes)


def test_after_a_seed_older_ticks_are_late_and_the_gap_is_filled_from_the_stored_close() -> None:
    agg = BarAggregator("1m")
    agg.seed("BTCUSD", T10 + 2 * M, 50.0)       # the store's last bar closed at 10:02
    assert agg.add([tk(T10 + M + S, 1.0), tk(T10 + 2 * M - 1, 1.0)]) == []
    assert agg.late == 2
    assert agg.last_close("BTCUSD") == T10 + 2 * M
    closed = agg.add([tk(T10 + 4 * M + S, 60.0), tk(T10 + 5 * M, 61.0)])
    assert [(b.ts, b.close, b.volume) for b in closed] == [(T10 + 3 * M, 50.0, 0.0), (T10 + 4 * M, 50.0, 0.0),
                                                           (T10 + 5 * M, 60.0, 1.0)]


def test_a_seed_never_moves_a_symbol_back() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(T10 + S, 1.0), tk(T10 + M + S, 2.0)])
    agg.seed("BTCUSD", T10, 9.0)
    assert agg.last_close("BTCUSD") == T10 + M


WALL = 5_000_000_000_000  # an arbitrary wall-clock reading


def test_the_market_clock_closes_a_quiet_bar_after_the_grace() -> None:
    agg = BarAggregator("1m", grace_ns=2 * S)
    assert agg.close_due(WALL) == []                 # no tick yet: no market clock
    agg.add([tk(T10 + 50 * S, 100.0)], now_ns=WALL)
    assert agg.watermark(WALL) == T10 + 48 * S
    assert agg.close_due(WALL + 11 * S) == []        # 10:01:01 - 2s grace: not yet
    (bar,) = agg.close_due(WALL + 12 * S)
    assert (bar.ts, bar.close) == (T10 + M, 100.0)
    assert agg.add([tk(T10 + 55 * S, 1.0)], now_ns=WALL + 13 * S) == []
    assert agg.late == 1                             # its bar was closed by the clock


def test_the_market_clock_emits_empty_bars_as_time_passes_and_a_tick_continues_the_series() -> None:
    agg = BarAggregator("1m", grace_ns=0)
    agg.add([tk(T10 + 30 * S, 100.0)], now_ns=WALL)
    first = agg.close_due(WALL + 30 * S)
    later = agg.close_due(WALL + 150 * S)            # the clock is at 10:03:00
    assert [b.ts for b in first] == [T10 + M]
    assert [(b.ts, b.volume, b.close) for b in later] == [(T10 + 2 * M, 0.0, 100.0), (T10 + 3 * M, 0.0, 100.0)]
    (bar,) = agg.add([tk(T10 + 3 * M + S, 101.0), tk(T10 + 4 * M, 102.0)], now_ns=WALL + 151 * S)
    assert bar.ts == T10 + 4 * M and bar.volume == 1.0


def test_the_market_clock_is_the_latest_tick_of_any_symbol() -> None:
    agg = BarAggregator("1m", grace_ns=0)
    agg.add([tk(T10 + S, 5.0, symbol="QUIET"), tk(T10 + 3 * M + S, 100.0)], now_ns=WALL)
    closed = agg.close_due(WALL)
    assert [(b.symbol, b.ts) for b in closed] == [("QUIET", T10 + M), ("QUIET", T10 + 2 * M), ("QUIET", T10 + 3 * M)]


def test_the_market_clock_fills_only_symbols_that_are_kept() -> None:
    agg = BarAggregator("1m", grace_ns=0)
    agg.add([tk(T10 + S, 5.0, symbol="GONE"), tk(T10 + S, 6.0, symbol="KEPT")], now_ns=WALL)
    closed = agg.close_due(WALL + 3 * M, keep=lambda symbol: symbol == "KEPT")
    assert sorted((b.symbol, b.ts) for b in closed) == [("GONE", T10 + M), ("KEPT", T10 + M), ("KEPT", T10 + 2 * M),
                                                        ("KEPT", T10 + 3 * M)]


def test_without_fill_the_market_clock_only_closes_bars() -> None:
    agg = BarAggregator("1m", fill_empty=False, grace_ns=0)
    agg.add([tk(T10 + S, 5.0)], now_ns=WALL)
    assert [b.ts for b in agg.close_due(WALL + 5 * M)] == [T10 + M]
    assert agg.close_due(WALL + 9 * M) == []


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
    assert twin.add([tk(T10, 100.0, 1.0)]) == [] and twin.duplicates == 1   # the seen keys were copied
    assert agg.duplicates == 0
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


@settings(max_examples=100, deadline=None)
@given(_STREAM, st.integers(min_value=0, max_value=60), st.booleans())
def test_a_restored_checkpoint_continues_exactly_like_the_aggregator_it_was_taken_from(
        stream: list[tuple[str, int, int, int]], cut: int, repeat: bool) -> None:
    ticks = _ticks(stream)
    ticks = ticks + ticks[: len(ticks) // 2] if repeat else ticks  # duplicates and late ticks too
    cut = min(cut, len(ticks))
    original = BarAggregator("1m")
    original.add(ticks[:cut])
    state = original.checkpoint()
    after_original = original.add(ticks[cut:])  # changes the original after the checkpoint was taken
    restored = BarAggregator.restored(state, "1m")
    assert restored.add(ticks[cut:]) == after_original
    assert _flush(restored, ticks) == _flush(original, ticks)
    assert (restored.late, restored.duplicates) == (original.late, original.duplicates)


def test_a_checkpoint_does_not_see_ticks_taken_after_it() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(at("10:00:10"), 100.0, 1.0)])
    state = agg.checkpoint()
    agg.add([tk(at("10:00:20"), 105.0, 2.0), tk(at("10:00:30"), 95.0, 4.0)])
    restored = BarAggregator.restored(state, "1m")
    (bar,) = restored.add([tk(at("10:01:10"), 100.0)])
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100.0, 100.0, 100.0, 100.0, 1.0)
    assert restored.add([tk(at("10:00:20"), 105.0, 2.0)]) == [] and restored.late == 1


# --- absurd times: refused, bounded, never an overflow ------------------------------------------

DAY = 86_400 * S


def test_a_tick_at_the_end_of_int64_is_refused_even_first_and_nothing_overflows() -> None:
    agg = BarAggregator("1m")
    assert agg.add([tk(2**63 - 1, 100.0)], now_ns=T10) == [] and agg.refused == 1
    agg.add([tk(T10, 100.0)], now_ns=T10)
    assert agg.add([tk(2**63 - 1, 100.0), tk(2**62, 100.0)], now_ns=T10) == [] and agg.refused == 3
    assert agg.close_due(T10 + 30 * S) == []  # the market clock did not move


def test_a_tick_years_ahead_of_the_market_clock_is_refused_and_later_ticks_flow() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(T10, 100.0), tk(T10, 50.0, symbol="ETHUSD")], now_ns=T10)
    assert agg.add([tk(T10 + 10 * 365 * DAY, 100.0)], now_ns=T10) == [] and agg.refused == 1
    assert agg.close_due(T10 + S) == []  # no empty bars towards the future
    closed = agg.add([tk(T10 + M + i * S, 101.0 + i) for i in range(10)], now_ns=T10 + M)
    assert [b.ts for b in closed] == [T10 + M] and agg.late == 0 and agg.refused == 1


def test_a_jump_within_the_limit_is_taken_and_fills_at_most_max_fill_per_symbol() -> None:
    agg = BarAggregator("1m", max_fill=100)
    agg.add([tk(T10, 100.0), tk(T10, 50.0, symbol="ETHUSD")], now_ns=T10)
    ahead = T10 + 6 * DAY
    bars = agg.add([tk(ahead, 100.0)], now_ns=T10)
    assert agg.refused == 0 and len(bars) == 1 + 100  # its own bar and the last max_fill of the gap
    quiet = agg.close_due(T10 + 3 * M)
    assert len([b for b in quiet if b.symbol == "ETHUSD" and b.volume == 0.0]) <= 100
    assert agg.add([tk(ahead + 8 * DAY, 100.0)], now_ns=T10) == [] and agg.refused == 1  # beyond 7 days


def test_the_market_clock_moving_with_the_wall_moves_the_limit() -> None:
    agg = BarAggregator("1m", max_jump_ns=DAY)
    agg.add([tk(T10, 100.0)], now_ns=T10)
    later = T10 + 2 * DAY
    assert agg.add([tk(later, 100.0)], now_ns=T10) == [] and agg.refused == 1
    # its bar closes at later + M: within a day of the market clock once the wall has moved a day and a minute
    assert len(agg.add([tk(later, 100.0)], now_ns=T10 + DAY + M)) > 0 and agg.refused == 1


def test_refusals_survive_a_checkpoint() -> None:
    agg = BarAggregator("1m")
    agg.add([tk(T10, 100.0), tk(2**63 - 1, 1.0)], now_ns=T10)
    assert agg.copy().refused == 1 and BarAggregator.restored(agg.checkpoint(), "1m").refused == 1
