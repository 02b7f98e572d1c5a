"""Backtest report files: trades.csv, equity.csv, an equity and drawdown chart (PNG), and a
self-contained HTML page with the figures, the chart and the trades."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from actors.executor.report import drawdown_series  # noqa: E402

__all__ = ["write_report"]

_LABELS = {
    "total_return_pct": "Total return %", "cagr_pct": "CAGR %", "sharpe": "Sharpe", "sortino": "Sortino",
    "max_drawdown_pct": "Max drawdown %", "max_drawdown_days": "Max drawdown duration (days)",
    "trades": "Trades", "win_rate_pct": "Win rate %", "profit_factor": "Profit factor", "avg_trade": "Average trade",
    "avg_trade_pct": "Average trade %", "exposure_pct": "Exposure %", "final_equity": "Final equity",
    "initial_cash": "Initial cash", "start": "Start", "end": "End", "bars": "Bar closes",
    "open_positions": "Open positions at the end",
}


def _chart(ts: np.ndarray, equity: np.ndarray) -> bytes:
    times = pd.to_datetime(ts, utc=True)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=(3, 1.4))
    top.plot(times, equity, color="#1f5fa8", linewidth=1.1)
    top.set_ylabel("equity")
    top.set_title("Equity")
    top.grid(alpha=0.3)
    bottom.fill_between(times, -100.0 * drawdown_series(equity), 0.0, color="#c0392b", alpha=0.5, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.set_title("Drawdown")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def write_report(directory: str | Path, summary: dict[str, Any], trades: list[dict[str, Any]],
                 equity_ts: np.ndarray, equity: np.ndarray, title: str = "Backtest report") -> list[Path]:
    """Write the four files into ``directory`` (created if needed); return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    trades_frame = pd.DataFrame(trades, columns=["symbol", "entry_time", "entry_price", "exit_time", "exit_price",
                                                 "qty", "pnl"])
    trades_frame.to_csv(out / "trades.csv", index=False)
    curve = pd.DataFrame({
        "time": pd.to_datetime(equity_ts, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "equity": equity, "drawdown_pct": 100.0 * drawdown_series(equity),
    })
    curve.to_csv(out / "equity.csv", index=False)
    png = _chart(equity_ts, equity)
    (out / "report.png").write_bytes(png)
    rows = "".join(f"<tr><th>{html.escape(_LABELS.get(k, k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in summary.items())
    trade_table = trades_frame.to_html(index=False, float_format=lambda x: f"{x:,.6g}", border=0, classes="trades")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ padding: 0.25rem 0.8rem; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ text-align: left; font-weight: 600; }}
table.trades th {{ text-align: right; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{rows}</table>
<img alt="equity and drawdown" src="data:image/png;base64,{base64.b64encode(png).decode('ascii')}">
<h2>Closed trades ({len(trades_frame)})</h2>
{trade_table}
</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return [out / name for name in ("trades.csv", "equity.csv", "report.png", "report.html")]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
