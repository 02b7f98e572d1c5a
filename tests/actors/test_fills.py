"""The fill model: hand-written bars and ticks, every price worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actors.executor.fills import first_bar_fill, tick_fill
from messages.trading import BUY, SELL, Order

NAN = math.nan


def order(side: str, kind: str = "market", limit: float = NAN, stop: float = NAN) -> Order:
    return Order("c1", "test", "BTCUSD", side, 1.0, 0, kind, "accepted", "", limit, stop)


def bars(*rows: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low) rows as the three columns first_bar_fill takes."""
    o, h, low = zip(*rows, strict=True)
    return np.array(o), np.array(h), np.array(low)


# open, high, low
FLAT = bars((100.0, 102.0, 98.0), (101.0, 103.0, 99.0), (102.0, 104.0, 100.0))


# -- market orders on bars ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", [BUY, SELL])
@pytest.mark.parametrize("start", [0, 1, 2])
def test_market_fills_at_the_open_of_the_start_bar(side: str, start: int) -> None:
    assert first_bar_fill(order(side), *FLAT, start, 0.0) == (start, [100.0, 101.0, 102.0][start])


def test_market_with_no_bar_at_or_after_start_does_not_fill() -> None:
    assert first_bar_fill(order(BUY), *FLAT, 3, 0.0) is None
    assert first_bar_fill(order(BUY), *bars((1.0, 1.0, 1.0)), 5, 0.0) is None


def test_market_buy_slippage_raises_the_price_by_bps_of_the_open() -> None:
    # 10 bps of 100 = 0.1: 100.1, inside [98, 102]
    start, price = first_bar_fill(order(BUY), *FLAT, 0, 0.001)
    assert start == 0 and price == pytest.approx(100.1, rel=1e-12)


def test_market_sell_slippage_lowers_the_price_by_bps_of_the_open() -> None:
    start, price = first_bar_fill(order(SELL), *FLAT, 1, 0.001)
    assert start == 1 and price == pytest.approx(100.899, rel=1e-12)  # 101 * 0.999


def test_market_buy_slippage_is_clamped_to_the_bars_high() -> None:
    # open 100, high 100.5: 1% slippage would be 101, a price the bar never offered
    assert first_bar_fill(order(BUY), *bars((100.0, 100.5, 99.0)), 0, 0.01) == (0, 100.5)


def test_market_sell_slippage_is_clamped_to_the_bars_low() -> None:
    # open 100, low 99.5: 1% slippage would be 99
    assert first_bar_fill(order(SELL), *bars((100.0, 101.0, 99.5)), 0, 0.01) == (0, 99.5)


def test_market_fill_on_a_bar_that_opened_at_its_high_stays_at_the_open() -> None:
    assert first_bar_fill(order(BUY), *bars((100.0, 100.0, 95.0)), 0, 0.05) == (0, 100.0)


# -- limit orders on bars ------------------------------------------------------------------------------


def test_limit_buy_not_touched_does_not_fill() -> None:
    # lows 98, 99, 100: all above the limit 97.5
    assert first_bar_fill(order(BUY, "limit", limit=97.5), *FLAT, 0, 0.0) is None


def test_limit_buy_touched_fills_at_the_limit() -> None:
    # bar 0: open 100 above the limit 99, low 98 reaches it
    assert first_bar_fill(order(BUY, "limit", limit=99.0), *FLAT, 0, 0.0) == (0, 99.0)


def test_limit_buy_touched_exactly_at_the_low_fills_at_the_limit() -> None:
    assert first_bar_fill(order(BUY, "limit", limit=98.0), *FLAT, 0, 0.0) == (0, 98.0)


def test_limit_buy_gapped_through_fills_at_the_better_open() -> None:
    # the bar opens at 95, below the limit 99: the buyer gets 95
    assert first_bar_fill(order(BUY, "limit", limit=99.0), *bars((95.0, 96.0, 94.0)), 0, 0.0) == (0, 95.0)


def test_limit_buy_ignores_slippage() -> None:
    assert first_bar_fill(order(BUY, "limit", limit=99.0), *FLAT, 0, 0.01) == (0, 99.0)


