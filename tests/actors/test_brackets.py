"""Sizing by equity, quantity and risk; protective orders (stop-loss, take-profit, trailing stop, one
cancelling the others); shorts. Every figure is worked out by hand in the comments."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from actors.executor.broker import BrokerConfig, PaperBroker
from actors.executor.external import take_fill
from actors.executor.risk import RiskLimits
from actors.store.reader import StoreReader
from actors.store.writer import Database
from actors.strategy.api import Bar, Strategy
from messages.market import BarFrame, Tick
from messages.trading import BUY, SELL, Fill, Signal
from messages.venue import VenueFill
from tests.helpers import Scripted

H = 3_600_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def close_ts(i: int) -> int:
    return T0 + (i + 1) * H


def open_ts(i: int) -> int:
    return T0 + i * H


def bars(rows: list[tuple[float, float, float, float]], signals: dict[int, Signal] | None = None,
         start: int = 0, stop: int | None = None, symbol: str = "BTCUSD") -> BarFrame:
    """Hourly bars (open, high, low, close) ``start:stop`` with a decider giving ``signals`` at their bars."""
    stop = len(rows) if stop is None else stop
    picked = rows[start:stop]
    frame = BarFrame.from_columns(symbol, "1h", ts=[close_ts(i) for i in range(start, stop)],
                                  open=[r[0] for r in picked], high=[r[1] for r in picked],
                                  low=[r[2] for r in picked], close=[r[3] for r in picked], volume=[1.0] * len(picked))
    script = {i - start: s for i, s in (signals or {}).items() if start <= i < stop}
    return dataclasses.replace(frame, decider=Scripted(script))


def signal(rows: list[tuple[float, float, float, float]], i: int, side: str, **fields: object) -> Signal:
    """The decision at bar ``i``'s close."""
    return Signal("brk", "BTCUSD", "1h", close_ts(i), side, rows[i][3], "test", **fields)  # type: ignore[arg-type]


def broker(**kwargs: object) -> PaperBroker:
    params = {"cash": 10_000.0, "fee_bps": 0.0, "slippage_bps": 0.0, "allocation": 1.0}
    params.update(kwargs)
    return PaperBroker(BrokerConfig(**params))  # type: ignore[arg-type]


def events(orders) -> list[tuple[str, str, str]]:
    """(client id suffix after the entry's, status, reason) of every order event."""
    return [(o.client_id.rsplit(":", 1)[-1], o.status, o.reason) for o in orders]


def entry_id(i: int, side: str) -> str:
    return f"brk:BTCUSD:1h:{close_ts(i)}:{side}"


# ---------------------------------------------------------------------------------------------
# Sizing

FLAT = [(100.0, 105.0, 99.0, 104.0), (100.0, 101.0, 100.0, 100.0), (100.0, 101.0, 100.0, 100.0)]  # decided at 104


@pytest.mark.parametrize(("fields", "expected"), [
    # 50% of equity 10,000 at the close 104 plus the 0.1% fee: 5,000 / (104 x 1.001) = 48.0289...
    ({"sizing": "equity", "size": 0.5}, 5_000.0 / (104.0 * 1.001)),
    ({"sizing": "qty", "size": 30.0}, 30.0),  # 30 units, whatever the price
    # 200 units would cost 20,820.80: a long never spends more than the cash, 10,000 / 104.104 = 96.0577...
    ({"sizing": "qty", "size": 200.0}, 10_000.0 / (104.0 * 1.001)),
    # 1% of equity lost at the stop 99: 100 / (104 - 99) = 20 units
    ({"sizing": "risk", "size": 0.01, "stop_loss": 99.0}, 20.0),
    ({}, 10_000.0 / (104.0 * 1.001)),  # no sizing: executor.allocation (1.0) of equity, as before
])
def test_a_buy_is_sized_by_equity_quantity_or_risk(fields: dict, expected: float) -> None:
    b = broker(fee_bps=10.0)
    result = b.process((bars(FLAT, {0: signal(FLAT, 0, BUY, **fields)}),))
    order = next(o for o in result.orders if o.status == "submitted")
    assert order.qty == pytest.approx(expected, rel=1e-12)
    assert result.fills[0].qty == pytest.approx(expected, rel=1e-12)


def test_risk_sizing_takes_the_entry_price_with_slippage() -> None:
    b = broker(slippage_bps=50.0)
    b.process((bars(FLAT, {0: signal(FLAT, 0, BUY, sizing="risk", size=0.01, stop_loss=99.0)}),))
    # entry 104 x 1.005 = 104.52; 1% of 10,000 over 104.52 - 99 = 5.52: 100 / 5.52 = 18.1159...
    assert b.positions["BTCUSD"].qty == pytest.approx(100.0 / 5.52, rel=1e-12)


