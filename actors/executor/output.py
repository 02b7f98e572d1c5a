"""Backtest report files: trades.csv, equity.csv, report.json, an equity and drawdown chart (PNG),
and one self-contained interactive HTML page (plotly.js inline: it opens offline, from a file, with
no server) with the strategy and its parameters, the figures, the breakdown per symbol and per
strategy, the chart of price, trades, equity against buy-and-hold and drawdown, and the trades."""

from __future__ import annotations

import html
import io
import json
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.io as pio  # noqa: E402

from actors.executor.chart import report_figure  # noqa: E402
from actors.executor.report import breakdown, buy_and_hold, drawdown_series, price_text  # noqa: E402
from messages.market import timeframe_ns  # noqa: E402

__all__ = ["BENCHMARK", "backtest_document", "closes_by_symbol", "strategy_rows", "write_report"]

BENCHMARK = ("Buy-and-hold: the initial cash split equally over the traded symbols, each share bought at its "
             "symbol's first close and held to the end, without fees.")
MAX_TRADE_ROWS = 5_000  # in the page; trades.csv has them all

_PERCENT = {"total_return_pct", "cagr_pct", "max_drawdown_pct", "win_rate_pct", "avg_trade_pct", "exposure_pct"}
_SIGNED = {"total_return_pct", "cagr_pct", "avg_trade_pct"}
_MONEY = {"final_equity", "initial_cash", "avg_trade", "fees", "pnl"}
_RATIO = {"sharpe", "sortino", "profit_factor"}
_LABELS = {
    "total_return_pct": "Total return", "cagr_pct": "CAGR", "sharpe": "Sharpe", "sortino": "Sortino",
    "max_drawdown_pct": "Max drawdown", "max_drawdown_days": "Max drawdown duration",
    "trades": "Trades", "win_rate_pct": "Win rate", "profit_factor": "Profit factor", "avg_trade": "Average trade",
    "avg_trade_pct": "Average trade return", "exposure_pct": "Exposure", "final_equity": "Final equity",
    "initial_cash": "Initial cash", "start": "Start", "end": "End", "bars": "Bar closes",
    "open_positions": "Open positions at the end", "fees": "Fees paid", "avg_holding_hours": "Average holding time",
    "bars_read": "Bars read", "bars_processed": "Bars processed", "bars_dead_lettered": "Bars dead-lettered",
    "dead_letters": "Dead letters", "wins": "Winning trades", "pnl": "P&L",
}


def strategy_rows(plan: Any, symbols: Iterable[str]) -> list[dict[str, Any]]:
    """Each strategy of ``plan`` (a StrategyPlan) that trades one of ``symbols``: its name (as in its signals and
    order ids), every parameter (defaults included), its symbols, and its one-line description."""
    symbols = list(symbols)
    rows = []
    for spec in plan.specs:
        mine = [s for s in symbols if plan.for_symbol(s) == spec]
        if mine:
            rows.append({"name": type(spec.build()).strategy_name(), "params": dict(spec.params), "symbols": mine,
                         "description": spec.describe()})
    return rows


def backtest_document(report: Mapping[str, Any], strategies: list[dict[str, Any]],
                      summary: Mapping[str, Any]) -> dict[str, Any]:
    """What ``backtest --json`` prints and report.json holds: the strategies with their parameters,
    the ``summary`` figures, the breakdown per symbol and per strategy, the benchmark's definition
    and the trades."""
    strategy_of = {symbol: row["description"] for row in strategies for symbol in row["symbols"]}
    return {"strategies": strategies, "summary": dict(summary),
            "breakdown": breakdown(report["trades"], report.get("fees", {}), strategy_of),
            "benchmark": BENCHMARK, "trades": report["trades"]}


