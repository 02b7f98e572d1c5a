"""The backtest report written by a real ``run.py backtest --out`` on real data: the interactive HTML
(its embedded plotly figure parsed, not grepped), report.json and ``--json``, the PNG, prices at
their own precision, ``CAGR n/a``.

Real data: backtesting.py's monthly BTCUSD bars (2012-2024, shipped in the ``backtesting`` package);
prices like 58,383.09 have seven significant digits.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backtesting.test import BTCUSD
from PIL import Image

from tests.helpers import run_cli

pytestmark = pytest.mark.timeout(120)

PARAMS = {"fast": 3, "slow": 8, "min_prob": 0.0}


def plotly_figure(page: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and layout the page hands to ``Plotly.newPlot`` for the report's chart."""
    match = re.search(r'Plotly\.newPlot\(\s*"report-chart",\s*', page)
    assert match is not None, "no Plotly.newPlot call for the report chart"
    decoder = json.JSONDecoder()
    traces, end = decoder.raw_decode(page, match.end())
    layout, _ = decoder.raw_decode(page, re.compile(r"\s*,\s*").match(page, end).end())
    return traces, layout


def values(array: Any) -> np.ndarray:
    """A trace's data array: a list, or plotly's typed array ``{"dtype", "bdata"}``."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def ms(times: Any) -> np.ndarray:
    return pd.to_datetime(times, utc=True).as_unit("ms").asi8.astype(float)


@pytest.fixture(scope="module")
def btc_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real backtest of backtesting.py's BTCUSD monthly bars, with --out and --json."""
    folder = tmp_path_factory.mktemp("btc")
    data = folder / "btc.csv"
    bars = BTCUSD.copy()
    bars.index = bars.index.tz_localize("UTC")
    bars.rename(columns=str.lower).rename_axis("ts").to_csv(data)
    args = [f"--param={k}={v}" for k, v in PARAMS.items()]
    result = run_cli("backtest", "--from", "2012-01-01", "--data", str(data), "--symbols", "BTCUSD",
                     "--db", str(folder / "b.db"), "--strategy", "sma_cross", *args, "--out", str(folder / "out"),
                     "--json")
    assert result.returncode == 0, result.stderr
    out = folder / "out"
    page = (out / "report.html").read_text(encoding="utf-8")
    return {"bars": bars, "json": json.loads(result.stdout), "page": page, "out": out, "figure": plotly_figure(page)}


def test_the_html_names_the_strategy_and_every_parameter(btc_report: dict[str, Any]) -> None:
    page = btc_report["page"]
    assert "<h3>sma_cross <small>on BTCUSD</small></h3>" in page
    for key, value in PARAMS.items():
        assert f"<tr><td>{key}</td><td>{value}</td></tr>" in page
    assert "sma_cross(fast=3, slow=8, min_prob=0.0) on BTCUSD" in page
    assert "plotly.js v" in page and re.search(r"<script[^>]*\bsrc=", page) is None  # plotly.js inline: offline


def test_the_chart_has_price_markers_equity_buy_and_hold_and_drawdown(btc_report: dict[str, Any]) -> None:
    traces, layout = btc_report["figure"]
    by_role = {t["meta"]["role"]: t for t in traces}
    assert set(by_role) == {"price", "entries", "exits", "equity", "buy and hold", "drawdown"}
    bars, report = btc_report["bars"], btc_report["json"]
    price = by_role["price"]
    assert by_role["price"]["meta"]["symbol"] == "BTCUSD"
    np.testing.assert_array_equal(values(price["y"]), bars["Close"].to_numpy())
    np.testing.assert_array_equal(values(price["x"]), ms(bars.index))
    trades = report["trades"]
    assert len(trades) > 3
    np.testing.assert_array_equal(values(by_role["entries"]["y"]), [t["entry_price"] for t in trades])
    np.testing.assert_array_equal(values(by_role["entries"]["x"]), ms([t["entry_time"] for t in trades]))
    np.testing.assert_array_equal(values(by_role["exits"]["y"]), [t["exit_price"] for t in trades])
    equity = values(by_role["equity"]["y"])
    assert equity[-1] == pytest.approx(report["summary"]["final_equity"], abs=1e-6)
    hold = values(by_role["buy and hold"]["y"])  # one symbol: all the cash in it at the first close
    closes = bars["Close"].to_numpy()
    assert hold[-1] == pytest.approx(report["summary"]["initial_cash"] * closes[-1] / closes[0])
    assert values(by_role["drawdown"]["y"]).min() == pytest.approx(-report["summary"]["max_drawdown_pct"], abs=1e-4)
    axes = [k for k in layout if k.startswith("xaxis")]
    assert len(axes) == 3 and all(layout[k]["type"] == "date" for k in axes)
    assert all(layout[k].get("matches") == "x3" for k in axes if k != "xaxis3")  # one zoom moves every panel


