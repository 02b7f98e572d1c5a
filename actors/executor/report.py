"""The backtest report: return, CAGR, Sharpe, Sortino, drawdown and its duration, trade statistics.

Conventions: CAGR needs at least 30 days of data (None otherwise); returns are per bar close of the equity curve; Sharpe and Sortino are annualised
with the number of bars in 365.25 days at the curve's most common spacing, with a zero risk-free
rate; Sortino's downside deviation is the root mean square of the negative returns (over all
bars); the drawdown duration is the longest time from a peak until equity is back at that peak
(or the end); exposure is the share of bar closes with any position open; profit factor is gross
profit over gross loss (None without losses); fees are every fill's, open positions' included; the
holding time of a trade runs from its entry fill to its exit fill.

Also the tables beside the summary: the breakdown per symbol and per strategy, the equal-weight
buy-and-hold benchmark, and prices written at their own precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from actors.executor.portfolio import Trade
from actors.store.history import iso_utc as _iso
from actors.store.history import iso_utc_many

__all__ = ["breakdown", "buy_and_hold", "drawdown_series", "fees_by_symbol", "max_drawdown", "price_text",
           "summarize", "trade_rows"]

YEAR_NS = 365.25 * 86_400 * 1e9
HOUR_NS = 3_600e9


def price_text(value: float | None) -> str:
    """A price at its own precision, with thousands separators: 43903.98 is ``43,903.98``, 0.00001234
    is ``0.00001234`` (never cut to a few significant digits); float noise past 12 significant digits
    (43903.979999999996) is dropped. ``n/a`` for None, NaN and infinities."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = format(Decimal(repr(float(f"{value:.12g}"))), ",f")
    return text[:-2] if text.endswith(".0") else text


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Fall from the running peak at each point, as a positive fraction."""
    if len(equity) == 0:
        return np.empty(0)
    return 1.0 - equity / np.maximum.accumulate(equity)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction (0.25 = 25%)."""
    return float(drawdown_series(equity).max()) if len(equity) else 0.0


def _drawdown_duration_ns(ts: np.ndarray, equity: np.ndarray) -> int:
    """Longest time from a peak until equity regains it (or the curve ends)."""
    if len(equity) < 2:
        return 0
    peaks = np.maximum.accumulate(equity)
    at_peak = equity >= peaks
    peak_times = np.where(at_peak, ts, 0)
    last_peak = np.maximum.accumulate(peak_times)
    return int((ts - last_peak).max())


def _most_common_step(ts: np.ndarray) -> int:
    """The most common spacing of times (the smallest of equally common ones); no sort when evenly spaced."""
    steps = np.diff(ts)
    if (steps == steps[0]).all():
        return int(steps[0])
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


def trade_rows(trades: Iterable[Trade]) -> list[dict[str, Any]]:
    """Closed trades as plain rows with ISO-8601 UTC times."""
    trades = list(trades)
    entries = iso_utc_many([t.entry_time for t in trades])
    exits = iso_utc_many([t.exit_time for t in trades])
    return [
        {"symbol": t.symbol, "entry_time": entry, "entry_price": t.entry_price,
         "exit_time": exit_, "exit_price": t.exit_price, "qty": t.qty, "pnl": t.pnl}
        for t, entry, exit_ in zip(trades, entries, exits, strict=True)
    ]


def _round(value: float | None, digits: int = 6) -> float | None:
    """A figure (a ratio, a percentage, an amount of money) to ``digits`` decimals; never a price."""
    return None if value is None or not math.isfinite(value) else round(value, digits)


def fees_by_symbol(fills: Iterable[Any]) -> dict[str, float]:
    """The fees paid per symbol over ``fills`` (anything with ``symbol`` and ``fee``), in order of first fill."""
    fees: dict[str, float] = {}
    for fill in fills:
        fees[fill.symbol] = fees.get(fill.symbol, 0.0) + fill.fee
    return fees


def _holding_hours(trades: list[Trade]) -> float | None:
    if not trades:
        return None
    return float(np.mean([t.exit_time - t.entry_time for t in trades])) / HOUR_NS