def closes_by_symbol(bars: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``symbol: (close times, closes)`` of the bars a backtest replayed, times ascending, in order of
    first appearance; a symbol replayed in several timeframes gives its finest."""
    closes = {}
    for symbol, group in bars.groupby("symbol", sort=False):
        frames = group["timeframe"].unique()
        if len(frames) > 1:
            group = group[group["timeframe"] == min(frames, key=timeframe_ns)]
        group = group.sort_values("ts", kind="stable")
        closes[str(symbol)] = (group["ts"].to_numpy(np.int64), group["close"].to_numpy(np.float64))
    return closes


def _png(ts: np.ndarray, equity: np.ndarray, benchmark: np.ndarray, title: str) -> bytes:
    """Equity with the benchmark, and drawdown; ``title`` on top and in the file's Title text chunk."""
    times = pd.to_datetime(ts, utc=True)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.8), sharex=True, height_ratios=(3, 1.4))
    top.plot(times, equity, color="#1f5fa8", linewidth=1.1, label="equity")
    top.plot(times, benchmark, color="#888888", linewidth=1.0, linestyle=":", label="buy and hold (equal weight)")
    top.set_ylabel("equity")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.fill_between(times, -100.0 * drawdown_series(equity), 0.0, color="#c0392b", alpha=0.5, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.suptitle(textwrap.fill(title, 120), fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Title": title})
    plt.close(figure)
    return buffer.getvalue()


def _duration(hours: float) -> str:
    minutes = round(hours * 60)
    days, rest = divmod(minutes, 1_440)
    parts = [f"{days:,}d"] if days else []
    parts += [f"{rest // 60}h", f"{rest % 60}m"] if rest or not days else []
    return " ".join(parts)


def _fmt(key: str, value: Any) -> str:
    """A figure as a person reads it: percentages with %, money to the cent, prices at their precision."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, str)):
        return str(value)
    if key in _PERCENT:
        return f"{value:+.2f}%" if key in _SIGNED else f"{value:.2f}%"
    if key in _MONEY:
        return f"{value:+,.2f}" if key == "pnl" else f"{value:,.2f}"
    if key in _RATIO:
        return f"{value:.2f}"
    if key == "avg_holding_hours":
        return _duration(value)
    if key == "max_drawdown_days":
        return f"{value:,.1f} days"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return price_text(value)
    return str(value)


def _table(headers: list[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_GROUP_KEYS = ("trades", "win_rate_pct", "pnl", "fees", "avg_holding_hours")


def _sections(document: Mapping[str, Any]) -> str:
    strategies = "".join(
        f"<h3>{html.escape(row['name'])} <small>on {html.escape(', '.join(row['symbols']))}</small></h3>"
        + _table(["parameter", "value"], [(k, str(v)) for k, v in row["params"].items()], "params")
        for row in document["strategies"])
    summary = "".join(f"<tr><th>{html.escape(_LABELS.get(k, k))}</th><td>{html.escape(_fmt(k, v))}</td></tr>"
                      for k, v in document["summary"].items())
    headers = ["trades", "win rate", "P&L (closed, net)", "fees", "avg holding"]
    split = document["breakdown"]
    per_strategy = _table(["strategy", "symbols", *headers], (
        [name, ", ".join(row["symbols"]), *(_fmt(k, row[k]) for k in _GROUP_KEYS)]
        for name, row in split["strategies"].items()), "figures")
    per_symbol = _table(["symbol", "strategy", *headers], (
        [name, row["strategy"], *(_fmt(k, row[k]) for k in _GROUP_KEYS)] for name, row in split["symbols"].items()),
        "figures")
    return (f'<section class="top"><div><h2>Strategy</h2>{strategies}</div>'
            f'<div><h2>Figures</h2><table class="summary">{summary}</table></div>'
            f"<div><h2>Per strategy</h2>{per_strategy}<h2>Per symbol</h2>{per_symbol}</div></section>")


_KEY_FIGURES = ("total_return_pct", "cagr_pct", "max_drawdown_pct", "sharpe", "trades", "win_rate_pct", "fees",
                "final_equity")


def _key_figures(summary: Mapping[str, Any]) -> str:
    """The figures one looks at first, in a row above the chart."""
    return '<div class="keys">' + "".join(
        f'<div><span>{html.escape(_LABELS[k])}</span><b>{html.escape(_fmt(k, summary[k]))}</b></div>'
        for k in _KEY_FIGURES if k in summary) + "</div>"


def _trades_table(trades: list[dict[str, Any]]) -> str:
    shown = trades[:MAX_TRADE_ROWS]
    note = (f"<p>The first {MAX_TRADE_ROWS:,} of {len(trades):,}; trades.csv has them all.</p>"
            if len(trades) > MAX_TRADE_ROWS else "")
    rows = ([t["symbol"], t["entry_time"], price_text(t["entry_price"]), t["exit_time"], price_text(t["exit_price"]),
             price_text(t["qty"]), f"{t['pnl']:+,.2f}"] for t in shown)
    return note + _table(["symbol", "entry time", "entry price", "exit time", "exit price", "qty", "P&L"], rows,
                         "trades")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin: 1.4rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 0.6rem 0 0.3rem; } h3 small { font-weight: normal; color: #555; }
section.top { display: flex; gap: 3rem; flex-wrap: wrap; }
table { border-collapse: collapse; margin-bottom: 1rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2rem 0.8rem; border-bottom: 1px solid #ddd; text-align: right; }
th { font-weight: 600; } table.summary th, table.params td:first-child, td:first-child { text-align: left; }
p.note { color: #555; font-size: 0.9rem; margin: 0.3rem 0; }
thead th:first-child, thead th:nth-child(2) { text-align: left; } td:nth-child(2) { text-align: left; }
table.summary td, table.params td { text-align: right; } table.trades :is(td, th):nth-child(4) { text-align: left; }
div.keys { display: flex; gap: 0.8rem; flex-wrap: wrap; margin: 0.8rem 0; }
div.keys div { border: 1px solid #ddd; border-radius: 6px; padding: 0.4rem 0.9rem; min-width: 7rem; }
div.keys span { display: block; font-size: 0.8rem; color: #555; } div.keys b { font-size: 1.15rem; }
"""


def write_report(directory: str | Path, document: Mapping[str, Any], bars: pd.DataFrame, equity_ts: np.ndarray,
                 equity: np.ndarray, title: str = "Backtest report") -> list[Path]:
    """Write trades.csv, equity.csv, report.json, report.png and report.html into ``directory`` (made if
    needed); return their paths. ``document`` is :func:`backtest_document`'s, ``bars`` the bars replayed
    (their closes are the price panels and the benchmark)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    trades = document["trades"]
    pd.DataFrame(trades, columns=["symbol", "entry_time", "entry_price", "exit_time", "exit_price", "qty", "pnl"]
                 ).to_csv(out / "trades.csv", index=False)
    closes = closes_by_symbol(bars)
    benchmark = buy_and_hold(equity_ts, closes, document["summary"]["initial_cash"])
    pd.DataFrame({
        "time": pd.to_datetime(equity_ts, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "equity": equity, "buy_and_hold": benchmark, "drawdown_pct": 100.0 * drawdown_series(equity),
    }).to_csv(out / "equity.csv", index=False)
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    described = "; ".join(f"{row['description']} on {', '.join(row['symbols'])}" for row in document["strategies"])
    (out / "report.png").write_bytes(_png(equity_ts, equity, benchmark, f"{title}\n{described}"))
    figure = report_figure(closes, trades, equity_ts, equity, benchmark, described)
    chart = pio.to_html(figure, include_plotlyjs=True, full_html=False, div_id="report-chart",
                        config={"responsive": True, "displaylogo": False, "scrollZoom": True})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(described)}</p>
{_key_figures(document["summary"])}
<p class="note">Drag to zoom (every panel shares the time axis), double-click to zoom out; times in UTC.
{html.escape(BENCHMARK)}</p>
{chart}
{_sections(document)}
<h2>Closed trades ({len(trades):,})</h2>
{_trades_table(trades)}
</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return [out / name for name in ("trades.csv", "equity.csv", "report.json", "report.png", "report.html")]
