"""Choosing strategies on the command line, as a real subprocess: every strategy, a strategies file, errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from actors.strategy.registry import STRATEGIES
from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.timeout(120)


def test_every_strategy_backtests_with_its_own_result_and_no_flags_means_sma_cross(tmp_path: Path) -> None:
    runs = {name: ["--strategy", name] for name in STRATEGIES}
    runs["(no flags)"] = []
    runs["sma_cross 10/30"] = ["--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30"]
    processes = {
        label: subprocess.Popen([sys.executable, str(ROOT / "run.py"), "backtest", "--from", "2024-01-01", "--json",
                                 "--db", str(tmp_path / f"{i}.db"), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for i, (label, args) in enumerate(runs.items())
    }
    reports = {}
    for label, process in processes.items():
        out, err = process.communicate(timeout=100)
        assert process.returncode == 0, (label, err)
        reports[label] = json.loads(out)
    assert reports["(no flags)"] == reports["sma_cross"] == reports["sma_cross 10/30"]
    trade_lists = [json.dumps(reports[name]["trades"]) for name in STRATEGIES]
    assert len(set(trade_lists)) == len(STRATEGIES)  # six different results
    for name in STRATEGIES:
        assert reports[name]["summary"]["trades"] >= 10, name
    db = sqlite3.connect(tmp_path / f"{list(runs).index('macd_rsi')}.db")
    strategy, params = db.execute("SELECT DISTINCT strategy, params FROM signals").fetchone()
    assert strategy == "macd_rsi"
    assert json.loads(params) == {"fast": 12, "slow": 26, "signal": 9, "rsi": 14, "buy_below": 70.0, "sell_above": 80.0}


def test_a_strategies_file_gives_each_symbol_its_strategy(tmp_path: Path) -> None:
    path = tmp_path / "strategies.toml"
    path.write_text('[[strategy]]\nname = "macd_rsi"\nsymbols = ["BTCUSD"]\nparams = { rsi = 10 }\n\n'
                    '[[strategy]]\nname = "sr_breakout"\nsymbols = ["ETHUSD"]\n')
    db = tmp_path / "file.db"
    result = run_cli("backtest", "--from", "2024-01-01", "--to", "2024-04-30", "--strategies", str(path),
                     "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert ("strategy: macd_rsi(fast=12, slow=26, signal=9, rsi=10, buy_below=70.0, sell_above=80.0) on BTCUSD; "
            "sr_breakout(period=20, exit_period=10) on ETHUSD; sma_cross(fast=10, slow=30, min_prob=0.0) on every "
            "other symbol") in result.stderr
    rows = sqlite3.connect(db).execute("SELECT DISTINCT symbol, strategy FROM signals ORDER BY symbol").fetchall()
    assert rows == [("BTCUSD", "macd_rsi"), ("ETHUSD", "sr_breakout"), ("SOLUSD", "sma_cross")]


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--strategy", "sma_crossover"], 1,
     "unknown strategy 'sma_crossover'; valid: sma_cross, macd_rsi, rsi_trend, bollinger_breakout, sr_breakout, ma_model"),
    (["--strategy", "macd_rsi", "--param", "fats=3"], 1,
     "strategy 'macd_rsi' has no parameter 'fats'; valid parameters: fast=12, slow=26, signal=9, rsi=14, "
     "buy_below=70.0, sell_above=80.0"),
    (["--param", "fast"], 2, "argument --param: 'fast' is not KEY=VALUE"),
    (["--strategy", "macd_rsi", "--strategies", "x.toml"], 2, "not allowed with argument"),
])
def test_a_bad_strategy_or_parameter_is_one_line(tmp_path: Path, args: list[str], code: int, fragment: str) -> None:
    result = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "x.db"), *args)
    assert result.returncode == code
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