def test_a_short_is_sized_by_risk_above_the_entry() -> None:
    b = broker(allow_short=True)
    b.process((bars(FLAT, {0: signal(FLAT, 0, SELL, sizing="risk", size=0.02, stop_loss=109.0)}),))
    # 2% of 10,000 = 200 lost if 109 is reached from 104: 200 / 5 = 40 units short, sold at bar 1's open 100
    assert b.positions["BTCUSD"].qty == pytest.approx(-40.0, rel=1e-12)
    assert b.cash == pytest.approx(10_000.0 + 40.0 * 100.0, rel=1e-12)


@pytest.mark.parametrize(("side", "fields", "reason"), [
    (BUY, {"stop_loss": 105.0}, "stop-loss 105 is not below the entry price 104"),
    (BUY, {"take_profit": 100.0}, "take-profit 100 is not above the entry price 104"),
    (SELL, {"stop_loss": 100.0}, "stop-loss 100 is not above the entry price 104"),
    (BUY, {"order": "limit", "limit_price": 95.0, "stop_loss": 96.0}, "stop-loss 96 is not below the entry price 95"),
    (BUY, {"sizing": "risk", "size": 0.01}, "risk sizing needs a stop-loss"),
    (BUY, {"sizing": "qty", "size": math.nan}, "qty sizing needs a size > 0, got nan"),
    (BUY, {"sizing": "lots", "size": 1.0}, "unknown sizing 'lots' (valid: equity, qty, risk)"),
    (BUY, {"trail": 1.5}, "trailing stop 1.5 is not a fraction in (0, 1)"),
])
def test_an_entry_with_unusable_sizing_or_protective_prices_is_rejected(side: str, fields: dict, reason: str) -> None:
    b = broker(allow_short=True)
    result = b.process((bars(FLAT, {0: signal(FLAT, 0, side, **fields)}),))
    assert [(o.status, o.reason) for o in result.orders] == [("submitted", ""), ("rejected", reason)]
    assert result.fills == [] and b.pending == {} and b.brackets == {} and b.cash == 10_000.0


# ---------------------------------------------------------------------------------------------
# A long with a stop-loss at 95 and a take-profit at 110, 10 units bought at bar 1's open 100, no fees

BRACKET = {"sizing": "qty", "size": 10.0, "stop_loss": 95.0, "take_profit": 110.0}
ENTRY_BARS = [(100.0, 101.0, 99.0, 100.0),   # bar 0: buy decided at the close
              (100.0, 104.0, 98.0, 103.0)]   # bar 1: filled at the open 100; 98 > 95 and 104 < 110: nothing else


def bracket_run(third: tuple[float, float, float, float]) -> tuple[PaperBroker, object]:
    rows = [*ENTRY_BARS, third, (100.0, 100.0, 100.0, 100.0)]
    b = broker()
    return b, b.process((bars(rows, {0: signal(rows, 0, BUY, **BRACKET)}),))


def test_take_profit_fills_at_its_limit_and_cancels_the_stop() -> None:
    b, result = bracket_run((103.0, 112.0, 102.0, 111.0))  # bar 2 reaches 110 from an open of 103
    entry = entry_id(0, BUY)
    assert [(f.client_id, f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (entry, BUY, 10.0, 100.0, open_ts(1)), (f"{entry}:tp", SELL, 10.0, 110.0, open_ts(2))]
    assert events(result.orders) == [
        ("buy", "submitted", ""), ("buy", "accepted", ""),
        ("sl", "submitted", "stop-loss"), ("tp", "submitted", "take-profit"),  # waiting for the entry
        ("buy", "filled", ""),
        ("sl", "accepted", "stop-loss"), ("tp", "accepted", "take-profit"),   # live, for the 10 filled
        ("tp", "filled", ""), ("sl", "cancelled", f"{entry}:tp filled (one cancels the others)")]
    stop = next(o for o in result.orders if o.client_id == f"{entry}:sl")
    target = next(o for o in result.orders if o.client_id == f"{entry}:tp")
    assert (stop.kind, stop.side, stop.stop_price, target.kind, target.side, target.limit_price) == (
        "stop", SELL, 95.0, "limit", SELL, 110.0)
    (trade,) = b.trades
    assert (trade.entry_price, trade.exit_price, trade.qty, trade.pnl) == (100.0, 110.0, 10.0, 100.0)  # 10 x 10
    assert b.cash == 10_100.0 and b.positions == {} and b.pending == {} and b.brackets == {}


def test_a_gap_through_the_stop_fills_at_the_open_and_cancels_the_take_profit() -> None:
    b, result = bracket_run((92.0, 93.0, 90.0, 91.0))  # bar 2 opens at 92, under the stop 95
    entry = entry_id(0, BUY)
    assert [(f.client_id, f.price, f.ts) for f in result.fills][1] == (f"{entry}:sl", 92.0, open_ts(2))
    assert events(result.orders)[-2:] == [("sl", "filled", ""),
                                          ("tp", "cancelled", f"{entry}:sl filled (one cancels the others)")]
    assert b.trades[0].pnl == -80.0 and b.cash == 9_920.0  # 10 x (92 - 100)


@pytest.mark.parametrize(("third", "which", "price"), [
    ((102.0, 111.0, 94.0, 100.0), "sl", 95.0),    # the range reaches both: the stop is assumed first
    ((111.0, 112.0, 94.0, 100.0), "tp", 111.0),   # opened through the take-profit: filled at the open, first
])
def test_when_one_bar_reaches_both_the_stop_is_assumed_first_unless_it_opened_through_the_target(
        third: tuple, which: str, price: float) -> None:
    b, result = bracket_run(third)
    exit_fill = result.fills[1]
    assert (exit_fill.client_id, exit_fill.price) == (f"{entry_id(0, BUY)}:{which}", price)
    assert b.trades[0].pnl == pytest.approx(10.0 * (price - 100.0), rel=1e-12)
    assert [o.status for o in result.orders if o.client_id.endswith(":sl" if which == "tp" else ":tp")][-1] == \
        "cancelled"


def test_the_bar_the_entry_fills_in_can_hit_the_stop() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 94.0, 95.0), (95.0, 95.0, 95.0, 95.0)]
    b = broker()
    result = b.process((bars(rows, {0: signal(rows, 0, BUY, **BRACKET)}),))
    # bought at bar 1's open 100; the same bar trades down to 94: stopped at 95 within it
    assert [(f.side, f.price, f.ts) for f in result.fills] == [(BUY, 100.0, open_ts(1)), (SELL, 95.0, open_ts(1))]
    assert b.trades[0].pnl == -50.0


