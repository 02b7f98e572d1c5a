"""The risk engine: pre-trade limits (each refusal names its limit) and the daily loss kill switch."""

from __future__ import annotations

from actors.executor.risk import DAY_NS, RiskEngine, RiskLimits
from messages.trading import BUY, SELL, Order

S_NS = 1_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def order(side: str = BUY, qty: float = 1.0, ts: int = T0) -> Order:
    return Order(f"c{ts}{side}", "test", "BTCUSD", side, qty, ts)


# -- pre-trade limits -----------------------------------------------------------------------------


def test_no_limits_accept_everything() -> None:
    risk = RiskEngine(RiskLimits())
    for i in range(1_000):
        assert risk.check(order(qty=1e9, ts=T0 + i), 1e9, 1e9, 10_000) is None
    assert risk.rejections == 0 and not risk.halted


def test_max_position_refuses_what_would_exceed_it() -> None:
    risk = RiskEngine(RiskLimits(max_position=5.0))
    assert risk.check(order(qty=3.0), 2.0, 100.0, 0) is None          # 5 after: at the limit
    reason = risk.check(order(qty=3.5), 2.0, 100.0, 0)                  # 5.5 after
    assert reason is not None and reason.startswith("max position 5 ") and "5.5" in reason
    assert risk.rejections == 1


def test_max_position_counts_the_absolute_quantity_after_the_order() -> None:
    risk = RiskEngine(RiskLimits(max_position=5.0))
    assert risk.check(order(SELL, qty=8.0), 4.0, 100.0, 0) is None      # long 4 -> short 4
    assert "max position" in risk.check(order(SELL, qty=10.0), 4.0, 100.0, 0)  # -> short 6
    assert risk.check(order(BUY, qty=2.0), -6.0, 100.0, 0) is None      # reduces a short: 4 after


def test_max_notional_refuses_quantity_times_price_above_it() -> None:
    risk = RiskEngine(RiskLimits(max_notional=1_000.0))
    assert risk.check(order(qty=10.0), 0.0, 100.0, 0) is None           # 1000 exactly
    reason = risk.check(order(qty=10.0), 1.0, 100.0, 0)                 # 11 * 100 = 1100
    assert reason == "max notional 1,000.00 exceeded (1,100.00)"


def test_max_open_orders_refuses_once_reached() -> None:
    risk = RiskEngine(RiskLimits(max_open_orders=2))
    assert risk.check(order(), 0.0, 100.0, 1) is None
    assert risk.check(order(), 0.0, 100.0, 2) == "max open orders 2 reached"
    assert risk.check(order(), 0.0, 100.0, 3) == "max open orders 2 reached"


def test_max_orders_per_minute_by_order_timestamps() -> None:
    risk = RiskEngine(RiskLimits(max_orders_per_minute=2))
    assert risk.check(order(ts=T0), 0.0, 100.0, 0) is None
    assert risk.check(order(ts=T0 + 10 * S_NS), 0.0, 100.0, 0) is None
    assert risk.check(order(ts=T0 + 30 * S_NS), 0.0, 100.0, 0) == "max order rate 2/min reached"
    assert risk.check(order(ts=T0 + 59 * S_NS), 0.0, 100.0, 0) == "max order rate 2/min reached"
    # 60 s after the first order its slot is free again (the second's is not)
    assert risk.check(order(ts=T0 + 60 * S_NS), 0.0, 100.0, 0) is None
    assert risk.check(order(ts=T0 + 61 * S_NS), 0.0, 100.0, 0) == "max order rate 2/min reached"
    assert risk.check(order(ts=T0 + 70 * S_NS), 0.0, 100.0, 0) is None  # the second's slot frees at 70 s


def test_refused_orders_do_not_use_a_rate_slot() -> None:
    risk = RiskEngine(RiskLimits(max_position=1.0, max_orders_per_minute=1))
    assert "max position" in risk.check(order(qty=5.0, ts=T0), 0.0, 100.0, 0)
    assert risk.check(order(qty=1.0, ts=T0 + S_NS), 0.0, 100.0, 0) is None
    assert "max order rate" in risk.check(order(qty=1.0, ts=T0 + 2 * S_NS), 0.0, 100.0, 0)
    assert risk.rejections == 2


