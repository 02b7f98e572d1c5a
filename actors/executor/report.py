"""The backtest summary: trades, return, drawdown, final equity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from actors.executor.broker import Trade

__all__ = ["max_drawdown", "summarize", "trade_rows"]


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction (0.25 = 25%)."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks))


def _iso(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")


def trade_rows(trades: Iterable[Trade]) -> list[dict[str, Any]]:
    """Closed trades as plain rows with ISO-8601 UTC times."""
    return [
        {"symbol": t.symbol, "entry_time": _iso(t.entry_time), "entry_price": t.entry_price,
         "exit_time": _iso(t.exit_time), "exit_price": t.exit_price, "qty": t.qty, "pnl": t.pnl}
        for t in trades
    ]


def summarize(initial_cash: float, equity_ts: np.ndarray, equity: np.ndarray, trades: list[Trade],
              open_positions: int) -> dict[str, Any]:
    """The figures a backtest prints."""
    final = float(equity[-1]) if len(equity) else initial_cash
    wins = sum(1 for t in trades if t.pnl > 0)
    return {
        "start": _iso(equity_ts[0]) if len(equity_ts) else None,
        "end": _iso(equity_ts[-1]) if len(equity_ts) else None,
        "bars": int(len(equity_ts)),
        "trades": len(trades),
        "win_rate_pct": round(100.0 * wins / len(trades), 4) if trades else 0.0,
        "total_return_pct": round(100.0 * (final / initial_cash - 1.0), 6),
        "max_drawdown_pct": round(100.0 * max_drawdown(equity), 6),
        "final_equity": round(final, 6),
        "initial_cash": initial_cash,
        "open_positions": open_positions,
    }