def test_latency_delays_protective_orders_as_any_order() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0),   # 0: buy decided
            (100.0, 101.0, 99.0, 100.0),   # 1: let pass (latency of one bar)
            (100.0, 101.0, 94.0, 96.0),    # 2: bought at the open 100; the stop, sent now, is not in place yet
            (96.0, 97.0, 94.0, 95.0),      # 3: the stop, one bar later, is hit at 95
            (95.0, 95.0, 95.0, 95.0)]
    b = broker(latency_bars=1)
    result = b.process((bars(rows, {0: signal(rows, 0, BUY, **BRACKET)}),))
    assert [(f.side, f.price, f.ts) for f in result.fills] == [(BUY, 100.0, open_ts(2)), (SELL, 95.0, open_ts(3))]


# ---------------------------------------------------------------------------------------------
# A trailing stop 10% under the highest high since entry

TRAIL_BARS = [(100.0, 101.0, 99.0, 100.0),   # 0: buy 10, trail 0.1
              (100.0, 105.0, 99.0, 104.0),   # 1: bought at 100; stop 100 x 0.9 = 90 during the bar; high 105
              (104.0, 120.0, 103.0, 118.0),  # 2: stop 105 x 0.9 = 94.5 (low 103: not hit); high 120
              (118.0, 119.0, 110.0, 112.0),  # 3: stop 120 x 0.9 = 108 (low 110: not hit); 119 < 120, stays
              (111.0, 112.0, 105.0, 106.0),  # 4: stop 108, low 105: hit, at 108 (opened above it)
              (106.0, 107.0, 105.0, 106.0)]
TRAIL = {"sizing": "qty", "size": 10.0, "trail": 0.1}


def test_a_trailing_stop_follows_the_highest_high_and_is_hit() -> None:
    b = broker()
    result = b.process((bars(TRAIL_BARS, {0: signal(TRAIL_BARS, 0, BUY, **TRAIL)}),))
    entry = entry_id(0, BUY)
    assert [(f.client_id, f.price, f.ts) for f in result.fills] == [
        (entry, 100.0, open_ts(1)), (f"{entry}:trail", pytest.approx(108.0, rel=1e-12), open_ts(4))]
    trailing = [o for o in result.orders if o.client_id == f"{entry}:trail"]
    assert [(o.status, o.kind, o.side) for o in trailing] == [
        ("submitted", "stop", SELL), ("accepted", "stop", SELL), ("filled", "stop", SELL)]
    assert math.isnan(trailing[0].stop_price)  # set when the entry fills
    assert trailing[1].stop_price == pytest.approx(90.0, rel=1e-12) and trailing[1].reason == "trailing stop 0.1"
    assert trailing[2].stop_price == pytest.approx(108.0, rel=1e-12)
    assert b.trades[0].pnl == pytest.approx(80.0, rel=1e-12)  # 10 x (108 - 100)


