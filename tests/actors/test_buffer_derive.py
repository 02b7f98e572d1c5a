"""Higher timeframes derived from lower ones (TimeframeDeriver), and from ticks through both stages."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.buffer.bars import BarAggregator
from actors.buffer.derive import TimeframeDeriver
from messages.market import Bar, Tick

S = 1_000_000_000
M = 60 * S
H = 60 * M
DAY = 24 * H
T0 = pd.Timestamp("2024-01-01T00:00:00Z").value


def one_minute(k: int, close: float, volume: float = 1.0, symbol: str = "BTCUSD", spread: float = 1.0) -> Bar:
    """The 1m bar closing at T0 + k minutes."""
    return Bar(symbol, T0 + k * M, "1m", close - spread / 2, close + spread, close - spread, close, volume)


def aggregate(bars: list[Bar], timeframe: str, length: int) -> dict[int, Bar]:
    """The reference: group base bars by the higher bar they belong to, the slow way."""
    groups: dict[int, list[Bar]] = {}
    for b in bars:
        groups.setdefault(-(-b.ts // length) * length, []).append(b)
    return {end: Bar(g[0].symbol, end, timeframe, g[0].open, max(b.high for b in g), min(b.low for b in g),
                     g[-1].close, math.fsum(b.volume for b in g)) for end, g in groups.items()}


def test_targets_are_the_whole_multiples_of_a_timeframe() -> None:
    deriver = TimeframeDeriver(("1m", "5m", "15m", "1h", "1d", "90s"))
    assert deriver.targets_for("1m") == ("5m", "15m", "1h", "1d")
    assert deriver.targets_for("1h") == ("1d",)
    assert deriver.targets_for("1d") == ()
    assert deriver.targets_for("30s") == ("1m", "90s", "5m", "15m", "1h", "1d")


def test_a_five_minute_bar_is_its_five_one_minute_bars_emitted_with_the_last() -> None:
    deriver = TimeframeDeriver(("5m",))
    bars = [one_minute(k, 100.0 + k, volume=k) for k in range(1, 6)]
    assert deriver.add(bars[:4]) == []
    (five,) = deriver.add(bars[4:])
    assert five == Bar("BTCUSD", T0 + 5 * M, "5m", bars[0].open, 106.0, 100.0, 105.0, 15.0)


def test_a_first_period_that_started_before_the_data_is_not_emitted() -> None:
    deriver = TimeframeDeriver(("5m",))
    assert deriver.add([one_minute(k, 100.0) for k in range(3, 6)]) == []          # 00:02..00:05: partial
    assert [b.ts for b in deriver.add([one_minute(k, 100.0) for k in range(6, 11)])] == [T0 + 10 * M]


def test_warm_up_without_emitting_keeps_the_open_period() -> None:
    deriver = TimeframeDeriver(("5m",))
    assert deriver.add([one_minute(k, 100.0 + k) for k in range(1, 4)], emit=False) == []
    (five,) = deriver.add([one_minute(4, 90.0), one_minute(5, 95.0)])
    assert (five.open, five.low, five.close, five.volume) == (100.5, 89.0, 95.0, 5.0)


def test_a_gap_in_the_base_bars_becomes_empty_higher_bars_at_the_previous_close() -> None:
    deriver = TimeframeDeriver(("5m",))
    deriver.add([one_minute(k, 100.0) for k in range(1, 6)])
    out = deriver.add([one_minute(21, 7.0)])  # nothing from 00:06 to 00:20
    assert [(b.ts, b.volume, b.close) for b in out] == [(T0 + k * M, 0.0, 100.0) for k in (10, 15, 20)]
    assert TimeframeDeriver(("5m",), fill_empty=False).add([one_minute(k, 1.0) for k in (1, 2, 3, 4, 5, 21)]) \
        == [aggregate([one_minute(k, 1.0) for k in range(1, 6)], "5m", 5 * M)[T0 + 5 * M]]


def test_base_bars_out_of_order_or_of_another_timeframe_are_ignored() -> None:
    deriver = TimeframeDeriver(("1h",))
    deriver.add([one_minute(k, 1.0) for k in range(1, 10)])
    assert deriver.add([one_minute(3, 50.0), Bar("BTCUSD", T0 + 15 * M, "15m", 1, 1, 1, 1, 1)]) == []
    assert deriver.ignored == 1
    (hour,) = deriver.add([one_minute(k, 1.0) for k in range(10, 61)])
    assert (hour.high, hour.close, hour.volume) == (2.0, 1.0, 60.0)


def test_symbols_and_targets_are_independent_and_output_is_grouped_by_timeframe() -> None:
    deriver = TimeframeDeriver(("5m", "15m"))
    bars = [one_minute(k, float(k), symbol=s) for k in range(1, 16) for s in ("A", "B")]
    out = deriver.add(bars)
    assert [(b.timeframe, b.symbol, b.ts) for b in out] == [
        ("5m", "A", T0 + 5 * M), ("5m", "B", T0 + 5 * M), ("5m", "A", T0 + 10 * M), ("5m", "B", T0 + 10 * M),
        ("5m", "A", T0 + 15 * M), ("5m", "B", T0 + 15 * M), ("15m", "A", T0 + 15 * M), ("15m", "B", T0 + 15 * M)]


def test_copy_is_independent() -> None:
    deriver = TimeframeDeriver(("5m",))
    deriver.add([one_minute(k, 1.0) for k in range(1, 4)])
    twin = deriver.copy()
    deriver.add([one_minute(4, 50.0)])
    (five,) = twin.add([one_minute(4, 2.0), one_minute(5, 3.0)])
    assert five.high == 4.0 and five.volume == 5.0


_MINUTES = st.lists(st.tuples(st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=10_000),
                              st.integers(min_value=0, max_value=50)), min_size=1, max_size=120)


@settings(max_examples=150, deadline=None)
@given(_MINUTES, st.integers(min_value=1, max_value=40))
def test_higher_bars_equal_the_aggregated_lower_bars_in_any_batching(steps: list[tuple[int, int, int]], chunk: int) -> None:
    k, base = 0, []
    for step, cents, volume in steps:
        k += step
        base.append(one_minute(k, cents / 100.0, volume / 10.0))
    deriver = TimeframeDeriver(("5m", "15m", "1h"), fill_empty=False)
    out = []
    for i in range(0, len(base), chunk):
        out += deriver.add(base[i:i + chunk])
    for timeframe, length in (("5m", 5 * M), ("15m", 15 * M), ("1h", H)):
        reference = aggregate(base, timeframe, length)
        emitted = {b.ts: b for b in out if b.timeframe == timeframe}
        first_end, last_end = (-(-base[i].ts // length) * length for i in (0, -1))
        first_partial = base[0].ts - M != first_end - length   # started before the data did
        last_open = base[-1].ts != last_end                    # still waiting for its last base bar
        expected = {end: bar for end, bar in reference.items()
                    if not (end == first_end and first_partial) and not (end == last_end and last_open)}
        assert emitted == expected, timeframe
        for b in emitted.values():
            assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert sum(b.volume for b in emitted.values()) <= math.fsum(b.volume for b in base) + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=40 * S), st.integers(min_value=1, max_value=10_000),
                          st.integers(min_value=0, max_value=9)), min_size=1, max_size=200))
def test_from_ticks_five_minute_bars_equal_the_aggregated_one_minute_bars(stream: list[tuple[int, int, int]]) -> None:
    aggregator = BarAggregator("1m")
    deriver = TimeframeDeriver(("5m",))
    now, ticks = T0, []
    for step, cents, volume in stream:
        now += step
        ticks.append(Tick("BTCUSD", now, math.nan, math.nan, cents / 100.0, float(volume)))
    ticks.append(Tick("BTCUSD", now + 10 * M, math.nan, math.nan, 1.0, 0.0))   # closes everything before
    one = aggregator.add(ticks)
    five = deriver.add(one)
    assert sum(b.volume for b in one) == math.fsum(t.volume for t in ticks[:-1])   # volume conserved
    reference = aggregate(one, "5m", 5 * M)
    assert five, "the stream spans at least one whole five-minute period"
    assert all(reference[b.ts] == b for b in five)
    assert [b.ts for b in five] == sorted(end for end in reference if end >= five[0].ts and end <= one[-1].ts)
