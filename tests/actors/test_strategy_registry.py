"""The strategy registry: names, typed parameters, one-line errors, and the per-symbol plan."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from actors.feature.indicators import parse_indicator
from actors.strategy.registry import (
    STRATEGIES, StrategyError, defaults, load_strategy_file, make_spec, parse_param_texts, strategy_plan,
    valid_params,
)

pytestmark = pytest.mark.timeout(30)

NAMES = ("sma_cross", "macd_rsi", "rsi_trend", "bollinger_breakout", "sr_breakout", "ma_model")


def plan_of(name: str = "sma_cross", params: tuple[str, ...] = (), file: str = ""):
    return strategy_plan(SimpleNamespace(name=name, params=params, file=file))


def test_every_strategy_is_registered_with_a_docstring_and_defaults() -> None:
    assert tuple(STRATEGIES) == NAMES
    for name, cls in STRATEGIES.items():
        assert cls.name == name and cls.__doc__
        assert defaults(name), name
        spec = make_spec(name)
        assert spec.params == tuple(defaults(name).items())
        for indicator in spec.features:
            parse_indicator(indicator)  # every required feature is a valid indicator spec


def test_defaults_are_the_documented_ones() -> None:
    assert defaults("sma_cross") == {"fast": 10, "slow": 30, "min_prob": 0.0}
    assert defaults("macd_rsi") == {"fast": 12, "slow": 26, "signal": 9, "rsi": 14, "buy_below": 70.0,
                                    "sell_above": 80.0}
    assert defaults("rsi_trend") == {"rsi": 14, "trend": 200, "oversold": 30.0, "overbought": 70.0}
    assert defaults("bollinger_breakout") == {"period": 20, "k": 2.0}
    assert defaults("sr_breakout") == {"period": 20, "exit_period": 10}
    assert defaults("ma_model") == {"fast": 10, "slow": 30, "threshold": 0.55}


def test_parameters_given_as_text_are_typed_by_their_default() -> None:
    spec = make_spec("macd_rsi", parse_param_texts(["fast=8", " slow = 21 ", "buy_below=65", "fast=5"]))
    params = dict(spec.params)
    assert params["fast"] == 5 and params["slow"] == 21 and params["buy_below"] == 65.0
    assert isinstance(params["buy_below"], float) and isinstance(params["fast"], int)
    assert spec.features == ("macd:5:21:9", "rsi:14")
    assert spec.describe() == "macd_rsi(fast=5, slow=21, signal=9, rsi=14, buy_below=65.0, sell_above=80.0)"


def test_an_unknown_name_lists_every_strategy() -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'sma_crossover'; valid: " + ", ".join(NAMES)) as info:
        make_spec("sma_crossover")
    assert info.value.key == "strategy.name"


@pytest.mark.parametrize(("name", "params", "message"), [
    ("sma_cross", {"fats": "3"}, "strategy 'sma_cross' has no parameter 'fats'; valid parameters: fast=10, slow=30, "
                                 "min_prob=0.0"),
    ("sma_cross", {"fast": "2.5"}, "parameter 'fast' must be an integer, got '2.5'"),
    ("sma_cross", {"fast": 2.0}, "parameter 'fast' must be an integer, got 2.0"),
    ("sma_cross", {"fast": True}, "parameter 'fast' must be an integer"),
    ("sma_cross", {"min_prob": "high"}, "parameter 'min_prob' must be a number, got 'high'"),
    ("sma_cross", {"min_prob": "nan"}, "parameter 'min_prob' must be a number"),
    ("sma_cross", {"fast": "30"}, r"need 1 <= fast \(30\) < slow \(30\); valid parameters: fast=10"),
    ("macd_rsi", {"fast": 30}, r"fast \(30\) must be less than slow \(26\)"),
    ("macd_rsi", {"sell_above": 101}, r"sell_above \(101\) must be in \(0, 100\]"),
    ("rsi_trend", {"oversold": 80}, r"need 0 <= oversold \(80\) < overbought \(70\) <= 100"),
    ("bollinger_breakout", {"k": 0}, r"k \(0\) must be a positive number"),
    ("sr_breakout", {"period": 0}, r"period \(0\) must be >= 1"),
    ("ma_model", {"threshold": 0.4}, r"threshold \(0.4\) must be in \[0.5, 1\)"),
])
def test_a_bad_parameter_is_one_line_listing_the_valid_ones(name: str, params: dict, message: str) -> None:
    with pytest.raises(StrategyError, match=message) as info:
        make_spec(name, params)
    assert info.value.key == "strategy.params"
    assert "\n" not in str(info.value) and f"valid parameters: {valid_params(name)}" in str(info.value)


def test_a_param_text_without_equals_is_an_error() -> None:
    with pytest.raises(StrategyError, match="'fast' is not KEY=VALUE"):
        parse_param_texts(["fast"])


def test_the_plan_says_whether_predictions_are_needed() -> None:
    assert not plan_of().needs_prediction
    assert plan_of(params=("min_prob=0.55",)).needs_prediction
    assert plan_of("ma_model").needs_prediction
    assert not plan_of("macd_rsi").needs_prediction


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "strategies.toml"
    path.write_text(text)
    return str(path)


def test_a_strategies_file_gives_symbols_their_own_strategy(tmp_path: Path) -> None:
    path = write(tmp_path, """