def test_a_trailing_stop_moved_by_a_batch_is_recorded_at_its_new_price() -> None:
    b = broker()
    plan = {0: signal(TRAIL_BARS, 0, BUY, **TRAIL)}
    first = b.process((bars(TRAIL_BARS, plan, 0, 2),))
    # after bar 1: highest high 105, stop 94.5 (moved from 90)
    assert [(o.status, round(o.stop_price, 9)) for o in first.orders if o.client_id.endswith(":trail")][1:] == [
        ("accepted", 90.0), ("accepted", 94.5)]
    second = b.process((bars(TRAIL_BARS, plan, 2, 4),))
    (moved,) = second.orders
    assert (moved.status, moved.stop_price) == ("accepted", pytest.approx(108.0, rel=1e-12))
    assert b.pending[moved.client_id].order == moved


# ---------------------------------------------------------------------------------------------
# Shorts

SHORT_BARS = [(100.0, 101.0, 99.0, 100.0),   # 0: sell 10 short, stop-loss 105, take-profit 90
              (100.0, 103.0, 97.0, 102.0),   # 1: sold at 100; 103 < 105 and 97 > 90
              (102.0, 106.0, 101.0, 105.0),  # 2: reaches 105 from 102: bought back at 105
              (105.0, 105.0, 105.0, 105.0)]
SHORT = {"sizing": "qty", "size": 10.0, "stop_loss": 105.0, "take_profit": 90.0}


def test_a_short_stop_loss_above_the_entry_is_hit() -> None:
    b = broker(allow_short=True)
    result = b.process((bars(SHORT_BARS, {0: signal(SHORT_BARS, 0, SELL, **SHORT)}),))
    entry = entry_id(0, SELL)
    assert [(f.client_id, f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (entry, SELL, 10.0, 100.0, open_ts(1)), (f"{entry}:sl", BUY, 10.0, 105.0, open_ts(2))]
    stop = next(o for o in result.orders if o.client_id == f"{entry}:sl" and o.status == "accepted")
    assert (stop.side, stop.kind, stop.stop_price) == (BUY, "stop", 105.0)
    assert events(result.orders)[-1] == ("tp", "cancelled", f"{entry}:sl filled (one cancels the others)")
    (trade,) = b.trades
    assert (trade.qty, trade.entry_price, trade.exit_price, trade.pnl) == (-10.0, 100.0, 105.0, -50.0)
    # cash: 10,000 + 10 x 100 from the sale - 10 x 105 to buy back = 9,950
    assert b.cash == 9_950.0 and b.positions == {}
    # equity at bar 1's close: 11,000 cash - 10 x 102 owed = 9,980
    assert result.equity.tolist() == [10_000.0, 9_980.0, 9_950.0, 9_950.0]


def test_a_short_trailing_stop_follows_the_lowest_low() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0),   # 0: sell 10 short, trail 0.1
            (100.0, 101.0, 95.0, 96.0),    # 1: sold at 100; stop 110 during the bar; low 95
            (96.0, 105.0, 96.0, 104.0),    # 2: stop 95 x 1.1 = 104.5, reached from 96: bought back at 104.5
            (104.0, 104.0, 104.0, 104.0)]
    b = broker(allow_short=True)
    result = b.process((bars(rows, {0: signal(rows, 0, SELL, sizing="qty", size=10.0, trail=0.1)}),))
    assert [(f.side, f.ts) for f in result.fills] == [(SELL, open_ts(1)), (BUY, open_ts(2))]
    assert result.fills[1].price == pytest.approx(104.5, rel=1e-12)
    assert b.trades[0].pnl == pytest.approx(-45.0, rel=1e-12)  # 10 x (100 - 104.5)


def test_a_buy_signal_covers_a_short_and_cancels_its_protective_orders() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0),   # 0: sell 10 short, stop-loss 120, take-profit 80
            (100.0, 101.0, 95.0, 96.0),    # 1: sold at 100
            (96.0, 97.0, 93.0, 94.0),      # 2: buy decided at the close: the bracket is cancelled
            (93.0, 94.0, 70.0, 75.0)]      # 3: covered at the open 93 (the take-profit 80 is gone)
    b = broker(allow_short=True)
    plan = {0: signal(rows, 0, SELL, sizing="qty", size=10.0, stop_loss=120.0, take_profit=80.0),
            2: signal(rows, 2, BUY)}
    result = b.process((bars(rows, plan),))
    cover = entry_id(2, BUY)
    assert [(f.client_id, f.side, f.qty, f.price) for f in result.fills] == [
        (entry_id(0, SELL), SELL, 10.0, 100.0), (cover, BUY, 10.0, 93.0)]
    assert events(result.orders)[-5:] == [
        ("buy", "submitted", ""), ("buy", "accepted", ""),
        ("sl", "cancelled", f"exit {cover} accepted"), ("tp", "cancelled", f"exit {cover} accepted"),
        ("buy", "filled", "")]
    assert b.trades[0].pnl == 70.0 and b.cash == 10_070.0  # 10 x (100 - 93)


