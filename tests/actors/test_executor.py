"""Paper broker (next-open fills, fees, cash, equity, idempotence) and the backtest report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actors.executor.broker import BrokerConfig, PaperBroker
from actors.executor.portfolio import Trade
from actors.executor.report import max_drawdown, summarize, trade_rows
from actors.executor.risk import RiskLimits
from messages.market import BarFrame, Tick, readonly
from messages.trading import BUY, SELL, Candidates, Signal
from tests.helpers import Scripted

H = 3_600_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z

# The hand-worked 5-bar example: buy decided at bar 1's close, filled at bar 2's open;
# sell decided at bar 3's close, filled at bar 4's open.
OPEN = [100.0, 101.0, 100.0, 103.0, 106.0]
HIGH = [102.0, 105.0, 104.0, 108.0, 109.0]
LOW = [99.0, 100.0, 99.0, 102.0, 105.0]
CLOSE = [101.0, 104.0, 103.0, 107.0, 108.0]


def close_ts(i: int) -> int:
    return T0 + (i + 1) * H


def make_frame(symbol: str = "BTCUSD", rows: range = range(5), signals: dict[int, str] | None = None,
               open_: list[float] = OPEN, high: list[float] = HIGH, low: list[float] = LOW,
               close: list[float] = CLOSE) -> tuple[BarFrame, tuple[Signal, ...]]:
    """Bars ``rows`` of the given columns, with a decider that gives the signals at the given bars
    whatever the position, and those Signals."""
    rows = list(rows)
    frame = BarFrame.from_columns(
        symbol, "1h", ts=[close_ts(i) for i in rows], open=[open_[i] for i in rows], high=[high[i] for i in rows],
        low=[low[i] for i in rows], close=[close[i] for i in rows], volume=[1.0] * len(rows),
    )
    signals = signals or {}
    made = {k: Signal("sma_cross", symbol, "1h", close_ts(i), side, close[i], "test")
            for k, i in enumerate(rows) if (side := signals.get(i))}
    return dataclasses.replace(frame, decider=Scripted(made)), tuple(made.values())


def scripted(frame: BarFrame, signals: tuple[Signal, ...]) -> BarFrame:
    """``frame`` with a decider that gives ``signals`` at their bars."""
    index = {int(ts): k for k, ts in enumerate(frame.ts.tolist())}
    return dataclasses.replace(frame, decider=Scripted({index[s.ts]: s for s in signals if s.ts in index}))


def broker(**kwargs: object) -> PaperBroker:
    params = {"cash": 10_000.0, "fee_bps": 10.0, "slippage_bps": 0.0, "allocation": 1.0}
    params.update(kwargs)
    return PaperBroker(BrokerConfig(**params))  # type: ignore[arg-type]


def submitted(orders) -> list:
    """The orders as first submitted (each order also appears as accepted, filled, ...)."""
    return [o for o in orders if o.status == "submitted"]


ROUND_TRIP = {1: BUY, 3: SELL}
Q = 10_000.0 / (104.0 * 1.001)  # 96.0577883...: all the cash at the signal close, fee included
BUY_FEE = Q * 100.0 * 0.001  # 9.6057788...
CASH_LONG = 10_000.0 - Q * 100.0 - BUY_FEE  # 384.6153846... (= 10000 / 26)
SELL_FEE = Q * 106.0 * 0.001  # 10.1821255...
CASH_FLAT = CASH_LONG + Q * 106.0 - SELL_FEE  # 10556.5588...


def test_hand_worked_constants() -> None:
    assert Q == pytest.approx(96.05778836548069, rel=1e-12)
    assert CASH_LONG == pytest.approx(10_000.0 / 26.0, rel=1e-12)
    assert CASH_FLAT == pytest.approx(10_556.558825789596, rel=1e-12)


def test_buy_fills_at_the_next_bars_open_never_a_close() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: BUY})
    result = b.process((frame,))
    assert [o.status for o in result.orders] == ["submitted", "accepted", "filled"]
    (order,) = submitted(result.orders)
    (fill,) = result.fills
    assert (order.side, order.status, order.ts) == (BUY, "submitted", close_ts(1))
    assert {o.client_id for o in result.orders} == {order.client_id}
    assert order.qty == pytest.approx(Q, rel=1e-12)
    assert fill.price == 100.0  # bar 2's open, not bar 1's close (104) nor bar 2's close (103)
    assert fill.ts == close_ts(2) - H  # the open time of the filling bar
    assert fill.client_id == order.client_id == f"sma_cross:BTCUSD:1h:{close_ts(1)}:buy"
    assert fill.qty == pytest.approx(Q, rel=1e-12)


def test_fee_is_a_tenth_of_a_percent_of_traded_value() -> None:
    b = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    buy, sell = b.process((frame,)).fills
    assert buy.fee == pytest.approx(buy.qty * buy.price * 0.001, rel=1e-12)
    assert buy.fee == pytest.approx(9.605778836548069, rel=1e-12)
    assert sell.fee == pytest.approx(sell.qty * sell.price * 0.001, rel=1e-12)
    assert sell.fee == pytest.approx(10.182125566740954, rel=1e-12)


def test_cash_position_and_equity_over_five_bars_match_hand_arithmetic() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: BUY})
    result = b.process((frame,))
    assert b.cash == pytest.approx(CASH_LONG, rel=1e-12)
    position = b.positions["BTCUSD"]
    assert position.qty == pytest.approx(Q, rel=1e-12) and position.avg_price == 100.0
    assert result.equity_ts.tolist() == [close_ts(i) for i in range(5)]
    expected = [10_000.0, 10_000.0, CASH_LONG + Q * 103.0, CASH_LONG + Q * 107.0, CASH_LONG + Q * 108.0]
    assert result.equity.tolist() == pytest.approx(expected, rel=1e-12)
    assert result.equity[2] == pytest.approx(10_278.567586259895, rel=1e-12)
    assert b.equity_now() == pytest.approx(CASH_LONG + Q * 108.0, rel=1e-12)
    assert b.marks == {"BTCUSD": 108.0}


def test_sell_closes_the_position_and_records_the_trade_net_of_both_fees() -> None:
    b = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    result = b.process((frame,))
    assert [f.side for f in result.fills] == [BUY, SELL]
    assert result.fills[1].price == 106.0 and result.fills[1].ts == close_ts(4) - H
    assert b.positions == {} and b.pending == {}
    assert b.cash == pytest.approx(CASH_FLAT, rel=1e-12)
    (trade,) = b.trades
    assert trade.symbol == "BTCUSD"
    assert (trade.entry_time, trade.exit_time) == (close_ts(2) - H, close_ts(4) - H)
    assert (trade.entry_price, trade.exit_price) == (100.0, 106.0)
    assert trade.qty == pytest.approx(Q, rel=1e-12)
    assert trade.pnl == pytest.approx(Q * 6.0 - BUY_FEE - SELL_FEE, rel=1e-12)
    assert trade.pnl == pytest.approx(556.5588257895951, rel=1e-12)
    assert trade.pnl == pytest.approx(b.cash - 10_000.0, rel=1e-12)  # the only trade explains all the gain
    assert result.equity.tolist() == pytest.approx(
        [10_000.0, 10_000.0, CASH_LONG + Q * 103.0, CASH_LONG + Q * 107.0, CASH_FLAT], rel=1e-12)


def test_slippage_moves_both_fill_prices_against_the_trader() -> None:
    b = broker(slippage_bps=50.0)
    frame, signals = make_frame(signals=ROUND_TRIP)
    buy, sell = b.process((frame,)).fills
    assert buy.price == pytest.approx(100.0 * 1.005, rel=1e-12)
    assert sell.price == pytest.approx(106.0 * 0.995, rel=1e-12)


def test_signal_on_the_last_bar_of_a_batch_fills_on_the_first_bar_of_the_next() -> None:
    b = broker()
    first, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    result = b.process((first,))
    assert [o.status for o in result.orders] == ["submitted", "accepted"]
    assert result.fills == [] and b.open_symbols() == {"BTCUSD"}
    second, signals = make_frame(rows=range(2, 5))
    result = b.process((second,))
    (fill,) = result.fills
    assert (fill.price, fill.ts) == (100.0, close_ts(2) - H)
    assert [o.status for o in result.orders] == ["filled"]  # no new decision, only the fill
    assert submitted(result.orders) == [] and b.pending == {} and b.open_symbols() == set()


@pytest.mark.parametrize("cuts", [(1,), (2,), (3,), (4,), (1, 2, 3, 4), (2, 4)])
def test_batching_does_not_change_fills_trades_or_equity(cuts: tuple[int, ...]) -> None:
    whole = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    w = whole.process((frame,))
    parts = broker()
    fills, bounds = [], [0, *cuts, 5]
    for start, stop in zip(bounds, bounds[1:]):
        frame, signals = make_frame(rows=range(start, stop), signals=ROUND_TRIP)
        fills += parts.process((frame,)).fills
    assert fills == w.fills
    assert list(parts.trades) == list(whole.trades)
    ts, equity = parts.equity_curve()
    assert ts.tolist() == w.equity_ts.tolist()
    assert np.array_equal(equity, w.equity)
    assert parts.cash == whole.cash


def test_same_signal_in_two_batches_never_trades_twice() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 3), signals={1: BUY})
    b.process((frame,))
    cash, qty = b.cash, b.positions["BTCUSD"].qty
    again = b.process((frame,))
    assert again.orders == [] and again.fills == []
    assert b.duplicates == 1
    assert (b.cash, b.positions["BTCUSD"].qty, len(submitted(b.orders)), len(b.fills)) == (cash, qty, 1, 1)
    assert [o.status for o in b.orders] == ["submitted", "accepted", "filled"]


def test_replayed_sell_after_the_position_is_closed_is_ignored() -> None:
    b = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    b.process((frame,))
    replay, sell = make_frame(rows=range(3, 5), signals={3: SELL})
    result = b.process((replay,))
    assert result.orders == [] and b.duplicates == 1 and len(b.trades) == 1


def test_replayed_batch_never_fills_a_pending_order_before_its_decision() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    (order,) = submitted(b.process((frame,)).orders)
    replay = b.process((frame,))  # the same batch again, e.g. after an upstream restart
    assert all(fill.ts >= order.ts for fill in replay.fills)
    assert replay.fills == [] and replay.orders == [] and b.open_symbols() == {"BTCUSD"}


def test_sell_while_flat_is_a_rejected_order() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: SELL})
    result = b.process((frame,))
    sent, refused = result.orders
    assert (sent.status, sent.qty) == ("submitted", 0.0)
    assert (refused.status, refused.reason, refused.qty) == ("rejected", "no position to sell (shorts are off)", 0.0)
    assert refused.client_id == sent.client_id
    assert result.fills == [] and b.pending == {} and b.cash == 10_000.0


def test_buy_while_long_is_a_rejected_order() -> None:
    b = broker()
    frame, signals = make_frame(signals={0: BUY, 3: BUY})
    result = b.process((frame,))
    assert [(o.status, o.reason) for o in result.orders] == [
        ("submitted", ""), ("accepted", ""), ("filled", ""), ("submitted", ""), ("rejected", "already long")]
    assert len(result.fills) == 1


def test_equity_curve_has_one_point_per_bar_across_batches() -> None:
    b = broker()
    for start, stop in ((0, 2), (2, 3), (3, 5)):
        frame, signals = make_frame(rows=range(start, stop), signals=ROUND_TRIP)
        b.process((frame,))
    ts, equity = b.equity_curve()
    assert len(ts) == len(equity) == 5
    assert ts.tolist() == [close_ts(i) for i in range(5)]


def test_empty_broker_has_an_empty_equity_curve() -> None:
    ts, equity = broker().equity_curve()
    assert len(ts) == len(equity) == 0


# ---------------------------------------------------------------------------------------------
# Two symbols

A_OPEN, A_CLOSE = [20.0, 20.0, 20.0, 20.0], [20.0, 20.0, 20.0, 20.0]
B_OPEN, B_CLOSE = [50.0, 40.0, 40.0, 40.0], [50.0, 40.0, 40.0, 40.0]


def two_symbol_batch(a_signals: dict[int, str],
                     b_signals: dict[int, str]) -> tuple[tuple[BarFrame, ...], tuple[Signal, ...]]:
    a, sa = make_frame("AAA", range(4), a_signals, A_OPEN, A_CLOSE, A_OPEN, A_CLOSE)
    b, sb = make_frame("BBB", range(4), b_signals, B_OPEN, B_CLOSE, B_OPEN, B_CLOSE)
    return (a, b), sa + sb  # AAA listed first, though BBB's decision comes first in time


def test_two_symbols_are_processed_in_time_order_not_frame_order() -> None:
    b = broker(fee_bps=0.0, allocation=1.0)
    frames, signals = two_symbol_batch({2: BUY}, {0: BUY})
    result = b.process(frames)
    # BBB: decided at bar 0 (close 50): 10000 / 50 = 200; filled at bar 1's open 40: cash 10000 - 8000 = 2000.
    # AAA: decided at bar 2, after BBB's fill, so only the 2000 left: 2000 / 20 = 100.
    assert [(o.symbol, o.qty) for o in submitted(result.orders)] == [("BBB", 200.0), ("AAA", 100.0)]
    assert [(f.symbol, f.price, f.ts) for f in result.fills] == [("BBB", 40.0, close_ts(1) - H),
                                                                 ("AAA", 20.0, close_ts(3) - H)]
    assert b.cash == 0.0
    assert result.equity_ts.tolist() == [close_ts(i) for i in range(4)]
    # bar 0: all cash; bar 1 on: 2000 cash + 200 * 40; bar 3: AAA bought with the last 2000 at 20 (close 20)
    assert result.equity.tolist() == [10_000.0, 10_000.0, 10_000.0, 10_000.0]


def test_sizing_splits_equity_between_symbols_marked_at_the_decision() -> None:
    b = broker(fee_bps=0.0, allocation=0.0, n_symbols=2)
    frames, signals = two_symbol_batch({2: BUY}, {0: BUY})
    orders = submitted(b.process(frames).orders)
    # BBB: half of 10000 at 50 -> 100. Filled at 40: cash 6000, BBB worth 100 * 40 = 4000.
    # AAA at bar 2: equity 6000 + 4000 = 10000, half is 5000 (<= cash 6000) -> 5000 / 20 = 250.
    assert [(o.symbol, o.qty) for o in orders] == [("BBB", 100.0), ("AAA", 250.0)]


def test_equity_of_two_symbols_marks_each_at_its_own_close() -> None:
    b = broker(fee_bps=0.0, allocation=0.0, n_symbols=2)
    a, _ = make_frame("AAA", range(4), {}, A_OPEN, A_CLOSE, A_OPEN, A_CLOSE)
    b_close = [50.0, 45.0, 30.0, 40.0]
    bb, signals = make_frame("BBB", range(4), {0: BUY}, B_OPEN, [60.0] * 4, [30.0] * 4, b_close)
    result = b.process((a, bb))
    # 100 BBB bought at 40 (half of 10000 at the decision close 50): cash 6000, then marked at each close
    assert result.equity.tolist() == [10_000.0, 6_000.0 + 100 * 45.0, 6_000.0 + 100 * 30.0, 6_000.0 + 100 * 40.0]
    assert b.marks == {"AAA": 20.0, "BBB": 40.0}
    assert b.equity_now() == 10_000.0


# ---------------------------------------------------------------------------------------------
# Report


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 65.0, 140.0])) == pytest.approx(0.5)
    assert max_drawdown(np.array([100.0, 80.0, 120.0, 96.0])) == pytest.approx(0.2)


def test_max_drawdown_of_rising_or_empty_equity_is_zero() -> None:
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
    assert max_drawdown(np.array([])) == 0.0


def _trade(pnl: float) -> Trade:
    return Trade("BTCUSD", T0, 100.0, T0 + H, 101.0, 1.0, pnl)


def test_summary_figures_are_computed_from_equity_and_trades() -> None:
    ts = np.array([T0 + H, T0 + 2 * H, T0 + 3 * H], dtype=np.int64)
    equity = np.array([1_000.0, 1_100.0, 990.0])
    summary = summarize(1_000.0, ts, equity, [_trade(10.0), _trade(-5.0), _trade(3.0)], open_positions=1)
    assert summary == {
        "start": "2024-01-01T01:00:00Z", "end": "2024-01-01T03:00:00Z", "bars": 3, "trades": 3,
        "win_rate_pct": 66.6667, "total_return_pct": -1.0, "max_drawdown_pct": 10.0, "final_equity": 990.0,
        "initial_cash": 1_000.0, "open_positions": 1,
        "cagr_pct": None,              # two hours: under 30 days, annualising says nothing
        "sharpe": 0.0, "sortino": 0.0,  # returns +10%, -10%: mean 0
        "max_drawdown_days": 0.0417,   # one hour below the peak
        "profit_factor": 2.6,          # 13 / 5
        "avg_trade": 2.666667, "avg_trade_pct": 2.666667,  # 8 / 3 on 1 x 100 each
        "exposure_pct": None,
        "fees": 0.0,                   # none given
        "avg_holding_hours": 1.0,      # each trade held from T0 to T0 + 1 h
    }


def test_summary_ratios_on_daily_bars_by_hand() -> None:
    day = 86_400_000_000_000
    ts = np.array([T0 + i * day for i in range(4)], dtype=np.int64)
    equity = np.array([100.0, 110.0, 99.0, 108.9])  # returns +10%, -10%, +10%
    summary = summarize(100.0, ts, equity, [_trade(1.0), _trade(2.0)], open_positions=0, exposure=0.5)
    # mean 1/30, sample std sqrt(12)/30, downside RMS 0.1/sqrt(3), 365.25 daily bars a year
    assert summary["sharpe"] == pytest.approx((365.25 / 12.0) ** 0.5, abs=1e-6)
    assert summary["sortino"] == pytest.approx((365.25 / 3.0) ** 0.5, abs=1e-6)
    assert summary["cagr_pct"] is None  # three days: under 30 days, no CAGR
    assert summary["max_drawdown_days"] == 2.0  # the day-1 peak is never regained
    assert summary["max_drawdown_pct"] == pytest.approx(10.0, abs=1e-6)
    assert summary["profit_factor"] is None  # no losing trade
    assert summary["exposure_pct"] == 50.0


def test_summary_of_nothing_is_flat() -> None:
    summary = summarize(500.0, np.empty(0, dtype=np.int64), np.empty(0), [], 0)
    assert summary["start"] is None and summary["end"] is None
    assert (summary["bars"], summary["trades"], summary["win_rate_pct"]) == (0, 0, 0.0)
    assert (summary["total_return_pct"], summary["final_equity"], summary["max_drawdown_pct"]) == (0.0, 500.0, 0.0)


def test_trade_rows_use_iso_utc_times() -> None:
    (row,) = trade_rows([_trade(2.5)])
    assert row == {"symbol": "BTCUSD", "entry_time": "2024-01-01T00:00:00Z", "entry_price": 100.0,
                   "exit_time": "2024-01-01T01:00:00Z", "exit_price": 101.0, "qty": 1.0, "pnl": 2.5}


def test_summary_of_the_hand_worked_round_trip() -> None:
    b = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    b.process((frame,))
    ts, equity = b.equity_curve()
    summary = summarize(b.initial_cash, ts, equity, list(b.trades), len(b.positions))
    assert summary["trades"] == 1 and summary["win_rate_pct"] == 100.0
    assert summary["final_equity"] == pytest.approx(CASH_FLAT, abs=1e-6)
    assert summary["total_return_pct"] == pytest.approx(100.0 * (CASH_FLAT / 10_000.0 - 1.0), abs=1e-6)
    peak = CASH_LONG + Q * 107.0
    assert summary["max_drawdown_pct"] == pytest.approx(100.0 * (1.0 - CASH_FLAT / peak), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Checkpoint copies


def test_broker_copy_is_an_independent_account_that_continues_identically() -> None:
    b = broker()
    first, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    b.process((first,))
    twin = b.copy()
    rest, signals = make_frame(rows=range(2, 5), signals=ROUND_TRIP)
    original = b.process((rest,))
    assert twin.open_symbols() == {"BTCUSD"} and twin.positions == {} and twin.cash == 10_000.0  # untouched
    assert len(twin.fills) == 0 and len(twin.trades) == 0
    replayed = twin.process((rest,))
    assert replayed.fills == original.fills
    assert list(twin.trades) == list(b.trades) and twin.cash == b.cash
    assert np.array_equal(twin.equity_curve()[1], b.equity_curve()[1])


def test_broker_copy_remembers_seen_decisions() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 3), signals={1: BUY})
    b.process((frame,))
    twin = b.copy()
    assert twin.process((frame,)).orders == []
    assert twin.duplicates == 1 and b.duplicates == 0
    twin.positions["BTCUSD"].qty = 0.0
    assert b.positions["BTCUSD"].qty == pytest.approx(Q, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Kill switch

# BTC falls 20% within bar 1 after the buy fills at its open; with half the equity in BTC that is
# a 10% fall of equity, past the 5% daily limit. ETH has a limit buy far below the market.
BTC = dict(open_=[100.0, 100.0, 80.0, 80.0], high=[100.0, 100.0, 80.0, 80.0], low=[100.0, 80.0, 80.0, 80.0],
           close=[100.0, 80.0, 80.0, 80.0])
ETH = dict(open_=[50.0] * 4, high=[50.0] * 4, low=[50.0] * 4, close=[50.0] * 4)
TRIP = "daily loss 10.00% reached the limit of 5%"


def kill_switch_batch() -> tuple[tuple[BarFrame, ...], tuple[Signal, ...]]:
    btc, btc_signals = make_frame("BTCUSD", range(4), {0: BUY, 2: BUY}, **BTC)
    eth, eth_signals = make_frame("ETHUSD", range(4), {0: BUY, 3: BUY}, **ETH)
    eth_signals = (eth_signals[0]._replace(order="limit", limit_price=40.0), eth_signals[1])
    return (btc, scripted(eth, eth_signals)), btc_signals + eth_signals


def test_daily_loss_kill_switch_cancels_flattens_and_refuses() -> None:
    b = broker(fee_bps=0.0, allocation=0.5, limits=RiskLimits(daily_loss_pct=5.0))
    frames, signals = kill_switch_batch()
    result = b.process(frames)
    assert result.alerts == [TRIP]
    # bar 0: 5000 / 100 = 50 BTC at market, 5000 / 50 = 100 ETH at limit 40; bar 1: BTC fills at 100,
    # equity at its close 5000 + 50 * 80 = 9000 (-10%): the ETH order is cancelled, BTC flattened at
    # bar 2's open 80; later decisions are refused.
    kill = f"kill switch: {TRIP}"
    btc_buy = f"sma_cross:BTCUSD:1h:{close_ts(0)}:buy"
    eth_buy = f"sma_cross:ETHUSD:1h:{close_ts(0)}:buy"
    flatten = f"risk:BTCUSD:flatten:{close_ts(1)}"
    assert [(o.client_id, o.status, o.reason) for o in result.orders] == [
        (btc_buy, "submitted", ""), (btc_buy, "accepted", ""),
        (eth_buy, "submitted", ""), (eth_buy, "accepted", ""),
        (btc_buy, "filled", ""),
        (eth_buy, "cancelled", kill),
        (flatten, "accepted", f"flatten: {TRIP}"),
        (flatten, "filled", ""),
        (f"sma_cross:BTCUSD:1h:{close_ts(2)}:buy", "submitted", ""),
        (f"sma_cross:BTCUSD:1h:{close_ts(2)}:buy", "rejected", kill),
        (f"sma_cross:ETHUSD:1h:{close_ts(3)}:buy", "submitted", ""),
        (f"sma_cross:ETHUSD:1h:{close_ts(3)}:buy", "rejected", kill),
    ]
    flat_order = next(o for o in result.orders if o.client_id == flatten)
    assert (flat_order.strategy, flat_order.side, flat_order.qty) == ("risk", SELL, 50.0)
    assert [(f.client_id, f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (btc_buy, BUY, 50.0, 100.0, close_ts(1) - H), (flatten, SELL, 50.0, 80.0, close_ts(2) - H)]
    assert b.positions == {} and b.pending == {} and b.open_symbols() == set()
    assert b.cash == 9_000.0 and b.risk.halted
    assert result.equity.tolist() == [10_000.0, 9_000.0, 9_000.0, 9_000.0]
    (trade,) = b.trades
    assert trade.pnl == -1_000.0


def test_kill_switch_at_the_end_of_a_batch_flattens_in_the_next() -> None:
    b = broker(fee_bps=0.0, allocation=0.5, limits=RiskLimits(daily_loss_pct=5.0))
    frames, signals = kill_switch_batch()
    first = b.process(tuple(f.slice(0, 2) for f in frames))
    assert first.alerts == [TRIP] and first.fills[-1].side == BUY
    assert b.open_symbols() == {"BTCUSD"} and b.positions["BTCUSD"].qty == 50.0
    second = b.process(tuple(f.slice(2, 4) for f in frames))
    assert second.alerts == []
    assert [(f.side, f.price, f.ts) for f in second.fills] == [(SELL, 80.0, close_ts(2) - H)]
    assert [o.reason for o in second.orders if o.status == "rejected"] == [f"kill switch: {TRIP}"] * 2
    assert b.positions == {} and b.cash == 9_000.0


def test_kill_switch_covers_a_short_with_a_buy() -> None:
    b = broker(fee_bps=0.0, allow_short=True, limits=RiskLimits(daily_loss_pct=5.0))
    frame, signals = make_frame("BTCUSD", range(4), {0: SELL}, open_=[100.0, 100.0, 110.0, 110.0],
                                high=[100.0, 110.0, 110.0, 110.0], low=[100.0, 100.0, 110.0, 110.0],
                                close=[100.0, 110.0, 110.0, 110.0])
    result = b.process((frame,))
    # short 100 at 100 (cash 20000); at bar 1's close 110 equity is 20000 - 11000 = 9000 (-10%)
    assert result.alerts == [TRIP]
    assert [(f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        (SELL, 100.0, 100.0, close_ts(1) - H), (BUY, 100.0, 110.0, close_ts(2) - H)]
    assert result.fills[1].client_id == f"risk:BTCUSD:flatten:{close_ts(1)}"
    assert b.positions == {} and b.cash == 9_000.0 and b.trades[-1].pnl == -1_000.0


def test_a_daily_loss_limit_that_never_trips_changes_nothing() -> None:
    plain, watched = broker(), broker(limits=RiskLimits(daily_loss_pct=50.0))
    frame, signals = make_frame(signals=ROUND_TRIP)
    a, w = plain.process((frame,)), watched.process((frame,))
    assert w.alerts == [] and w.orders == a.orders and w.fills == a.fills
    assert w.equity_ts.tolist() == a.equity_ts.tolist() and np.array_equal(w.equity, a.equity)


# ---------------------------------------------------------------------------------------------
# Shorts, order kinds, latency, fixed fees


def test_sell_while_flat_opens_a_short_when_shorts_are_allowed_and_buy_covers_it() -> None:
    b = broker(allow_short=True)
    frame, signals = make_frame(signals={1: SELL, 3: BUY})
    result = b.process((frame,))
    # sized like a buy: all the equity at the signal close 104, fee included -> Q
    assert [(o.side, o.status) for o in result.orders] == [
        (SELL, "submitted"), (SELL, "accepted"), (SELL, "filled"), (BUY, "submitted"), (BUY, "accepted"),
        (BUY, "filled")]
    short, cover = result.fills
    assert (short.side, short.price, short.ts) == (SELL, 100.0, close_ts(2) - H)
    assert short.qty == pytest.approx(Q, rel=1e-12) and cover.qty == pytest.approx(Q, rel=1e-12)
    assert (cover.side, cover.price, cover.ts) == (BUY, 106.0, close_ts(4) - H)
    cash_short = 10_000.0 + Q * 100.0 - BUY_FEE  # the sell at 100 costs the same fee as the buy did
    assert result.equity.tolist() == pytest.approx(
        [10_000.0, 10_000.0, cash_short - Q * 103.0, cash_short - Q * 107.0, cash_short - Q * 106.0 - SELL_FEE],
        rel=1e-12)
    (trade,) = b.trades
    assert trade.qty == pytest.approx(-Q, rel=1e-12)
    assert trade.pnl == pytest.approx(-Q * 6.0 - BUY_FEE - SELL_FEE, rel=1e-12)  # the price rose: a loss
    assert b.positions == {} and b.cash == pytest.approx(10_000.0 + trade.pnl, rel=1e-12)


def test_short_size_follows_the_allocation_of_equity_not_cash() -> None:
    b = broker(allow_short=True, fee_bps=0.0, allocation=0.5)
    frame, signals = make_frame(signals={1: SELL})
    (order,) = submitted(b.process((frame,)).orders)
    assert order.qty == pytest.approx(5_000.0 / 104.0, rel=1e-12)
    assert b.positions["BTCUSD"].qty == pytest.approx(-5_000.0 / 104.0, rel=1e-12)


def test_a_second_sell_while_short_is_refused() -> None:
    b = broker(allow_short=True)
    frame, signals = make_frame(signals={0: SELL, 2: SELL})
    result = b.process((frame,))
    assert [(o.status, o.reason) for o in result.orders if o.status in ("rejected", "filled")] == [
        ("filled", ""), ("rejected", "already short")]


LIMIT_LOW = [99.0, 100.0, 99.8, 98.0, 105.0]  # bar 2 stays above 99; bar 3 trades down to 98


@pytest.mark.parametrize("cuts", [(), (2,), (3,), (2, 3, 4)])
def test_limit_order_fills_when_a_later_bar_reaches_it_at_the_limit(cuts: tuple[int, ...]) -> None:
    b = broker()
    fills, orders, bounds = [], [], [0, *cuts, 5]
    for start, stop in zip(bounds, bounds[1:]):
        frame, signals = make_frame(rows=range(start, stop), signals={1: BUY}, low=LIMIT_LOW)
        signals = tuple(s._replace(order="limit", limit_price=99.0) for s in signals)
        result = b.process((scripted(frame, signals),))
        fills += result.fills
        orders += result.orders
        if stop <= 3:
            assert result.fills == [] and b.open_symbols() == {"BTCUSD"}  # bar 0's low 99 is before the decision
    (fill,) = fills
    assert (fill.price, fill.ts) == (99.0, close_ts(3) - H)  # at the limit, though bar 3 opened at 103
    assert fill.qty == pytest.approx(Q, rel=1e-12)  # sized at the signal's close
    assert fill.fee == pytest.approx(Q * 99.0 * 0.001, rel=1e-12)
    assert [(o.kind, o.status, o.limit_price) for o in orders] == [
        ("limit", "submitted", 99.0), ("limit", "accepted", 99.0), ("limit", "filled", 99.0)]
    assert b.pending == {}


def test_limit_order_never_reached_stays_open() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: BUY})
    signals = tuple(s._replace(order="limit", limit_price=90.0) for s in signals)
    result = b.process((scripted(frame, signals),))
    assert result.fills == [] and [o.status for o in result.orders] == ["submitted", "accepted"]
    assert b.open_symbols() == {"BTCUSD"} and b.cash == 10_000.0


@pytest.mark.parametrize("cuts", [(), (2,), (3,), (2, 3)])
def test_latency_of_one_bar_fills_one_bar_later(cuts: tuple[int, ...]) -> None:
    b = broker(latency_bars=1)
    fills, bounds = [], [0, *cuts, 5]
    for start, stop in zip(bounds, bounds[1:]):
        frame, signals = make_frame(rows=range(start, stop), signals=ROUND_TRIP)
        fills += b.process((frame,)).fills
    (buy,) = fills  # the sell decided at bar 3 would fill at bar 5, not in the data
    assert (buy.price, buy.ts) == (103.0, close_ts(3) - H)  # bar 3's open, not bar 2's
    assert buy.qty == pytest.approx(Q, rel=1e-12)


def test_latency_in_bars_also_holds_bar_by_bar_under_a_loss_limit() -> None:
    b = broker(latency_bars=1, limits=RiskLimits(daily_loss_pct=50.0))
    frame, signals = make_frame(signals={1: BUY})
    (fill,) = b.process((frame,)).fills
    assert (fill.price, fill.ts) == (103.0, close_ts(3) - H)


def test_replayed_batch_never_fills_inside_the_latency_window() -> None:
    b = broker(latency_bars=1)
    frame, signals = make_frame(rows=range(0, 3), signals={1: BUY})
    assert b.process((frame,)).fills == []  # bar 2 skipped
    replay = b.process((frame,))  # the same batch again, e.g. after an upstream restart
    assert replay.fills == []
    rest, _ = make_frame(rows=range(3, 5))
    (fill,) = b.process((rest,)).fills
    assert (fill.price, fill.ts) == (103.0, close_ts(3) - H)


def test_fixed_fee_is_added_to_each_fill() -> None:
    b = broker(fee_fixed=5.0)
    frame, signals = make_frame(signals=ROUND_TRIP)
    buy, sell = b.process((frame,)).fills
    q = (10_000.0 - 5.0) / (104.0 * 1.001)  # the fixed fee is kept out of the budget
    assert buy.qty == pytest.approx(q, rel=1e-12) and sell.qty == pytest.approx(q, rel=1e-12)
    assert buy.fee == pytest.approx(q * 100.0 * 0.001 + 5.0, rel=1e-12)
    assert sell.fee == pytest.approx(q * 106.0 * 0.001 + 5.0, rel=1e-12)
    (trade,) = b.trades
    assert trade.pnl == pytest.approx(q * 6.0 - buy.fee - sell.fee, rel=1e-12)
    assert b.cash == pytest.approx(10_000.0 + trade.pnl, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Restoring from the store


def test_restore_rebuilds_the_account_from_stored_orders_and_fills() -> None:
    original = broker()
    frame, signals = make_frame(rows=range(0, 4), signals={0: SELL, 1: BUY, 3: SELL})
    original.process((frame,))  # sell at 0 refused; buy filled at bar 2; sell at 3 still open
    stored = list({o.client_id: o for o in original.orders}.values())  # the store keeps each order's last state
    assert [o.status for o in stored] == ["rejected", "filled", "accepted"]
    restored = broker()
    restored.restore(stored, list(original.fills), {"BTCUSD": 107.0})
    assert restored.cash == pytest.approx(CASH_LONG, rel=1e-12) and restored.cash == original.cash
    (symbol, position), = restored.positions.items()
    assert symbol == "BTCUSD" and position.qty == pytest.approx(Q, rel=1e-12) and position.avg_price == 100.0
    assert restored.marks == {"BTCUSD": 107.0}
    assert restored.equity_now() == pytest.approx(original.equity_now(), rel=1e-12)
    assert set(restored.pending) == set(original.pending) == {f"sma_cross:BTCUSD:1h:{close_ts(3)}:sell"}
    assert restored.open_symbols() == {"BTCUSD"}
    # the whole history again: every decision is known, only the open sell fills (bar 4's open)
    frame, signals = make_frame(rows=range(0, 5), signals={0: SELL, 1: BUY, 3: SELL})
    result = restored.process((frame,))
    assert submitted(result.orders) == [] and restored.duplicates == 3
    (fill,) = result.fills
    assert (fill.side, fill.price, fill.ts) == (SELL, 106.0, close_ts(4) - H)
    assert restored.cash == pytest.approx(CASH_FLAT, rel=1e-12)
    rest, signals = make_frame(rows=range(3, 5), signals={3: SELL})
    assert original.process((rest,)).fills == result.fills
    assert restored.cash == original.cash and restored.positions == original.positions == {}


def test_restore_replays_fills_in_time_order() -> None:
    original = broker(fee_bps=0.0, allocation=0.0, n_symbols=2)
    frames, signals = two_symbol_batch({0: BUY, 2: SELL}, {0: BUY})
    original.process(frames)
    restored = broker(fee_bps=0.0, allocation=0.0, n_symbols=2)
    restored.restore(list({o.client_id: o for o in original.orders}.values()), list(original.fills)[::-1], {})
    assert restored.cash == original.cash
    assert {s: (p.qty, p.avg_price) for s, p in restored.positions.items()} == {
        s: (p.qty, p.avg_price) for s, p in original.positions.items()}
    assert restored.pending == {} and list(restored.trades) == list(original.trades)


# ---------------------------------------------------------------------------------------------
# Ticks


def test_order_accepted_in_one_batch_fills_at_the_ask_of_the_first_tick_of_the_next() -> None:
    b = broker(allocation=0.5)
    eth, eth_signals = make_frame("ETHUSD", range(0, 2), {1: BUY})
    b.process((eth,))  # batch 1: an ETH order, open
    after = close_ts(1)
    btc, btc_signals = make_frame("BTCUSD", range(0, 2), {1: BUY})
    ticks_k = (Tick("ETHUSD", after + 1, 49.0, 50.0, 49.5), Tick("BTCUSD", after + 2, 98.0, 98.5, 98.2),
               Tick("BTCUSD", after + 3, 97.0, 97.5, 97.2))
    result = b.process((btc,), ticks_k)  # batch 2: the ETH order fills on its tick; BTC decided
    assert [(f.symbol, f.price, f.ts) for f in result.fills] == [("ETHUSD", 50.0, after + 1)]
    assert b.open_symbols() == {"BTCUSD"}  # never on the BTC ticks of the batch that decided it
    (btc_order,) = submitted(result.orders)
    ticks_k1 = (Tick("ETHUSD", after + 10, 51.0, 51.5, 51.2), Tick("BTCUSD", after + 11, 101.0, 101.5, 101.2),
                Tick("BTCUSD", after + 12, 100.0, 100.5, 100.2))
    result = b.process((), ticks_k1)  # batch 3: ticks only
    (fill,) = result.fills
    assert (fill.symbol, fill.side, fill.price, fill.ts) == ("BTCUSD", BUY, 101.5, after + 11)
    assert fill.qty == btc_order.qty
    assert fill.fee == pytest.approx(fill.qty * 101.5 * 0.001, rel=1e-12)
    assert [o.status for o in result.orders] == ["filled"] and b.pending == {}


def test_sell_on_ticks_fills_at_the_bid_and_trade_only_ticks_at_last() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 4), signals={1: BUY, 3: SELL})
    b.process((frame,))
    qty = b.positions["BTCUSD"].qty
    result = b.process((), (Tick("BTCUSD", close_ts(3) + 1, 110.0, 110.5, 110.2),))
    (fill,) = result.fills
    assert (fill.side, fill.price, fill.qty) == (SELL, 110.0, qty)
    b2 = broker()
    b2.process((frame,))
    (fill,) = b2.process((), (Tick("BTCUSD", close_ts(3) + 1, float("nan"), float("nan"), 109.0),)).fills
    assert fill.price == 109.0


def test_cagr_compounds_the_return_over_the_years_covered() -> None:
    day = 86_400_000_000_000
    ts = np.array([T0, T0 + 365 * day // 4, T0 + 365 * day // 2], dtype=np.int64)   # half a year (182.5 days)
    summary = summarize(100.0, ts, np.array([100.0, 105.0, 110.25]), [], 0)
    years = (365 * day // 2) / (365.25 * day)
    assert summary["cagr_pct"] == pytest.approx(100.0 * (1.1025 ** (1.0 / years) - 1.0), abs=1e-6)  # rounded to 6


# ---------------------------------------------------------------------------------------------
# Write-ahead


def test_written_ahead_an_order_fills_only_after_the_store_committed_it() -> None:
    b = PaperBroker(BrokerConfig(cash=10_000.0, allocation=1.0), write_ahead=True)
    frame, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    decided = b.process((frame,))  # the order is accepted and waits for its commit
    assert decided.mark == 1 and b.unconfirmed() == 1
    after = close_ts(1)
    waiting = b.process((), (Tick("BTCUSD", after + 1, 98.0, 98.5, 98.2),))
    assert waiting.fills == [] and waiting.mark == 0 and b.open_symbols() == {"BTCUSD"}  # not committed: no fill
    assert b.confirm(1) == 1 and b.unconfirmed() == 0
    (fill,) = b.process((), (Tick("BTCUSD", after + 2, 99.0, 99.5, 99.2),)).fills
    assert (fill.side, fill.price, fill.ts) == (BUY, 99.5, after + 2)
    # a checkpoint copy keeps what waits for a commit
    b2 = PaperBroker(BrokerConfig(cash=10_000.0, allocation=1.0), write_ahead=True)
    b2.process((frame,))
    twin = b2.copy()
    assert twin.unconfirmed() == 1 and twin.confirm(0) == 0 and twin.confirm(1) == 1


@pytest.mark.parametrize("loss_limit", [0.0, 50.0])  # with a loss limit, a batch is processed bar by bar
def test_written_ahead_bars_already_in_the_deciding_batch_fill_as_without(loss_limit: float) -> None:
    frame, signals = make_frame(signals=ROUND_TRIP)
    plain = broker(limits=RiskLimits(daily_loss_pct=loss_limit))
    ahead = PaperBroker(BrokerConfig(cash=10_000.0, fee_bps=10.0, slippage_bps=0.0, allocation=1.0,
                                     limits=RiskLimits(daily_loss_pct=loss_limit)), write_ahead=True)
    expected = plain.process((frame,))
    result = ahead.process((frame,))  # bars already seen are history: stored with their fills
    assert result.fills == expected.fills and len(result.fills) == 2
    assert result.orders == expected.orders and result.mark == 0


def candidates(frame: BarFrame, buy: list[int], sell: list[int]) -> BarFrame:
    """``frame`` with a long-only rule's candidates: buys at ``buy``, sells at ``sell``."""
    return dataclasses.replace(frame, decider=Candidates(
        "sma_cross", (), frame.symbol, frame.timeframe, frame.ts, frame.close, tuple(buy), tuple(sell),
        (("close", frame.close),), lambda side, i, inputs: f"{side} at {inputs['close'][i]:g}"))


