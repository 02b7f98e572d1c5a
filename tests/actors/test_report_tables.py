"""The report's pure parts: prices at their own precision, the breakdown, buy-and-hold, thinning a line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actors.executor.chart import thin
from actors.executor.report import breakdown, buy_and_hold, price_text

pytestmark = pytest.mark.timeout(10)
H = 3_600_000_000_000


@pytest.mark.parametrize("value, text", [
    (43_903.98, "43,903.98"), (43_903.979999999996, "43,903.98"), (0.00001234, "0.00001234"),
    (1.07219, "1.07219"), (63_331.0, "63,331"), (-2.5, "-2.5"), (None, "n/a"), (math.nan, "n/a"),
])
def test_a_price_keeps_its_own_digits(value: float | None, text: str) -> None:
    assert price_text(value) == text


def test_the_breakdown_adds_up_per_symbol_and_per_strategy() -> None:
    trades = [
        {"symbol": "A", "entry_time": "2024-01-01T00:00:00Z", "exit_time": "2024-01-01T02:00:00Z", "pnl": 10.0},
        {"symbol": "A", "entry_time": "2024-01-02T00:00:00Z", "exit_time": "2024-01-02T04:00:00Z", "pnl": -4.0},
        {"symbol": "B", "entry_time": "2024-01-01T00:00:00Z", "exit_time": "2024-01-01T06:00:00Z", "pnl": 3.0},
    ]
    split = breakdown(trades, {"A": 1.5, "B": 0.5, "C": 0.25}, {"A": "s1", "B": "s2", "C": "s2"})
    assert split["symbols"]["A"] == {"strategy": "s1", "trades": 2, "wins": 1, "win_rate_pct": 50.0, "pnl": 6.0,
                                     "fees": 1.5, "avg_holding_hours": 3.0}
    assert split["symbols"]["C"]["trades"] == 0 and split["symbols"]["C"]["avg_holding_hours"] is None
    assert split["strategies"]["s2"] == {"symbols": ["B", "C"], "trades": 1, "wins": 1, "win_rate_pct": 100.0,
                                         "pnl": 3.0, "fees": 0.75, "avg_holding_hours": 6.0}


def test_buy_and_hold_splits_the_cash_equally_and_waits_in_cash_for_a_first_close() -> None:
    ts = np.array([H, 2 * H, 3 * H], dtype=np.int64)
    closes = {"A": (np.array([H, 2 * H, 3 * H]), np.array([100.0, 110.0, 120.0])),
              "B": (np.array([2 * H, 3 * H]), np.array([10.0, 5.0]))}
    assert buy_and_hold(ts, closes, 1_000.0).tolist() == pytest.approx([1_000.0, 1_050.0, 850.0])


def test_thinning_keeps_every_peak_and_trough_and_the_ends() -> None:
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 500.0)
    y[12_345], y[67_890] = 5.0, -5.0
    tx, ty = thin(x, y, limit=2_000)
    assert len(tx) <= 2_000 and tx[0] == 0 and tx[-1] == x[-1] and (np.diff(tx) > 0).all()
    assert ty.max() == 5.0 and ty.min() == -5.0 and 12_345 in tx and 67_890 in tx
    short_x, short_y = thin(x[:1_000], y[:1_000], limit=2_000)
    assert np.array_equal(short_x, x[:1_000]) and np.array_equal(short_y, y[:1_000])  # short enough: unchanged