def test_the_json_has_strategy_params_breakdown_fees_and_holding_time(btc_report: dict[str, Any]) -> None:
    report = btc_report["json"]
    assert report["strategies"] == [{"name": "sma_cross", "params": PARAMS, "symbols": ["BTCUSD"],
                                     "description": "sma_cross(fast=3, slow=8, min_prob=0.0)"}]
    trades, summary = report["trades"], report["summary"]
    row = report["breakdown"]["symbols"]["BTCUSD"]
    assert row["trades"] == summary["trades"] == len(trades)
    assert row["pnl"] == pytest.approx(sum(t["pnl"] for t in trades), abs=1e-5)
    assert row["wins"] == sum(t["pnl"] > 0 for t in trades)
    assert row["fees"] == pytest.approx(summary["fees"]) and summary["fees"] > 0
    held = (pd.to_datetime([t["exit_time"] for t in trades]) - pd.to_datetime([t["entry_time"] for t in trades]))
    assert summary["avg_holding_hours"] == pytest.approx(float(np.mean(held.total_seconds())) / 3600, abs=1e-3)
    assert report["breakdown"]["strategies"]["sma_cross(fast=3, slow=8, min_prob=0.0)"]["trades"] == len(trades)
    assert json.loads((btc_report["out"] / "report.json").read_text()) == report


def test_prices_keep_their_own_precision(btc_report: dict[str, Any]) -> None:
    page = btc_report["page"]
    opens = set(btc_report["bars"]["Open"])
    precise = [t for t in btc_report["json"]["trades"] if t["entry_price"] > 10_000 and t["entry_price"] % 1]
    assert "<td>58,383.09</td>" in page  # seven significant digits, kept
    for trade in precise:
        assert trade["entry_price"] in opens  # filled at the bar's open, no slippage: the data's own figure
        cell = f"<td>{trade['entry_price']:,}</td>"  # the data's own digits: 11,232.4, 58,383.09
        assert cell in page, cell
        cut = f"<td>{trade['entry_price']:,.6g}</td>"
        assert cut == cell or cut not in page  # never cut to six digits: 58,383.1


def test_the_png_title_names_the_strategy(btc_report: dict[str, Any]) -> None:
    with Image.open(btc_report["out"] / "report.png") as image:
        title = image.text["Title"]
        assert image.size[0] > 1000
    assert "Backtest: BTCUSD" in title and "sma_cross(fast=3, slow=8, min_prob=0.0) on BTCUSD" in title


def test_cagr_is_n_a_without_a_percent_sign_on_a_short_run(tmp_path: Path) -> None:
    result = run_cli("backtest", "--from", "2024-12-20", "--db", str(tmp_path / "s.db"), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "(CAGR n/a)" in result.stdout and "n/a%" not in result.stdout
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "<tr><th>CAGR</th><td>n/a</td></tr>" in page
    assert "<span>CAGR</span><b>n/a</b>" in page and "n/a%" not in html.unescape(page.split("report-chart")[0])