def test_rate_history_stays_bounded_when_the_rate_limit_is_off() -> None:
    risk = RiskEngine(RiskLimits(max_position=1e9))
    for i in range(1_000):
        assert risk.check(order(ts=T0 + i * S_NS), 0.0, 100.0, 0) is None
    assert len(risk.recent) == 0


def test_copy_is_independent() -> None:
    risk = RiskEngine(RiskLimits(max_orders_per_minute=1, daily_loss_pct=5.0))
    risk.check(order(ts=T0), 0.0, 100.0, 0)
    twin = risk.copy()
    assert twin.check(order(ts=T0 + S_NS), 0.0, 100.0, 0) is not None
    twin.watch(T0, 100.0)
    assert twin.watch(T0 + S_NS, 50.0) is not None and twin.halted
    assert not risk.halted and risk.rejections == 0 and list(risk.recent) == [T0]


# -- the daily loss limit ----------------------------------------------------------------------------------


def test_daily_loss_trips_once_when_equity_falls_by_the_limit() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=5.0))
    assert risk.watch(T0 + 1, 10_000.0) is None        # the day's first equity: the reference
    assert risk.watch(T0 + 2, 10_400.0) is None
    assert risk.watch(T0 + 3, 9_600.0) is None         # 4% down from 10000 (not from the 10400 peak)
    reason = risk.watch(T0 + 4, 9_400.0)               # 6% down
    assert reason == "daily loss 6.00% reached the limit of 5%"
    assert risk.halted and risk.halt_reason == reason
    assert risk.watch(T0 + 5, 9_000.0) is None         # trips once
    assert risk.watch(T0 + 6, 8_000.0) is None


def test_daily_loss_at_the_limit_exactly_trips() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=5.0))
    risk.watch(T0, 200.0)
    assert risk.watch(T0 + 1, 190.0) is not None


def test_daily_loss_of_exactly_ten_percent_trips_a_ten_percent_limit() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=10.0))
    risk.watch(T0, 10_000.0)
    assert risk.watch(T0 + 1, 9_000.0) is not None


def test_a_new_utc_day_resets_the_reference() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=5.0))
    assert risk.watch(T0 + 1, 10_000.0) is None
    assert risk.watch(T0 + DAY_NS - 1, 9_600.0) is None          # 4% on day 1
    assert risk.watch(T0 + DAY_NS, 9_600.0) is None              # day 2 starts at 9600
    assert risk.watch(T0 + DAY_NS + 1, 9_200.0) is None          # 8% from 10000, but 4.17% from 9600
    assert not risk.halted
    reason = risk.watch(T0 + DAY_NS + 2, 9_100.0)                # 5.21% from 9600
    assert reason is not None and reason.startswith("daily loss 5.21%")


def test_the_first_equity_of_a_day_never_trips_even_after_a_gap() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=5.0))
    risk.watch(T0, 10_000.0)
    assert risk.watch(T0 + DAY_NS, 5_000.0) is None   # a new day: the reference, not a loss
    assert not risk.halted


def test_daily_loss_off_never_trips() -> None:
    risk = RiskEngine(RiskLimits())
    risk.watch(T0, 10_000.0)
    assert risk.watch(T0 + 1, 1.0) is None and not risk.halted


def test_after_tripping_every_check_refuses_with_kill_switch() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_pct=5.0))
    risk.watch(T0, 10_000.0)
    reason = risk.watch(T0 + 1, 9_000.0)
    for side, position in ((BUY, 0.0), (SELL, 1.0), (BUY, -1.0)):   # even orders that reduce risk
        refused = risk.check(order(side, ts=T0 + 2), position, 100.0, 0)
        assert refused == f"kill switch: {reason}"
    # a new day does not lift it
    risk.watch(T0 + DAY_NS, 9_000.0)
    assert risk.check(order(ts=T0 + DAY_NS + 1), 0.0, 100.0, 0).startswith("kill switch")
    assert risk.rejections == 4