def summarize(initial_cash: float, equity_ts: np.ndarray, equity: np.ndarray, trades: list[Trade],
              open_positions: int, exposure: float | None = None, fees: float = 0.0) -> dict[str, Any]:
    """The figures a backtest prints (percentages as percent); ``fees``: the total paid."""
    final = float(equity[-1]) if len(equity) else initial_cash
    total = final / initial_cash - 1.0
    span_ns = float(equity_ts[-1] - equity_ts[0]) if len(equity_ts) > 1 else 0.0
    years = span_ns / YEAR_NS
    # annualising less than a month of data says nothing: no CAGR then
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if span_ns >= 30 * 86_400e9 and final > 0 else None
    sharpe = sortino = None
    if len(equity) > 2:
        returns = np.diff(equity) / equity[:-1]
        per_year = YEAR_NS / float(_most_common_step(equity_ts))
        std = float(returns.std(ddof=1))
        if std > 0:
            sharpe = float(returns.mean()) / std * math.sqrt(per_year)
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            sortino = float(returns.mean()) / downside * math.sqrt(per_year)
    pnls = np.array([t.pnl for t in trades])
    gross_profit = float(pnls[pnls > 0].sum()) if len(pnls) else 0.0
    gross_loss = float(-pnls[pnls < 0].sum()) if len(pnls) else 0.0
    returns_pct = [100.0 * t.pnl / (abs(t.qty) * t.entry_price) for t in trades if t.qty and t.entry_price]
    return {
        "start": _iso(equity_ts[0]) if len(equity_ts) else None,
        "end": _iso(equity_ts[-1]) if len(equity_ts) else None,
        "bars": int(len(equity_ts)),
        "initial_cash": initial_cash,
        "final_equity": round(final, 6),
        "total_return_pct": round(100.0 * total, 6),
        "cagr_pct": _round(None if cagr is None else 100.0 * cagr),
        "sharpe": _round(sharpe),
        "sortino": _round(sortino),
        "max_drawdown_pct": round(100.0 * max_drawdown(equity), 6),
        "max_drawdown_days": round(_drawdown_duration_ns(equity_ts, equity) / 86_400e9, 4) if len(equity_ts) else 0.0,
        "trades": len(trades),
        "win_rate_pct": round(100.0 * int((pnls > 0).sum()) / len(trades), 4) if trades else 0.0,
        "profit_factor": _round(gross_profit / gross_loss) if gross_loss > 0 else None,
        "avg_trade": _round(float(pnls.mean())) if trades else 0.0,
        "avg_trade_pct": _round(float(np.mean(returns_pct))) if returns_pct else 0.0,
        "exposure_pct": _round(None if exposure is None else 100.0 * exposure, 4),
        "open_positions": open_positions,
        "fees": round(fees, 6),
        "avg_holding_hours": _round(_holding_hours(trades), 4),
    }


def _group_figures(rows: pd.DataFrame, fees: float) -> dict[str, Any]:
    """Trades, wins, win rate, P&L (closed trades, net of their fees), fees, average holding time."""
    n = len(rows)
    wins = int((rows["pnl"] > 0).sum()) if n else 0
    return {
        "trades": n, "wins": wins, "win_rate_pct": round(100.0 * wins / n, 4) if n else 0.0,
        "pnl": round(float(rows["pnl"].sum()), 6) if n else 0.0, "fees": round(fees, 6),
        "avg_holding_hours": _round(float(rows["hours"].mean()), 4) if n else None,
    }


def breakdown(trades: list[dict[str, Any]], fees: Mapping[str, float],
              strategy_of: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The figures per symbol and per strategy: ``trades`` are :func:`trade_rows`, ``fees`` the fees per
    symbol, ``strategy_of`` the strategy (as its description) that traded each symbol of the run.
    Every symbol of ``strategy_of`` has a row, traded or not; a strategy's row adds its symbols'."""
    frame = pd.DataFrame(trades, columns=["symbol", "entry_time", "exit_time", "pnl"])
    frame["hours"] = ((pd.to_datetime(frame["exit_time"]) - pd.to_datetime(frame["entry_time"]))
                      .dt.total_seconds() / 3_600.0) if len(frame) else pd.Series(dtype=float)
    symbols = list(dict.fromkeys([*strategy_of, *frame["symbol"], *fees]))
    frame["strategy"] = frame["symbol"].map(lambda s: strategy_of.get(s, "unknown"))
    by_symbol = {}
    for symbol in symbols:
        figures = _group_figures(frame[frame["symbol"] == symbol], fees.get(symbol, 0.0))
        by_symbol[symbol] = {"strategy": strategy_of.get(symbol, "unknown"), **figures}
    by_strategy = {}
    for strategy in dict.fromkeys(row["strategy"] for row in by_symbol.values()):
        members = [s for s, row in by_symbol.items() if row["strategy"] == strategy]
        paid = sum(fees.get(s, 0.0) for s in members)
        by_strategy[strategy] = {"symbols": members, **_group_figures(frame[frame["strategy"] == strategy], paid)}
    return {"symbols": by_symbol, "strategies": by_strategy}


def buy_and_hold(equity_ts: np.ndarray, closes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 cash: float) -> np.ndarray:
    """The value at each of ``equity_ts`` of ``cash`` split equally over the symbols of ``closes``
    (``symbol: (close times, closes)``, times ascending), each share bought at the symbol's first
    close and held, without fees; a share stays cash until its symbol's first close."""
    ts = np.asarray(equity_ts, dtype=np.int64)
    if not closes:
        return np.full(len(ts), float(cash))
    share = cash / len(closes)
    total = np.zeros(len(ts))
    for times, prices in closes.values():
        at = np.searchsorted(times, ts, side="right") - 1  # the latest close at or before each time
        latest = prices[np.maximum(at, 0)]
        total += np.where(at >= 0, share * latest / prices[0], share)
    return total
