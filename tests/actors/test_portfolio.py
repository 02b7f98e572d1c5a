"""The portfolio: signed positions, average prices, realised PnL, trades, cash and equity by hand."""

from __future__ import annotations

import pytest

from actors.executor.portfolio import Portfolio, Trade
from messages.trading import BUY, SELL, Fill

S = "BTCUSD"


def fill(side: str, qty: float, price: float, fee: float, ts: int, symbol: str = S) -> Fill:
    return Fill(f"c{ts}", symbol, side, qty, price, fee, ts)


def test_opening_a_long_takes_cash_and_records_the_position() -> None:
    p = Portfolio(10_000.0)
    assert p.apply(fill(BUY, 10.0, 100.0, 1.0, 1)) is None
    assert p.cash == 10_000.0 - 1_000.0 - 1.0
    pos = p.positions[S]
    assert (pos.qty, pos.avg_price, pos.entry_ts, pos.entry_fees) == (10.0, 100.0, 1, 1.0)
    assert p.qty(S) == 10.0 and p.qty("ETHUSD") == 0.0
    assert p.fees == 1.0 and p.realized == 0.0 and list(p.trades) == []


def test_adding_to_a_long_averages_the_price() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1))
    assert p.apply(fill(BUY, 30.0, 120.0, 3.6, 2)) is None
    pos = p.positions[S]
    # (10 * 100 + 30 * 120) / 40 = 4600 / 40 = 115
    assert pos.qty == 40.0 and pos.avg_price == pytest.approx(115.0, rel=1e-12)
    assert pos.entry_ts == 1 and pos.entry_fees == pytest.approx(4.6, rel=1e-12)
    assert p.cash == pytest.approx(10_000.0 - 1_000.0 - 1.0 - 3_600.0 - 3.6, rel=1e-12)


def test_partial_reduce_realises_pnl_without_a_trade() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 20.0, 100.0, 2.0, 1))
    assert p.apply(fill(SELL, 5.0, 110.0, 0.55, 2)) is None
    pos = p.positions[S]
    assert pos.qty == 15.0 and pos.avg_price == 100.0  # the average of what is left does not move
    assert p.realized == pytest.approx(50.0, rel=1e-12)  # 5 * (110 - 100), before fees
    assert list(p.trades) == []
    assert p.cash == pytest.approx(10_000.0 - 2_000.0 - 2.0 + 550.0 - 0.55, rel=1e-12)


def test_closing_a_long_records_a_trade_net_of_both_sides_fees() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1))
    trade = p.apply(fill(SELL, 10.0, 110.0, 1.1, 2))
    # 10 * (110 - 100) = 100, minus fees 1.0 + 1.1
    assert trade == Trade(S, 1, 100.0, 2, 110.0, 10.0, pytest.approx(97.9, rel=1e-12))
    assert list(p.trades) == [trade]
    assert p.positions == {}
    assert p.cash == pytest.approx(10_000.0 + 97.9, rel=1e-12)
    assert p.realized == pytest.approx(100.0, rel=1e-12) and p.fees == pytest.approx(2.1, rel=1e-12)


def test_trade_after_adds_and_a_partial_reduce_counts_every_fee_once() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1))
    p.apply(fill(BUY, 10.0, 110.0, 1.1, 2))      # 20 @ 105
    p.apply(fill(SELL, 5.0, 120.0, 0.6, 3))      # realises 5 * 15 = 75
    trade = p.apply(fill(SELL, 15.0, 100.0, 1.5, 4))  # realises 15 * -5 = -75
    assert trade is not None
    assert (trade.entry_time, trade.entry_price, trade.exit_time, trade.exit_price) == (1, 105.0, 4, 100.0)
    # gross 75 - 75 = 0; fees 1 + 1.1 + 0.6 + 1.5 = 4.2
    assert trade.pnl == pytest.approx(-4.2, rel=1e-12)
    assert p.cash == pytest.approx(10_000.0 - 4.2, rel=1e-12)  # the only trade explains all the change


def test_short_open_and_cover_profits_when_the_price_falls() -> None:
    p = Portfolio(10_000.0)
    assert p.apply(fill(SELL, 10.0, 100.0, 1.0, 1)) is None
    pos = p.positions[S]
    assert (pos.qty, pos.avg_price) == (-10.0, 100.0)
    assert p.cash == 10_000.0 + 1_000.0 - 1.0
    p.marks[S] = 90.0
    assert p.unrealized() == pytest.approx(100.0, rel=1e-12)  # -10 * (90 - 100)
    assert p.equity() == pytest.approx(10_999.0 - 900.0, rel=1e-12)
    trade = p.apply(fill(BUY, 10.0, 90.0, 0.9, 2))
    assert trade == Trade(S, 1, 100.0, 2, 90.0, -10.0, pytest.approx(100.0 - 1.0 - 0.9, rel=1e-12))
    assert p.positions == {}
    assert p.cash == pytest.approx(10_000.0 + 98.1, rel=1e-12)


def test_short_cover_loses_when_the_price_rises() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(SELL, 10.0, 100.0, 0.0, 1))
    trade = p.apply(fill(BUY, 10.0, 104.0, 0.0, 2))
    assert trade is not None and trade.pnl == pytest.approx(-40.0, rel=1e-12) and trade.qty == -10.0
    assert p.cash == pytest.approx(9_960.0, rel=1e-12)