def test_limit_sell_not_touched_does_not_fill() -> None:
    # highs 102, 103, 104: all below the limit 104.5
    assert first_bar_fill(order(SELL, "limit", limit=104.5), *FLAT, 0, 0.0) is None


def test_limit_sell_touched_fills_at_the_limit() -> None:
    # bar 1: open 101 below 103, high 103 reaches it (bar 0's high 102 does not)
    assert first_bar_fill(order(SELL, "limit", limit=103.0), *FLAT, 0, 0.0) == (1, 103.0)


def test_limit_sell_gapped_through_fills_at_the_better_open() -> None:
    assert first_bar_fill(order(SELL, "limit", limit=103.0), *bars((106.0, 107.0, 105.0)), 0, 0.0) == (0, 106.0)


# -- stop orders on bars --------------------------------------------------------------------------------


def test_stop_buy_not_reached_does_not_fill() -> None:
    assert first_bar_fill(order(BUY, "stop", stop=104.5), *FLAT, 0, 0.0) is None


def test_stop_buy_triggered_by_the_high_fills_at_the_stop() -> None:
    # bar 0 high 102 < 102.5; bar 1: open 101, high 103 reaches the stop
    assert first_bar_fill(order(BUY, "stop", stop=102.5), *FLAT, 0, 0.0) == (1, 102.5)


def test_stop_buy_gapped_above_fills_at_the_worse_open() -> None:
    assert first_bar_fill(order(BUY, "stop", stop=102.5), *bars((105.0, 106.0, 104.0)), 0, 0.0) == (0, 105.0)


def test_stop_buy_slippage_is_against_the_buyer_but_within_the_bar() -> None:
    # stop 102.5 * 1.001 = 102.6025 (high 103)
    start, price = first_bar_fill(order(BUY, "stop", stop=102.5), *FLAT, 0, 0.001)
    assert start == 1 and price == pytest.approx(102.6025, rel=1e-12)
    # 1% would be 103.525, above the high 103
    assert first_bar_fill(order(BUY, "stop", stop=102.5), *FLAT, 0, 0.01) == (1, 103.0)


def test_stop_sell_not_reached_does_not_fill() -> None:
    assert first_bar_fill(order(SELL, "stop", stop=97.5), *FLAT, 0, 0.0) is None


def test_stop_sell_triggered_by_the_low_fills_at_the_stop() -> None:
    # from bar 1 on, lows 99 and 100: bar 1 reaches 99.5
    assert first_bar_fill(order(SELL, "stop", stop=99.5), *FLAT, 1, 0.0) == (1, 99.5)


def test_stop_sell_gapped_below_fills_at_the_worse_open() -> None:
    assert first_bar_fill(order(SELL, "stop", stop=99.5), *bars((96.0, 97.0, 95.0)), 0, 0.0) == (0, 96.0)


def test_stop_sell_slippage_is_clamped_to_the_bars_low() -> None:
    # stop 99.5 * 0.99 = 98.505, below bar 1's low 99
    assert first_bar_fill(order(SELL, "stop", stop=99.5), *FLAT, 1, 0.01) == (1, 99.0)


# -- the first hit is the earliest bar at or after start ----------------------------------------------


def test_first_hit_ignores_bars_before_start() -> None:
    o, h, low = bars((100.0, 101.0, 90.0), (100.0, 101.0, 99.0), (100.0, 101.0, 94.0), (100.0, 101.0, 93.0))
    limit = order(BUY, "limit", limit=95.0)
    assert first_bar_fill(limit, o, h, low, 0, 0.0) == (0, 95.0)   # bar 0's low 90
    assert first_bar_fill(limit, o, h, low, 1, 0.0) == (2, 95.0)   # bar 0 is in the past; bar 1 low 99 misses
    assert first_bar_fill(limit, o, h, low, 3, 0.0) == (3, 95.0)
    stop = order(SELL, "stop", stop=95.0)
    assert first_bar_fill(stop, o, h, low, 1, 0.0) == (2, 95.0)