def test_a_sell_signal_while_long_cancels_the_protective_orders() -> None:
    rows = [*ENTRY_BARS, (103.0, 104.0, 101.0, 102.0),  # 2: sell decided at the close
            (101.0, 112.0, 90.0, 100.0)]                 # 3: sold at the open 101; 110 and 95 are gone
    b = broker()
    result = b.process((bars(rows, {0: signal(rows, 0, BUY, **BRACKET), 2: signal(rows, 2, SELL)}),))
    exit_id = entry_id(2, SELL)
    assert [(f.client_id, f.price) for f in result.fills] == [(entry_id(0, BUY), 100.0), (exit_id, 101.0)]
    assert [(s, r) for s, status, r in events(result.orders) if status == "cancelled"] == [
        ("sl", f"exit {exit_id} accepted"), ("tp", f"exit {exit_id} accepted")]
    assert b.trades[0].pnl == 10.0 and b.pending == {}


def test_the_kill_switch_cancels_protective_orders_and_flattens() -> None:
    rows = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.0, 90.0, 90.0), (90.0, 90.0, 90.0, 90.0)]
    b = broker(limits=RiskLimits(daily_loss_pct=5.0))
    result = b.process((bars(rows, {0: signal(rows, 0, BUY, sizing="qty", size=100.0, stop_loss=50.0)}),))
    # 100 bought at 100 (all the cash); bar 1 closes at 90: equity 9,000, 10% down: the stop is cancelled
    # and the position sold at bar 2's open 90
    trip = "daily loss 10.00% reached the limit of 5%"
    assert [(s, status, r) for s, status, r in events(result.orders) if s == "sl"][-1] == (
        "sl", "cancelled", f"kill switch: {trip}")
    assert [(f.client_id, f.price) for f in result.fills][1] == (f"risk:BTCUSD:flatten:{close_ts(1)}", 90.0)
    assert b.positions == {} and b.pending == {} and b.cash == 9_000.0


# ---------------------------------------------------------------------------------------------
# Checkpoints, batching, restoring, ticks, write-ahead

LONG_RUN = [(100.0, 101.0, 99.0, 100.0),   # 0: buy 10, stop-loss 95, trailing 10%
            (100.0, 105.0, 99.0, 104.0),   # 1: bought at 100; stops 95 and 90
            (104.0, 120.0, 103.0, 118.0),  # 2: stops 95 and 94.5
            (118.0, 119.0, 110.0, 112.0),  # 3: stops 95 and 108
            (111.0, 112.0, 105.0, 106.0),  # 4: the trailing stop 108 is hit first (higher than 95): 108
            (106.0, 107.0, 105.0, 106.0)]
LONG_PLAN = {0: signal(LONG_RUN, 0, BUY, sizing="qty", size=10.0, stop_loss=95.0, trail=0.1)}


@pytest.mark.parametrize("loss_limit", [0.0, 50.0])  # with a loss limit, a batch is processed bar by bar
@pytest.mark.parametrize("cuts", [(), (1,), (2,), (3,), (4,), (1, 2, 3, 4, 5), (2, 4)])
def test_protective_orders_fill_the_same_however_the_bars_are_batched(cuts: tuple[int, ...],
                                                                     loss_limit: float) -> None:
    b = broker(limits=RiskLimits(daily_loss_pct=loss_limit))
    fills, bounds = [], [0, *cuts, len(LONG_RUN)]
    for start, stop in zip(bounds, bounds[1:]):
        fills += b.process((bars(LONG_RUN, LONG_PLAN, start, stop),)).fills
    entry = entry_id(0, BUY)
    assert [(f.client_id, f.price, f.ts) for f in fills] == [
        (entry, 100.0, open_ts(1)), (f"{entry}:trail", pytest.approx(108.0, rel=1e-12), open_ts(4))]
    assert b.cash == pytest.approx(10_080.0, rel=1e-12) and b.pending == {}
    assert [(o.status, o.reason) for o in b.orders if o.client_id == f"{entry}:sl"][-1] == (
        "cancelled", f"{entry}:trail filled (one cancels the others)")


def test_protective_orders_survive_a_checkpoint_copy() -> None:
    b = broker()
    b.process((bars(LONG_RUN, LONG_PLAN, 0, 3),))  # bought at 100; after bar 2 the trailing stop is at 108
    twin = b.copy()
    original = b.process((bars(LONG_RUN, LONG_PLAN, 3, 6),))
    assert set(twin.pending) == {f"{entry_id(0, BUY)}:sl", f"{entry_id(0, BUY)}:trail"}  # untouched by b
    assert twin.pending[f"{entry_id(0, BUY)}:trail"].stop == pytest.approx(108.0, rel=1e-12)
    replayed = twin.process((bars(LONG_RUN, LONG_PLAN, 3, 6),))
    assert replayed.fills == original.fills and replayed.orders == original.orders
    assert twin.cash == b.cash and list(twin.trades) == list(b.trades)


