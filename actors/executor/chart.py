"""The backtest report's interactive chart (plotly): price per symbol with entry and exit markers,
equity against equal-weight buy-and-hold, and drawdown, on one zoomable time axis shared by every panel.

Times are sent as milliseconds since the epoch on date axes (shown in UTC); a line longer than
``MAX_POINTS`` is thinned to the first, lowest, highest and last point of each stretch, so a long
run stays a page a browser opens at once without losing a peak or a trough.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from actors.executor.report import drawdown_series, price_text

__all__ = ["MAX_POINTS", "report_figure", "thin"]

MAX_POINTS = 20_000
_LONG, _SHORT, _EXIT = "#1a9850", "#d73027", "#333333"


def thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``limit`` points of the line (x, y): in each of ``limit / 4`` stretches its first,
    lowest, highest and last point, in order; the line itself when it is short enough."""
    n = len(x)
    if n <= limit:
        return x, y
    size = -(-n // max(1, limit // 4))  # points per stretch, rounded up
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    padded = np.full(len(starts) * size, np.nan)
    padded[:n] = y
    blocks = padded.reshape(len(starts), size)
    lows = starts + np.nanargmin(blocks, axis=1)
    highs = starts + np.nanargmax(blocks, axis=1)
    keep = np.unique(np.concatenate([starts, lows, highs, ends]))
    return x[keep], y[keep]


def _ms(ts: np.ndarray) -> np.ndarray:
    """Times in ns as float ms since the epoch: what a plotly date axis reads, exact to the ms."""
    return np.asarray(ts, dtype=np.int64) // 1_000_000 * 1.0


def _markers(trades: list[dict[str, Any]], symbol: str) -> tuple[go.Scatter, go.Scatter]:
    """The entries (up triangles for longs, down for shorts) and exits of ``symbol``'s trades."""
    mine = [t for t in trades if t["symbol"] == symbol]
    entries_x = _ms(pd.to_datetime([t["entry_time"] for t in mine], utc=True).as_unit("ns").asi8)
    exits_x = _ms(pd.to_datetime([t["exit_time"] for t in mine], utc=True).as_unit("ns").asi8)
    long = [t["qty"] > 0 for t in mine]
    entry_text = [f"{'buy' if t['qty'] > 0 else 'sell short'} {price_text(abs(t['qty']))} @ "
                  f"{price_text(t['entry_price'])}<br>{t['entry_time']}" for t in mine]
    exit_text = [f"exit @ {price_text(t['exit_price'])}, P&L {t['pnl']:+,.2f}<br>{t['exit_time']}" for t in mine]
    entries = go.Scatter(
        x=entries_x, y=np.array([t["entry_price"] for t in mine], float), mode="markers", name=f"{symbol} entries",
        meta={"role": "entries", "symbol": symbol}, hovertext=entry_text, hoverinfo="text",
        marker={"symbol": ["triangle-up" if g else "triangle-down" for g in long], "size": 9,
                "color": [_LONG if g else _SHORT for g in long], "line": {"width": 0.5, "color": "white"}})
    exits = go.Scatter(
        x=exits_x, y=np.array([t["exit_price"] for t in mine], float), mode="markers", name=f"{symbol} exits",
        meta={"role": "exits", "symbol": symbol}, hovertext=exit_text, hoverinfo="text",
        marker={"symbol": "x", "size": 7, "color": _EXIT})
    return entries, exits


def report_figure(closes: Mapping[str, tuple[np.ndarray, np.ndarray]], trades: list[dict[str, Any]],
                  equity_ts: np.ndarray, equity: np.ndarray, benchmark: np.ndarray, title: str) -> go.Figure:
    """One figure: a price panel per symbol of ``closes`` (``symbol: (close times ns, closes)``) with its
    trades' markers, then equity with ``benchmark`` (buy-and-hold on the same times), then drawdown."""
    symbols = list(closes)
    rows = len(symbols) + 2
    heights = [1.0] * len(symbols) + [1.3, 0.6]
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, row_heights=heights,
                           vertical_spacing=min(0.04, 0.3 / (rows - 1)),
                           subplot_titles=[f"{s} close" for s in symbols]
                           + ["Equity and equal-weight buy-and-hold", "Drawdown %"])
    for row, symbol in enumerate(symbols, 1):
        ts, price = closes[symbol]
        x, y = thin(_ms(ts), np.asarray(price, float))
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{symbol} close", line={"width": 1.1},
                                    meta={"role": "price", "symbol": symbol}, hovertemplate="%{y:,}<extra></extra>"),
                         row=row, col=1)
        for trace in _markers(trades, symbol):
            figure.add_trace(trace, row=row, col=1)
        figure.update_yaxes(title_text="price", tickformat=",", row=row, col=1)
    x_ms = _ms(equity_ts)
    for name, values, style in (("equity", equity, {"color": "#1f5fa8", "width": 1.4}),
                                ("buy and hold", benchmark, {"color": "#888888", "width": 1.1, "dash": "dot"})):
        x, y = thin(x_ms, np.asarray(values, float))
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=style, meta={"role": name},
                                    hovertemplate="%{y:,.2f}<extra>" + name + "</extra>"), row=rows - 1, col=1)
    x, y = thin(x_ms, -100.0 * drawdown_series(np.asarray(equity, float)))
    figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name="drawdown", fill="tozeroy", meta={"role": "drawdown"},
                                line={"color": "#c0392b", "width": 0.8}, hovertemplate="%{y:.2f}%<extra></extra>"),
                     row=rows, col=1)
    figure.update_yaxes(title_text="equity", tickformat=",", row=rows - 1, col=1)
    figure.update_yaxes(title_text="drawdown %", row=rows, col=1)
    figure.update_xaxes(type="date", showspikes=True, spikemode="across", spikethickness=1)
    figure.update_xaxes(title_text="time (UTC)", row=rows, col=1)
    figure.update_xaxes(row=1, col=1, rangeselector={"buttons": [
        {"count": 7, "label": "1w", "step": "day", "stepmode": "backward"},
        {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
        {"count": 3, "label": "3m", "step": "month", "stepmode": "backward"},
        {"step": "all", "label": "all"}]})
    height = 230 * len(symbols) + 520  # px: each price panel 230, equity and drawdown the rest
    figure.update_layout(title={"text": title, "x": 0.01, "y": 0.995, "font": {"size": 13}}, template="plotly_white",
                         height=height, margin={"l": 70, "r": 20, "t": 80, "b": 110}, hovermode="closest",
                         legend={"orientation": "h", "y": -70 / height, "yanchor": "top", "x": 0.0, "xanchor": "left"})
    return figure