def test_first_hit_is_the_earliest_of_several() -> None:
    o, h, low = bars((100.0, 101.0, 99.0), (100.0, 106.0, 99.0), (100.0, 108.0, 99.0))
    assert first_bar_fill(order(SELL, "limit", limit=105.0), o, h, low, 0, 0.0) == (1, 105.0)
    assert first_bar_fill(order(BUY, "stop", stop=105.0), o, h, low, 0, 0.0) == (1, 105.0)


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown order kind"):
        first_bar_fill(order(BUY, "iceberg"), *FLAT, 0, 0.0)
    with pytest.raises(ValueError, match="unknown order kind"):
        tick_fill(order(BUY, "iceberg"), 99.0, 101.0, 100.0, 0.0)


# -- ticks ------------------------------------------------------------------------------------------------------


def test_tick_market_buy_fills_at_the_ask() -> None:
    assert tick_fill(order(BUY), 99.0, 101.0, 100.0, 0.0) == 101.0


def test_tick_market_buy_slippage_adds_to_the_ask() -> None:
    assert tick_fill(order(BUY), 99.0, 101.0, 100.0, 0.001) == pytest.approx(101.101, rel=1e-12)


def test_tick_market_sell_fills_at_the_bid() -> None:
    assert tick_fill(order(SELL), 99.0, 101.0, 100.0, 0.0) == 99.0
    assert tick_fill(order(SELL), 99.0, 101.0, 100.0, 0.001) == pytest.approx(98.901, rel=1e-12)


@pytest.mark.parametrize("side", [BUY, SELL])
def test_trade_only_tick_fills_at_last(side: str) -> None:
    assert tick_fill(order(side), NAN, NAN, 100.0, 0.0) == 100.0


def test_tick_limit_buy_fills_when_the_ask_reaches_the_limit_at_the_ask() -> None:
    assert tick_fill(order(BUY, "limit", limit=100.0), 99.0, 101.0, 100.0, 0.0) is None   # ask 101 > 100
    assert tick_fill(order(BUY, "limit", limit=100.0), 99.0, 100.0, 99.5, 0.0) == 100.0   # ask at the limit
    assert tick_fill(order(BUY, "limit", limit=100.0), 98.0, 99.0, 98.5, 0.01) == 99.0    # better, no slippage


def test_tick_limit_sell_fills_when_the_bid_reaches_the_limit_at_the_bid() -> None:
    assert tick_fill(order(SELL, "limit", limit=100.0), 99.0, 101.0, 100.0, 0.0) is None  # bid 99 < 100
    assert tick_fill(order(SELL, "limit", limit=100.0), 100.0, 101.0, 100.5, 0.0) == 100.0
    assert tick_fill(order(SELL, "limit", limit=100.0), 102.0, 103.0, 102.5, 0.01) == 102.0


def test_tick_limit_on_a_trade_only_tick_uses_last() -> None:
    assert tick_fill(order(BUY, "limit", limit=100.0), NAN, NAN, 100.5, 0.0) is None
    assert tick_fill(order(BUY, "limit", limit=100.0), NAN, NAN, 99.5, 0.0) == 99.5


def test_tick_stop_buy_fills_when_the_ask_crosses_with_slippage() -> None:
    assert tick_fill(order(BUY, "stop", stop=102.0), 100.0, 101.0, 100.5, 0.0) is None
    assert tick_fill(order(BUY, "stop", stop=102.0), 101.5, 102.0, 101.8, 0.0) == 102.0
    assert tick_fill(order(BUY, "stop", stop=102.0), 102.5, 103.0, 102.8, 0.001) == pytest.approx(103.103, rel=1e-12)


def test_tick_stop_sell_fills_when_the_bid_crosses_with_slippage() -> None:
    assert tick_fill(order(SELL, "stop", stop=98.0), 99.0, 100.0, 99.5, 0.0) is None
    assert tick_fill(order(SELL, "stop", stop=98.0), 98.0, 98.5, 98.2, 0.0) == 98.0
    assert tick_fill(order(SELL, "stop", stop=98.0), 97.0, 97.5, 97.2, 0.001) == pytest.approx(96.903, rel=1e-12)


def test_tick_stop_on_a_trade_only_tick_uses_last() -> None:
    assert tick_fill(order(SELL, "stop", stop=98.0), NAN, NAN, 98.5, 0.0) is None
    assert tick_fill(order(SELL, "stop", stop=98.0), NAN, NAN, 97.0, 0.0) == 97.0