def stored(b: PaperBroker) -> list:
    """The orders as the store keeps them: each order's last state, in time and id order."""
    return sorted({o.client_id: o for o in b.orders}.values(), key=lambda o: (o.ts, o.client_id))


def test_protective_orders_come_back_from_the_store() -> None:
    original = broker()
    original.process((bars(LONG_RUN, LONG_PLAN, 0, 3),))
    restored = broker()
    restored.restore(stored(original), list(original.fills), {"BTCUSD": 118.0})
    assert set(restored.pending) == set(original.pending)
    trailing = restored.pending[f"{entry_id(0, BUY)}:trail"]
    assert (trailing.group, trailing.trail) == (entry_id(0, BUY), 0.1)
    assert trailing.stop == pytest.approx(108.0, rel=1e-12)  # from the stop price last stored
    # the whole history again: nothing is decided twice, the trailing stop fills as it did
    result = restored.process((bars(LONG_RUN, LONG_PLAN),))
    expected = original.process((bars(LONG_RUN, LONG_PLAN, 3, 6),))
    assert [(f.client_id, f.price, f.ts) for f in result.fills] == [
        (f.client_id, pytest.approx(f.price, rel=1e-12), f.ts) for f in expected.fills]
    assert restored.cash == pytest.approx(original.cash, rel=1e-12) and restored.positions == {} == original.positions


def test_protective_orders_come_back_from_a_real_store_file(tmp_path: Path) -> None:
    original = broker()
    first = original.process((bars(LONG_RUN, LONG_PLAN, 0, 2),))
    second = original.process((bars(LONG_RUN, LONG_PLAN, 2, 3),))
    db = Database(tmp_path / "store.db")  # what the store writes for each batch, one transaction each
    for batch in (first, second):
        db.write_orders("live", batch.orders)
        db.write_fills("live", batch.fills, {o.client_id for o in batch.orders if o.status == "filled"})
        db.commit()
    db.close()
    with StoreReader(tmp_path / "store.db") as store:
        orders, fills, marks = store.account("live")
    restored = broker()
    restored.restore(orders, fills, marks)
    entry = entry_id(0, BUY)
    assert [(o.client_id, o.status, o.kind) for o in orders] == [
        (entry, "filled", "market"), (f"{entry}:sl", "accepted", "stop"), (f"{entry}:trail", "accepted", "stop")]
    assert restored.pending[f"{entry}:sl"].stop == 95.0
    assert restored.pending[f"{entry}:trail"].stop == pytest.approx(108.0, rel=1e-12)
    assert restored.positions["BTCUSD"].qty == 10.0 and restored.cash == 9_000.0
    result = restored.process((bars(LONG_RUN, LONG_PLAN, 3, 6),))
    assert [(f.client_id, f.price) for f in result.fills] == [(f"{entry}:trail", pytest.approx(108.0, rel=1e-12))]
    assert restored.cash == pytest.approx(10_080.0, rel=1e-12)


def test_a_bracket_waiting_for_its_entry_comes_back_from_the_store() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0),   # 0: limit buy at 97, stop-loss 92, take-profit 110
            (100.0, 101.0, 98.0, 99.0),    # 1: 98 > 97: still waiting
            (99.0, 100.0, 96.0, 97.0),     # 2: reaches 97: bought at 97
            (97.0, 111.0, 96.0, 110.0)]    # 3: reaches 110: sold at 110
    plan = {0: signal(rows, 0, BUY, order="limit", limit_price=97.0, sizing="qty", size=10.0, stop_loss=92.0,
                      take_profit=110.0)}
    original = broker()
    original.process((bars(rows, plan, 0, 2),))
    assert list(original.brackets) == [entry_id(0, BUY)]
    restored = broker()
    restored.restore(stored(original), list(original.fills), {})
    assert restored.brackets == original.brackets
    result = restored.process((bars(rows, plan, 2, 4),))
    assert [(f.client_id, f.price) for f in result.fills] == [(entry_id(0, BUY), 97.0),
                                                             (f"{entry_id(0, BUY)}:tp", 110.0)]
    assert restored.cash == 10_130.0  # 10 x (110 - 97)


