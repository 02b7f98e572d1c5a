"""A strategy of the user's own, from a file outside the project, on the public API: it backtests,
its parameters change its trades, it trades as backtesting.py does on real bars, and its faults are
one error naming its file (backtest) or restart it then stop it on that symbol (live)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.history import load_bar_file
from settings import load_settings
from supervisors.modes import run_backtest
from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)

# The minimal form, word for word.
RSI_DIP = '''from actors.strategy import Strategy


class RsiDip(Strategy):
    """Buy an RSI(2) dip above the 200-bar average; sell when RSI(2) recovers above 70."""

    params = {"rsi": 2, "trend": 200, "below": 10.0, "above": 70.0}
    indicators = ("rsi:{rsi}", "sma:{trend}")

    def next(self, bar, ind, position):
        rsi = ind["rsi_%d" % self.rsi]
        if not position and bar.close > ind["sma_%d" % self.trend] and rsi < self.below:
            return "buy"
        if position and rsi > self.above:
            return "sell"
        return None
'''

BROKEN = '''from actors.strategy import Strategy


class Broken(Strategy):
    """Decides nothing for ``after`` bars, then divides by zero on every bar."""

    params = {"after": 30}
    indicators = ("sma:5",)

    def next(self, bar, ind, position):
        self.seen = getattr(self, "seen", 0) + 1
        if self.seen > self.after:
            return 1 / (self.seen - self.seen)
        return None
'''


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A folder outside the project holding the user's strategy files."""
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    (folder / "rsidip.py").write_text(RSI_DIP)
    (folder / "broken.py").write_text(BROKEN)
    return folder


def _backtest_json(*args: str) -> dict:
    result = run_cli("backtest", "--from", "2024-01-01", "--symbols", "BTCUSD", "--json", *args, timeout=90)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_strategy_file_outside_the_project_backtests_and_its_params_change_the_trades(user_dir: Path,
                                                                                       tmp_path: Path) -> None:
    strategy = f"{user_dir / 'rsidip.py'}:RsiDip"
    default = _backtest_json("--strategy", strategy, "--db", str(tmp_path / "a.db"))
    stricter = _backtest_json("--strategy", strategy, "--param", "below=5", "--db", str(tmp_path / "b.db"))
    assert default["summary"]["trades"] > 20
    assert 0 < stricter["summary"]["trades"] < default["summary"]["trades"]  # a deeper dip is rarer
    bad = run_cli("backtest", "--from", "2024-01-01", "--strategy", strategy, "--param", "below=low")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == (
        "run.py: error: settings key 'strategy.params': strategy "
        f"'{strategy}': parameter 'below' must be a number, got 'low'; valid parameters: rsi=2, trend=200, "
        "below=10.0, above=70.0")


def test_rsi_dip_trades_exactly_as_backtesting_py_with_ta_lib_rsi_on_real_goog_daily_bars(user_dir: Path,
                                                                                         tmp_path: Path) -> None:
    """GOOG daily 2004-2013, shipped inside backtesting.py (``backtesting.test.GOOG``); the peer
    computes RSI and SMA with TA-Lib."""
    talib = pytest.importorskip("talib")
    pytest.importorskip("backtesting")
    from backtesting import Backtest
    from backtesting import Strategy as PeerStrategy
    from backtesting.test import GOOG

    class PeerRsiDip(PeerStrategy):
        def init(self) -> None:
            self.rsi = self.I(talib.RSI, self.data.Close.astype(float), 2)
            self.trend = self.I(talib.SMA, self.data.Close.astype(float), 200)

        def next(self) -> None:
            if not self.position and self.data.Close[-1] > self.trend[-1] and self.rsi[-1] < 10.0:
                self.buy()
            elif self.position and self.rsi[-1] > 70.0:
                self.position.close()

    path = tmp_path / "goog.csv"
    real = GOOG.copy()
    real.index = real.index.tz_localize("UTC") + pd.Timedelta(days=1)  # our ts is the close: the next midnight
    real.rename(columns=str.lower).rename_axis("ts").to_csv(path)
    bars = load_bar_file(path, symbol="GOOG")
    settings = load_settings(env={}, overrides={"strategy.name": f"{user_dir / 'rsidip.py'}:RsiDip"})
    report = run_backtest(settings, bars, str(tmp_path / "ours.db"), progress=False)
    ours = [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"]) for t in report["trades"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(GOOG, PeerRsiDip, cash=1e9, commission=0.001, finalize_trades=False).run()
    iso = lambda s: pd.Timestamp(s).tz_localize("UTC").isoformat().replace("+00:00", "Z")  # noqa: E731
    t = stats._trades
    theirs = [(iso(a), float(b), iso(c), float(d))
              for a, b, c, d in zip(t.EntryTime, t.EntryPrice, t.ExitTime, t.ExitPrice, strict=True)]
    assert len(ours) > 20
    assert ours == theirs


def test_a_strategy_that_raises_fails_the_backtest_with_one_error_naming_its_file_and_line(user_dir: Path) -> None:
    result = run_cli("backtest", "--from", "2024-01-01", "--symbols", "BTCUSD", "--strategy",
                     f"{user_dir / 'broken.py'}:Broken", timeout=90)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"run.py: error: backtest failed: strategy Broken failed at {user_dir / 'broken.py'}:13: "
                           "ZeroDivisionError: division by zero (in next() at the BTCUSD 1h bar closing ")
    assert "Traceback (most recent call last)" not in result.stderr
    frames = [line for line in result.stderr.splitlines() if line.lstrip().startswith('File "')]
    assert frames == [f'  File "{user_dir / "broken.py"}", line 13, in next']  # the user's own frame only


def test_live_a_raising_strategy_restarts_then_stops_on_its_symbol_and_the_rest_keeps_running(user_dir: Path,
                                                                                             tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    env_file = tmp_path / "settings.toml"
    env_file.write_text("[supervisor]\nmax_restarts = 2\nwithin_s = 3600.0\n")
    process = start_cli("live", "--settings", str(env_file), "--sim-speed", "3000", "--db", str(tmp_path / "l.db"),
                        "--ingress", ingress, "--control", control, "--events", events,
                        "--strategy", f"{user_dir / 'broken.py'}:Broken", "--param", "after=3")
    try:
        wait_for_control(control, process)
        health = wait_until(lambda: (h := ctl(control, "health"))["risk"]["strategies_stopped"] and h, 60,
                            "a strategy stopped")
        stopped = health["risk"]["strategies_stopped"]
        assert health["status"] == "degraded"
        assert all("ZeroDivisionError" in why and "broken.py:13" in why for why in stopped.values())
        faults = ctl(control, "metrics")["counters"]["strategy_faults"]
        assert faults >= 3  # two restarts, the third fault stops it
        ticks = ctl(control, "metrics")["counters"]["ticks_processed"]
        wait_until(lambda: ctl(control, "metrics")["counters"]["ticks_processed"] > ticks + 1000, 30,
                   "ticks still processed")
        assert all(a["state"] == "running" for a in health["actors"].values())  # no actor failed for it
        assert run_cli("ctl", "shutdown", "--control", control).returncode == 0
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