[[strategy]]
name = "macd_rsi"
symbols = ["BTCUSD", "ETHUSD"]
params = { rsi = 21, sell_above = 75 }

[[strategy]]
name = "ma_model"
symbols = ["SOLUSD"]
""")
    plan = plan_of("sr_breakout", ("period=30",), path)
    assert plan.for_symbol("BTCUSD") is plan.for_symbol("ETHUSD")
    assert dict(plan.for_symbol("BTCUSD").params)["rsi"] == 21
    assert plan.for_symbol("SOLUSD").name == "ma_model"
    assert plan.for_symbol("XRPUSD").describe() == "sr_breakout(period=30, exit_period=10)"
    assert [spec.name for spec in plan.specs] == ["sr_breakout", "macd_rsi", "ma_model"]
    assert plan.needs_prediction
    assert plan.describe() == (
        "macd_rsi(fast=12, slow=26, signal=9, rsi=21, buy_below=70.0, sell_above=75.0) on BTCUSD, ETHUSD; "
        "ma_model(fast=10, slow=30, threshold=0.55) on SOLUSD; "
        "sr_breakout(period=30, exit_period=10) on every other symbol")


@pytest.mark.parametrize(("text", "message"), [
    ("[[strategy]]\nname = 'sma_cross'\nsymbols = ['A']\n[[strategy]]\nname = 'macd_rsi'\nsymbols = ['B', 'A']\n",
     "symbol 'A' is in entries 1 and 2; a symbol trades one strategy"),
    ("[[strategy]]\nname = 'sma_cross'\nsymbol = ['A']\n", "entry 1: unknown key 'symbol'; valid: name, symbols, params"),
    ("[[strategy]]\nname = 'sma_cross'\n", "entry 1: 'symbols' must be a non-empty list"),
    ("[[strategy]]\nname = 'sma_cross'\nsymbols = ['A']\nparams = 3\n", "entry 1: 'params' must be a table"),
    ("[[strategy]]\nname = 'smacross'\nsymbols = ['A']\n", "entry 1: unknown strategy 'smacross'; valid: sma_cross"),
    ("[[strategy]]\nname = 'sma_cross'\nsymbols = ['A']\nparams = { slow = 5 }\n",
     r"entry 1: strategy 'sma_cross': need 1 <= fast \(10\) < slow \(5\)"),
    ("[[strategy]]\nname = 'sma_cross'\nsymbols = ['A B']\n", "entry 1: bad symbol 'A B'"),
    ("[strategy]\nname = 'sma_cross'\n", r"expected one or more \[\[strategy\]\] tables"),
    ("name = 'sma_cross'\n", r"expected one or more \[\[strategy\]\] tables"),
    ("[[strategy]\n", "not valid TOML"),
])
def test_a_bad_strategies_file_is_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(StrategyError, match=message) as info:
        load_strategy_file(path)
    assert info.value.key == "strategy.file" and str(info.value).startswith(f"strategy file {path}")


def test_a_missing_strategies_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="cannot read strategy file .*nope.toml"):
        load_strategy_file(str(tmp_path / "nope.toml"))