def test_on_ticks_the_stop_fills_at_the_bid_and_cancels_the_take_profit() -> None:
    b = broker()
    b.process((bars(ENTRY_BARS, {0: signal(ENTRY_BARS, 0, BUY, **BRACKET)}),))
    after = close_ts(1)
    result = b.process((), (Tick("BTCUSD", after + 1, 96.0, 96.5, 96.2), Tick("BTCUSD", after + 2, 94.0, 94.5, 94.2),
                            Tick("BTCUSD", after + 3, 111.0, 111.5, 111.2)))
    entry = entry_id(0, BUY)
    assert [(f.client_id, f.price, f.ts) for f in result.fills] == [(f"{entry}:sl", 94.0, after + 2)]
    assert events(result.orders) == [("sl", "filled", ""),
                                     ("tp", "cancelled", f"{entry}:sl filled (one cancels the others)")]
    assert b.cash == 9_940.0  # 10 x (94 - 100)


def test_written_ahead_protective_orders_fill_only_after_the_store_committed_them() -> None:
    b = PaperBroker(BrokerConfig(cash=10_000.0, fee_bps=0.0, allocation=1.0), write_ahead=True)
    first = b.process((bars(ENTRY_BARS, {0: signal(ENTRY_BARS, 0, BUY, **BRACKET)}),))
    # the entry filled on a bar of the batch that decided it; its bracket is new and waits for the commit
    assert first.mark == 1 and b.unconfirmed() == 1 and len(b.pending) == 2
    crossing = Tick("BTCUSD", close_ts(1) + 1, 94.0, 94.5, 94.2)
    assert b.process((), (crossing,)).fills == []
    assert b.confirm(1) == 2
    (fill,) = b.process((), (crossing._replace(ts=crossing.ts + 1),)).fills
    assert (fill.client_id, fill.price) == (f"{entry_id(0, BUY)}:sl", 94.0)


def test_a_short_with_fees_balances_cash_trade_and_equity() -> None:
    b = broker(allow_short=True, fee_bps=10.0)
    result = b.process((bars(SHORT_BARS, {0: signal(SHORT_BARS, 0, SELL, **SHORT)}),))
    short, cover = result.fills
    # fees 0.1%: 1.00 on the sale at 100 and 1.05 on the buy back at 105
    assert (short.fee, cover.fee) == (pytest.approx(1.0, rel=1e-12), pytest.approx(1.05, rel=1e-12))
    assert b.trades[0].pnl == pytest.approx(-50.0 - 2.05, rel=1e-12)
    assert b.cash == pytest.approx(10_000.0 - 52.05, rel=1e-12)
    ts, equity = b.equity_curve()
    assert np.allclose(equity, [10_000.0, 11_000.0 - 1.0 - 1_020.0, 10_000.0 - 52.05, 10_000.0 - 52.05])


# ---------------------------------------------------------------------------------------------
# Strategies written on the public API, through the executor


class Bracketed(Strategy):
    """Buy 10 at the first bar with a stop-loss and a take-profit; nothing else."""

    params = {"stop": 95.0, "target": 110.0}

    def next(self, bar: Bar, ind: dict, position: float) -> object:
        if not position and bar.ts == close_ts(0):
            return self.buy(qty=10, stop_loss=self.stop, take_profit=self.target)
        return None


class ShortTheTop(Strategy):
    """Short at the first bar risking 1% of equity on a stop-loss 5 above the close; cover at bar 2."""

    def next(self, bar: Bar, ind: dict, position: float) -> object:
        if not position and bar.ts == close_ts(0):
            return self.sell(risk=0.01, stop_loss=bar.close + 5.0)
        if position < 0 and bar.ts == close_ts(2):
            return "buy"
        return None


def run_strategy(strategy: Strategy, rows: list, **config: object) -> tuple[PaperBroker, object]:
    frame = bars(rows)
    b = broker(**config)
    return b, b.process((dataclasses.replace(frame, decider=strategy.decider(frame)),))


