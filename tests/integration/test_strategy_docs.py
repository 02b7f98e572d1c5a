"""Every code block of docs/strategies.md runs: each strategy backtests on the bundled sample, the
TOML block loads, and the parameter check refuses what it says it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actors.store.history import load_bar_file
from actors.strategy.registry import StrategyError, load_strategy_file, make_spec
from settings import SAMPLE_DATA, load_settings
from supervisors.modes import run_backtest
from tests.helpers import ROOT

pytestmark = pytest.mark.timeout(120)

DOC = (ROOT / "docs" / "strategies.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", DOC, re.S)
TOML = re.findall(r"```toml\n(.*?)```", DOC, re.S)


def _classes(code: str) -> list[str]:
    return re.findall(r"^class (\w+)\(Strategy\):", code, re.M)


def test_the_doc_has_the_blocks_this_test_runs() -> None:
    assert [name for code in PYTHON for name in _classes(code)] == ["RsiDip", "Breakout", "AtrBracket",
                                                                   "CloseAboveSma"]
    assert len(TOML) == 1


@pytest.mark.parametrize("code", PYTHON, ids=[_classes(code)[0] for code in PYTHON])
def test_each_strategy_in_the_doc_backtests_and_trades(code: str, tmp_path: Path) -> None:
    path = tmp_path / "doc_strategy.py"
    path.write_text(code)
    (name,) = _classes(code)
    settings = load_settings(env={}, overrides={"strategy.name": f"{path}:{name}"})
    bars = load_bar_file(SAMPLE_DATA, symbol="BTCUSD")
    report = run_backtest(settings, bars, str(tmp_path / "doc.db"), progress=False)
    assert report["summary"]["trades"] > 5, name


def test_the_check_in_the_doc_refuses_what_it_says(tmp_path: Path) -> None:
    (code,) = [c for c in PYTHON if "Breakout" in _classes(c)]
    path = tmp_path / "breakout.py"
    path.write_text(code)
    with pytest.raises(StrategyError, match=r"exit \(50\) must not exceed period \(20\)"):
        make_spec(f"{path}:Breakout", {"exit": "50"})


def test_the_strategies_file_in_the_doc_loads(tmp_path: Path) -> None:
    (code,) = [c for c in PYTHON if "RsiDip" in _classes(c)]
    (tmp_path / "my_strategies.py").write_text(code)
    toml = tmp_path / "strategies.toml"
    toml.write_text(TOML[0].replace("path/to/my_strategies.py", str(tmp_path / "my_strategies.py")))
    ((symbol, spec),) = load_strategy_file(str(toml))
    assert symbol == "BTCUSD" and dict(spec.params)["below"] == 5.0
