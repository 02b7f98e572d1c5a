"""Paper broker (next-open fills, fees, cash, equity, idempotence) and the backtest report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actors.executor.broker import BrokerConfig, PaperBroker
from actors.executor.portfolio import Trade
from actors.executor.report import max_drawdown, summarize, trade_rows
from messages.market import BarFrame, readonly
from messages.trading import BUY, SELL, Signal

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
    """Bars ``rows`` of the given columns, with a signal column and the matching Signals."""
    rows = list(rows)
    frame = BarFrame.from_columns(
        symbol, "1h", ts=[close_ts(i) for i in rows], open=[open_[i] for i in rows], high=[high[i] for i in rows],
        low=[low[i] for i in rows], close=[close[i] for i in rows], volume=[1.0] * len(rows),
    )
    signals = signals or {}
    column = np.array([{BUY: 1, SELL: -1}.get(signals.get(i, ""), 0) for i in rows], dtype=np.int8)
    made = tuple(Signal("sma_cross", symbol, "1h", close_ts(i), side, close[i], "test")
                 for i, side in sorted(signals.items()) if i in rows)
    return dataclasses.replace(frame, signal=readonly(column)), made


def broker(**kwargs: float) -> PaperBroker:
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
    result = b.process((frame,), signals)
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
    buy, sell = b.process((frame,), signals).fills
    assert buy.fee == pytest.approx(buy.qty * buy.price * 0.001, rel=1e-12)
    assert buy.fee == pytest.approx(9.605778836548069, rel=1e-12)
    assert sell.fee == pytest.approx(sell.qty * sell.price * 0.001, rel=1e-12)
    assert sell.fee == pytest.approx(10.182125566740954, rel=1e-12)


def test_cash_position_and_equity_over_five_bars_match_hand_arithmetic() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: BUY})
    result = b.process((frame,), signals)
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
    result = b.process((frame,), signals)
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
    buy, sell = b.process((frame,), signals).fills
    assert buy.price == pytest.approx(100.0 * 1.005, rel=1e-12)
    assert sell.price == pytest.approx(106.0 * 0.995, rel=1e-12)


def test_signal_on_the_last_bar_of_a_batch_fills_on_the_first_bar_of_the_next() -> None:
    b = broker()
    first, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    result = b.process((first,), signals)
    assert [o.status for o in result.orders] == ["submitted", "accepted"]
    assert result.fills == [] and b.open_symbols() == {"BTCUSD"}
    second, signals = make_frame(rows=range(2, 5))
    result = b.process((second,), signals)
    (fill,) = result.fills
    assert (fill.price, fill.ts) == (100.0, close_ts(2) - H)
    assert [o.status for o in result.orders] == ["filled"]  # no new decision, only the fill
    assert submitted(result.orders) == [] and b.pending == {} and b.open_symbols() == set()


@pytest.mark.parametrize("cuts", [(1,), (2,), (3,), (4,), (1, 2, 3, 4), (2, 4)])
def test_batching_does_not_change_fills_trades_or_equity(cuts: tuple[int, ...]) -> None:
    whole = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    w = whole.process((frame,), signals)
    parts = broker()
    fills, bounds = [], [0, *cuts, 5]
    for start, stop in zip(bounds, bounds[1:]):
        frame, signals = make_frame(rows=range(start, stop), signals=ROUND_TRIP)
        fills += parts.process((frame,), signals).fills
    assert fills == w.fills
    assert list(parts.trades) == list(whole.trades)
    ts, equity = parts.equity_curve()
    assert ts.tolist() == w.equity_ts.tolist()
    assert np.array_equal(equity, w.equity)
    assert parts.cash == whole.cash


def test_same_signal_in_two_batches_never_trades_twice() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 3), signals={1: BUY})
    b.process((frame,), signals)
    cash, qty = b.cash, b.positions["BTCUSD"].qty
    again = b.process((frame,), signals)
    assert again.orders == [] and again.fills == []
    assert b.duplicates == 1
    assert (b.cash, b.positions["BTCUSD"].qty, len(submitted(b.orders)), len(b.fills)) == (cash, qty, 1, 1)
    assert [o.status for o in b.orders] == ["submitted", "accepted", "filled"]


def test_replayed_sell_after_the_position_is_closed_is_ignored() -> None:
    b = broker()
    frame, signals = make_frame(signals=ROUND_TRIP)
    b.process((frame,), signals)
    replay, sell = make_frame(rows=range(3, 5), signals={3: SELL})
    result = b.process((replay,), sell)
    assert result.orders == [] and b.duplicates == 1 and len(b.trades) == 1


def test_replayed_batch_never_fills_a_pending_order_before_its_decision() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 2), signals={1: BUY})
    (order,) = submitted(b.process((frame,), signals).orders)
    replay = b.process((frame,), signals)  # the same batch again, e.g. after an upstream restart
    assert all(fill.ts >= order.ts for fill in replay.fills)
    assert replay.fills == [] and replay.orders == [] and b.open_symbols() == {"BTCUSD"}


def test_sell_while_flat_is_a_rejected_order() -> None:
    b = broker()
    frame, signals = make_frame(signals={1: SELL})
    result = b.process((frame,), signals)
    sent, refused = result.orders
    assert (sent.status, sent.qty) == ("submitted", 0.0)
    assert (refused.status, refused.reason, refused.qty) == ("rejected", "no position to sell (shorts are off)", 0.0)
    assert refused.client_id == sent.client_id
    assert result.fills == [] and b.pending == {} and b.cash == 10_000.0


def test_buy_while_long_is_a_rejected_order() -> None:
    b = broker()
    frame, signals = make_frame(signals={0: BUY, 3: BUY})
    result = b.process((frame,), signals)
    assert [(o.status, o.reason) for o in result.orders] == [
        ("submitted", ""), ("accepted", ""), ("filled", ""), ("submitted", ""), ("rejected", "already long")]
    assert len(result.fills) == 1


def test_equity_curve_has_one_point_per_bar_across_batches() -> None:
    b = broker()
    for start, stop in ((0, 2), (2, 3), (3, 5)):
        frame, signals = make_frame(rows=range(start, stop), signals=ROUND_TRIP)
        b.process((frame,), signals)
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
    result = b.process(frames, signals)
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
    orders = submitted(b.process(frames, signals).orders)
    # BBB: half of 10000 at 50 -> 100. Filled at 40: cash 6000, BBB worth 100 * 40 = 4000.
    # AAA at bar 2: equity 6000 + 4000 = 10000, half is 5000 (<= cash 6000) -> 5000 / 20 = 250.
    assert [(o.symbol, o.qty) for o in orders] == [("BBB", 100.0), ("AAA", 250.0)]


def test_equity_of_two_symbols_marks_each_at_its_own_close() -> None:
    b = broker(fee_bps=0.0, allocation=0.0, n_symbols=2)
    a, _ = make_frame("AAA", range(4), {}, A_OPEN, A_CLOSE, A_OPEN, A_CLOSE)
    b_close = [50.0, 45.0, 30.0, 40.0]
    bb, signals = make_frame("BBB", range(4), {0: BUY}, B_OPEN, [60.0] * 4, [30.0] * 4, b_close)
    result = b.process((a, bb), signals)
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
    }


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
    b.process((frame,), signals)
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
    b.process((first,), signals)
    twin = b.copy()
    rest, signals = make_frame(rows=range(2, 5), signals=ROUND_TRIP)
    original = b.process((rest,), signals)
    assert twin.open_symbols() == {"BTCUSD"} and twin.positions == {} and twin.cash == 10_000.0  # untouched
    assert len(twin.fills) == 0 and len(twin.trades) == 0
    replayed = twin.process((rest,), signals)
    assert replayed.fills == original.fills
    assert list(twin.trades) == list(b.trades) and twin.cash == b.cash
    assert np.array_equal(twin.equity_curve()[1], b.equity_curve()[1])


def test_broker_copy_remembers_seen_decisions() -> None:
    b = broker()
    frame, signals = make_frame(rows=range(0, 3), signals={1: BUY})
    b.process((frame,), signals)
    twin = b.copy()
    assert twin.process((frame,), signals).orders == []
    assert twin.duplicates == 1 and b.duplicates == 0
    twin.positions["BTCUSD"].qty = 0.0
    assert b.positions["BTCUSD"].qty == pytest.approx(Q, rel=1e-12)