def test_a_bracket_strategy_fills_as_worked_by_hand() -> None:
    rows = [*ENTRY_BARS, (103.0, 112.0, 102.0, 111.0), (111.0, 111.0, 111.0, 111.0)]
    b, result = run_strategy(Bracketed(), rows)
    # 10 bought at bar 1's open 100; bar 2 reaches the take-profit 110 (from 103): sold at 110
    entry = f"Bracketed:BTCUSD:1h:{close_ts(0)}:buy"
    assert [(f.client_id, f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (entry, BUY, 10.0, 100.0, open_ts(1)), (f"{entry}:tp", SELL, 10.0, 110.0, open_ts(2))]
    assert [(o.client_id, o.status) for o in result.orders if o.status == "cancelled"] == [(f"{entry}:sl", "cancelled")]
    assert b.cash == 10_100.0 and b.positions == {}
    # a lower target never reached: the stop-loss at 95 is, in a bar opening at 92: filled at the open
    b, result = run_strategy(Bracketed(target=120.0), [*ENTRY_BARS, (92.0, 93.0, 90.0, 91.0)])
    assert [(f.client_id, f.price) for f in result.fills][1] == (f"{entry}:sl", 92.0)
    assert b.cash == 9_920.0


def test_a_short_strategy_fills_as_worked_by_hand() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0),   # 0: short, 1% of 10,000 at risk over 105 - 100: 100 / 5 = 20 units
            (100.0, 103.0, 97.0, 98.0),    # 1: sold 20 at the open 100 (103 < 105: the stop holds)
            (98.0, 99.0, 94.0, 95.0),      # 2: "buy" at the close: the stop-loss is cancelled
            (96.0, 97.0, 95.0, 96.0)]      # 3: bought back 20 at the open 96
    b, result = run_strategy(ShortTheTop(), rows, allow_short=True)
    entry = f"ShortTheTop:BTCUSD:1h:{close_ts(0)}:sell"
    cover = f"ShortTheTop:BTCUSD:1h:{close_ts(2)}:buy"
    assert [(f.client_id, f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (entry, SELL, 20.0, 100.0, open_ts(1)), (cover, BUY, 20.0, 96.0, open_ts(3))]
    assert [(o.client_id, o.reason) for o in result.orders if o.status == "cancelled"] == [
        (f"{entry}:sl", f"exit {cover} accepted")]
    (trade,) = b.trades
    assert (trade.qty, trade.pnl) == (-20.0, 80.0)  # 20 x (100 - 96)
    assert b.cash == 10_080.0
    # the same short when the price runs up: stopped out at 105, a loss of 1% of equity, as sized
    rows[1] = (100.0, 106.0, 99.0, 104.0)
    b, result = run_strategy(ShortTheTop(), rows, allow_short=True)
    assert [(f.client_id, f.price) for f in result.fills][1] == (f"{entry}:sl", 105.0)
    assert b.trades[0].pnl == -100.0 and b.cash == 9_900.0


def test_on_a_venue_a_bracket_opens_when_the_venue_fills_the_entry_and_one_fill_cancels_the_other() -> None:
    # the venue fills (the broker never does): the entry's fill comes in, its stop-loss and take-profit
    # become open orders for the filled quantity; the take-profit's fill cancels the stop-loss
    b = broker(external=True)
    b.process((bars(FLAT, {0: signal(FLAT, 0, BUY, sizing="qty", size=10.0, stop_loss=99.0, take_profit=110.0)}),))
    (entry,) = [p.order for p in b.pending.values()]
    assert len(b.fills) == 0 and entry.qty == 10.0 and len(b.brackets[entry.client_id]) == 2  # nothing filled on paper
    filled = entry._replace(status="filled")
    fill = Fill(entry.client_id, "BTCUSD", BUY, 10.0, 100.5, 0.1, entry.ts + 1)
    opened = take_fill(b, VenueFill(fill, filled, fill))
    assert [(o.client_id.rsplit(":", 1)[-1], o.kind, o.status, o.qty, o.stop_price, o.limit_price)
            for o in opened] == [("sl", "stop", "accepted", 10.0, 99.0, pytest.approx(math.nan, nan_ok=True)),
                                 ("tp", "limit", "accepted", 10.0, pytest.approx(math.nan, nan_ok=True), 110.0)]
    assert b.positions["BTCUSD"].qty == 10.0 and set(b.pending) == {o.client_id for o in opened}
    tp = next(o for o in opened if o.kind == "limit")
    exit_fill = Fill(tp.client_id, "BTCUSD", SELL, 10.0, 110.0, 0.1, entry.ts + 2)
    closed = take_fill(b, VenueFill(exit_fill, tp._replace(status="filled"), exit_fill))
    assert [(o.client_id.rsplit(":", 1)[-1], o.status, o.reason) for o in closed] == [
        ("sl", "cancelled", f"{tp.client_id} filled (one cancels the others)")]
    assert b.pending == {} and "BTCUSD" not in b.positions


def test_on_a_venue_a_trailing_stop_opens_with_the_entry_fill_for_the_venue_actor_to_follow() -> None:
    b = broker(external=True)
    b.process((bars(FLAT, {0: signal(FLAT, 0, BUY, sizing="qty", size=2.0, trail=0.05)}),))
    (entry,) = [p.order for p in b.pending.values()]
    fill = Fill(entry.client_id, "BTCUSD", BUY, 2.0, 100.0, 0.1, entry.ts + 1)
    (trail,) = take_fill(b, VenueFill(fill, entry._replace(status="filled"), fill))
    # 5% under the entry's fill price; the venue actor moves it up with the last price from there
    assert (trail.kind, trail.side, trail.status, trail.qty, trail.stop_price) == ("stop", SELL, "accepted", 2.0,
                                                                                  pytest.approx(95.0))
    assert trail.client_id.endswith(":trail") and trail.reason == "trailing stop 0.05"