def test_adding_to_a_short_averages_the_price() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(SELL, 10.0, 100.0, 0.0, 1))
    p.apply(fill(SELL, 10.0, 90.0, 0.0, 2))
    assert p.positions[S].qty == -20.0 and p.positions[S].avg_price == pytest.approx(95.0, rel=1e-12)


def test_flip_long_to_short_closes_the_trade_and_opens_the_remainder() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1))
    trade = p.apply(fill(SELL, 15.0, 110.0, 1.65, 2))
    # closes 10 of the 15: 10 * 10 = 100, minus the entry fee 1.0 and 10/15 of 1.65 = 1.1
    assert trade == Trade(S, 1, 100.0, 2, 110.0, 10.0, pytest.approx(97.9, rel=1e-12))
    pos = p.positions[S]
    assert pos.qty == pytest.approx(-5.0, rel=1e-12) and pos.avg_price == 110.0 and pos.entry_ts == 2
    assert pos.entry_fees == pytest.approx(0.55, rel=1e-12)  # the remaining third of the fee
    assert p.cash == pytest.approx(10_000.0 - 1_000.0 - 1.0 + 1_650.0 - 1.65, rel=1e-12)
    # cover the new short at 100: 5 * 10 = 50, minus 0.55 and 0.5
    cover = p.apply(fill(BUY, 5.0, 100.0, 0.5, 3))
    assert cover == Trade(S, 2, 110.0, 3, 100.0, pytest.approx(-5.0, rel=1e-12), pytest.approx(48.95, rel=1e-12))
    assert p.positions == {}
    assert p.cash == pytest.approx(10_000.0 + 97.9 + 48.95, rel=1e-12)
    assert sum(t.pnl for t in p.trades) == pytest.approx(p.cash - 10_000.0, rel=1e-12)


def test_flip_short_to_long() -> None:
    p = Portfolio(1_000.0)
    p.apply(fill(SELL, 2.0, 50.0, 0.0, 1))
    trade = p.apply(fill(BUY, 5.0, 40.0, 0.0, 2))
    assert trade is not None and trade.qty == -2.0 and trade.pnl == pytest.approx(20.0, rel=1e-12)
    assert (p.positions[S].qty, p.positions[S].avg_price) == (3.0, 40.0)
    assert p.cash == pytest.approx(1_000.0 + 100.0 - 200.0, rel=1e-12)


def test_cash_and_equity_across_two_symbols() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1, "AAA"))
    p.apply(fill(SELL, 20.0, 50.0, 1.0, 2, "BBB"))
    assert p.cash == pytest.approx(10_000.0 - 1_001.0 + 999.0, rel=1e-12)  # 9998
    assert p.equity() == pytest.approx(9_998.0 + 1_000.0 - 1_000.0, rel=1e-12)  # unmarked: at average prices
    p.marks.update(AAA=120.0, BBB=55.0)
    # 9998 + 10 * 120 - 20 * 55 = 9998 + 1200 - 1100
    assert p.equity() == pytest.approx(10_098.0, rel=1e-12)
    # AAA: 10 * 20 = 200; BBB: -20 * 5 = -100
    assert p.unrealized() == pytest.approx(100.0, rel=1e-12)
    assert p.equity() == pytest.approx(p.initial_cash - p.fees + p.realized + p.unrealized(), rel=1e-12)


def test_unrealised_pnl_is_zero_at_the_average_price_and_without_positions() -> None:
    p = Portfolio(500.0)
    assert p.unrealized() == 0.0 and p.equity() == 500.0
    p.apply(fill(BUY, 2.0, 100.0, 0.0, 1))
    p.marks[S] = 100.0
    assert p.unrealized() == 0.0 and p.equity() == 500.0
    p.marks[S] = 90.0
    assert p.unrealized() == pytest.approx(-20.0, rel=1e-12) and p.equity() == pytest.approx(480.0, rel=1e-12)


def test_keep_trades_bounds_the_history() -> None:
    p = Portfolio(1_000.0, keep_trades=2)
    for i in range(3):
        p.apply(fill(BUY, 1.0, 10.0, 0.0, 2 * i))
        p.apply(fill(SELL, 1.0, 11.0 + i, 0.0, 2 * i + 1))
    assert [t.exit_price for t in p.trades] == [12.0, 13.0]


def test_copy_is_independent() -> None:
    p = Portfolio(10_000.0)
    p.apply(fill(BUY, 10.0, 100.0, 1.0, 1))
    p.apply(fill(SELL, 10.0, 110.0, 1.0, 2))
    p.apply(fill(BUY, 5.0, 100.0, 0.5, 3))
    p.marks[S] = 100.0
    twin = p.copy()
    twin.positions[S].qty = 99.0
    twin.positions[S].avg_price = 1.0
    twin.marks[S] = 1.0
    twin.apply(fill(SELL, 99.0, 2.0, 0.0, 4))
    twin.cash = 0.0
    assert p.positions[S].qty == 5.0 and p.positions[S].avg_price == 100.0
    assert p.marks == {S: 100.0}
    assert len(p.trades) == 1 and len(twin.trades) == 2
    assert p.cash == pytest.approx(10_000.0 + 98.0 - 500.5, rel=1e-12)
    # and the other way round
    q = p.copy()
    p.apply(fill(SELL, 5.0, 120.0, 0.0, 5))
    assert q.positions[S].qty == 5.0 and len(q.trades) == 1 and S in q.positions
