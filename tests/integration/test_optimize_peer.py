"""run.py optimize counts the same trades per grid point as backtesting.py's own optimiser, on real
daily bars (GOOG 2004-2013, shipped inside the backtesting package; a public Yahoo export)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

pytestmark = pytest.mark.timeout(180)


class SmaGrid(Strategy):
    """backtesting.py's SmaCross with the rule of our sma_cross, its two lengths optimisable."""

    n1, n2 = 10, 30

    def init(self) -> None:
        self.fast, self.slow = self.I(SMA, self.data.Close, self.n1), self.I(SMA, self.data.Close, self.n2)

    def next(self) -> None:
        if crossover(self.fast, self.slow) and not self.position:
            self.buy()
        elif crossover(self.slow, self.fast) and self.position:
            self.position.close()


def test_trades_per_point_match_backtesting_py_on_real_goog_daily_bars(tmp_path: Path) -> None:
    path = tmp_path / "goog.csv"
    real = GOOG.copy()
    real.index = real.index.tz_localize("UTC") + pd.Timedelta(days=1)  # our ts is the close: the next midnight
    real.rename(columns=str.lower).rename_axis("ts").to_csv(path)
    result = run_cli("optimize", "--from", "2004-01-01", "--data", str(path), "--db", str(tmp_path / "none.db"),
                     "--symbols", "GOOG", "--grid", "fast=5:20:5", "--grid", "slow=20,40,60", "--metric", "trades",
                     "--out", str(tmp_path / "goog"), timeout=120)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "goog" / "results.csv").open(newline="") as handle:
        ours = {(int(r["fast"]), int(r["slow"])): int(r["trades"]) for r in csv.DictReader(handle)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, heatmap = Backtest(GOOG, SmaGrid, cash=1e9, commission=0.001, finalize_trades=False).optimize(
            n1=[5, 10, 15, 20], n2=[20, 40, 60], constraint=lambda p: p.n1 < p.n2, maximize="# Trades",
            return_heatmap=True)
    theirs = {(int(n1), int(n2)): int(count) for (n1, n2), count in heatmap.items()}
    assert len(ours) == 11 and min(ours.values()) > 10
    assert ours == theirs