RISING = [100.0, 100.0, 100.0, 250.0, 250.0, 250.0, 250.0]


def test_the_position_the_account_holds_decides_not_the_one_the_strategy_assumed() -> None:
    # bar 1's buy (96 units) is refused by max_position 50, so the account stays flat: the buy
    # candidate at bar 3 (40 units at 250) is taken, and bar 5's sell sells what was bought
    b = broker(limits=RiskLimits(max_position=50.0))
    frame, _ = make_frame(rows=range(7), open_=RISING, high=RISING, low=RISING, close=RISING)
    result = b.process((candidates(frame, [1, 3, 4], [2, 5]),))
    assert [(o.ts, o.side, o.status) for o in result.orders if o.status in ("rejected", "filled")] == [
        (close_ts(1), BUY, "rejected"), (close_ts(3), BUY, "filled"), (close_ts(5), SELL, "filled")]
    # the sell candidate at bar 2 (flat) and the buy at bar 4 (long) are not decisions: no order, no signal
    assert [(s.ts, s.side, s.reason) for s in result.signals] == [
        (close_ts(1), BUY, "buy at 100"), (close_ts(3), BUY, "buy at 250"), (close_ts(5), SELL, "sell at 250")]
    assert b.positions == {}


@pytest.mark.parametrize("cuts", [(), (1,), (2,), (3,), (4,), (5,), (1, 2, 3, 4, 5, 6)])
def test_candidates_give_the_same_orders_however_the_bars_are_batched(cuts: tuple[int, ...]) -> None:
    whole = broker(limits=RiskLimits(max_position=50.0))
    frame, _ = make_frame(rows=range(7), open_=RISING, high=RISING, low=RISING, close=RISING)
    frame = candidates(frame, [1, 3, 4], [2, 5])
    expected = whole.process((frame,))
    parts = broker(limits=RiskLimits(max_position=50.0))
    orders, bounds = [], [0, *cuts, 7]
    for start, stop in zip(bounds, bounds[1:]):
        orders += parts.process((frame.slice(start, stop),)).orders
    assert orders == expected.orders and parts.cash == whole.cash
