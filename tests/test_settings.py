"""Settings: defaults < TOML file < environment < overrides, with errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from settings import ExecutorSettings, Settings, SettingsError, load_settings


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_defaults_are_valid_and_documented_values() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.executor.fee_bps == 10.0 and settings.strategy.name == "sma_cross" and settings.strategy.params == ()
    assert settings.buffer.timeframe == "1m" and settings.feed.symbols == ("BTCUSD", "ETHUSD", "SOLUSD")
    assert Settings().with_values({}) == Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.executor = ExecutorSettings()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.executor.fee_bps = 1.0  # type: ignore[misc]


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    path = toml(tmp_path, """
[executor]
fee_bps = 5
cash = 2500.5

[feed]
symbols = ["AAA", "BBB"]
source = "external"

[buffer]
fill_empty = false
timeframe = "5m"
""")
    settings = load_settings(path, env={})
    assert settings.executor.fee_bps == 5.0 and isinstance(settings.executor.fee_bps, float)
    assert settings.executor.cash == 2500.5
    assert settings.feed.symbols == ("AAA", "BBB") and settings.feed.source == "external"
    assert settings.buffer.fill_empty is False and settings.buffer.timeframe == "5m"
    assert settings.executor.slippage_bps == 0.0  # untouched keys keep their defaults


def test_env_var_overrides_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[executor]\nfee_bps = 5\n")
    settings = load_settings(path, env={"TRADING_EXECUTOR_FEE_BPS": "7.5"})
    assert settings.executor.fee_bps == 7.5


def test_overrides_beat_env_and_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[executor]\nfee_bps = 5\n")
    settings = load_settings(path, env={"TRADING_EXECUTOR_FEE_BPS": "7"}, overrides={"executor.fee_bps": 3})
    assert settings.executor.fee_bps == 3.0


def test_env_values_are_coerced_from_text() -> None:
    settings = load_settings(env={
        "TRADING_FEED_SYMBOLS": " AAA, BBB ,,CCC ", "TRADING_BUFFER_FILL_EMPTY": "off",
        "TRADING_STRATEGY_PARAMS": "fast=5, slow=40", "TRADING_CONTROL_ALLOW_FAULT_INJECTION": "YES",
        "TRADING_FEED_SIM_RATE": "12.5",
    })
    assert settings.feed.symbols == ("AAA", "BBB", "CCC")
    assert settings.buffer.fill_empty is False
    assert settings.strategy.params == ("fast=5", "slow=40")
    assert settings.control.allow_fault_injection is True
    assert settings.feed.sim_rate == 12.5


def test_env_vars_without_the_prefix_are_ignored() -> None:
    assert load_settings(env={"HOME": "/x", "EXECUTOR_FEE_BPS": "bad", "trading_executor_fee_bps": "bad"}) == Settings()


def test_process_environment_is_read_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_EXECUTOR_SLIPPAGE_BPS", "2")
    assert load_settings().executor.slippage_bps == 2.0


def test_unknown_section_names_it_and_the_origin() -> None:
    with pytest.raises(SettingsError, match=r"unknown settings section 'exekutor' \(from command line\)"):
        load_settings(env={}, overrides={"exekutor.fee_bps": 1})


def test_unknown_key_names_it_and_the_valid_keys() -> None:
    with pytest.raises(SettingsError,
                       match=r"unknown settings key 'executor\.fees' .*valid in \[executor\]: cash, fee_bps"):
        load_settings(env={}, overrides={"executor.fees": 1})


def test_unknown_key_in_a_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[strategy]\nfats = 3\n")
    with pytest.raises(SettingsError, match=r"'strategy\.fats' \(from .*settings\.toml\)"):
        load_settings(path, env={})


def test_unknown_env_key_names_it() -> None:
    with pytest.raises(SettingsError, match=r"'executor\.fees' \(from environment\)"):
        load_settings(env={"TRADING_EXECUTOR_FEES": "1"})


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("executor.fee_bps", "abc", "a number"),
    ("executor.fee_bps", True, "a number"),
    ("buffer.lookback", 2.5, "an integer"),
    ("buffer.lookback", "ten", "an integer"),
    ("buffer.lookback", False, "an integer"),
    ("buffer.fill_empty", "maybe", "true or false"),
    ("buffer.fill_empty", 1, "true or false"),
    ("buffer.timeframe", 5, "a string"),
    ("feed.symbols", [1, 2], "a list of strings"),
    ("feed.symbols", 3, "a list of strings"),
])
def test_wrong_type_names_the_key_and_the_expected_type(key: str, value: object, expected: str) -> None:
    with pytest.raises(SettingsError, match=rf"settings key '{key}' \(from command line\) must be {expected}"):
        load_settings(env={}, overrides={key: value})


def test_wrong_type_in_a_file_names_the_key(tmp_path: Path) -> None:
    path = toml(tmp_path, '[buffer]\nlookback = "ten"\n')
    with pytest.raises(SettingsError, match=r"'buffer\.lookback'.*must be an integer"):
        load_settings(path, env={})


@pytest.mark.parametrize(("overrides", "key"), [
    ({"strategy.params": ["slow=10"]}, "strategy.params"),
    ({"strategy.name": "nope"}, "strategy.name"),
    ({"strategy.params": ["fast=0", "slow=5"]}, "strategy.params"),
    ({"buffer.timeframe": "1x"}, "buffer.timeframe"),
    ({"buffer.timeframe": "0m"}, "buffer.timeframe"),
    ({"model.features": ["close/vwap_50"]}, "model.features"),
    ({"model.features": ["ret_1", "sma_10/wobble"]}, "model.features"),
    ({"feature.indicators": ["sma:10", "sma:30", "ema:12", "ema:26", "ret:1", "rsi:0"]}, "feature.indicators"),
    ({"feature.indicators": ["sma:10", "sma:30", "ema:12", "ema:26", "ret:1", "vwap:14"]}, "feature.indicators"),
    ({"strategy.params": ["min_prob=1"]}, "strategy.params"),
    ({"strategy.name": "ma_model", "model.enabled": False}, "model.enabled"),
    ({"model.kind": "neural"}, "model.kind"),
    ({"model.kind": "plugin"}, "model.plugin"),
    ({"model.checkpoint_bars": -1}, "model.checkpoint_bars"),
    ({"executor.cash": 0}, "executor.cash"),
    ({"executor.fee_bps": -1}, "executor.fee_bps"),
    ({"executor.fee_bps": "nan"}, "executor.fee_bps"),
    ({"executor.allocation": 1.5}, "executor.allocation"),
    ({"feed.source": "kafka"}, "feed.source"),
    ({"feed.symbols": ["X" * 33]}, "feed.symbols"),
    ({"ingress.batch_max": 0}, "ingress.batch_max"),
    ({"buffer.lookback": 0}, "buffer.lookback"),
    ({"backtest.chunk": 0}, "backtest.chunk"),
    ({"buffer.timeframes": ["1m", "5x"]}, "buffer.timeframes"),
    ({"buffer.timeframes": ["90s"]}, "buffer.timeframes"),
    ({"buffer.grace_s": -1}, "buffer.grace_s"),
    ({"feed.stale_s": -0.5}, "feed.stale_s"),
    ({"strategy.timeframes": ["soon"]}, "strategy.timeframes"),
    ({"feed.symbols": ""}, "feed.symbols"),
    ({"feed.symbols": ["*"]}, "feed.symbols"),  # the simulator needs named symbols
    ({"feed.symbols": ["A", "B", "C"], "feed.max_symbols": 2}, "feed.symbols"),
    ({"feed.max_symbols": 0}, "feed.max_symbols"),
    ({"ingress.max_future_s": -1}, "ingress.max_future_s"),
    ({"ingress.max_future_s": "nan"}, "ingress.max_future_s"),
    ({"ingress.max_age_s": -1}, "ingress.max_age_s"),
    ({"ingress.max_timeframes": 0}, "ingress.max_timeframes"),
    ({"ingress.max_sources": 0}, "ingress.max_sources"),
])
def test_invalid_value_names_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=rf"settings key '{key}'"):
        load_settings(env={}, overrides=overrides)


def test_model_feature_error_names_the_unknown_feature() -> None:
    with pytest.raises(SettingsError, match=r"model\.features.*no indicator produces a column named 'vwap_50'"):
        load_settings(env={}, overrides={"model.features": ["close/vwap_50"]})
    # any column an indicator produces is fine: the feature actor computes it when the model runs
    assert load_settings(env={}, overrides={"model.features": ["close/sma_50", "macd_hist_12_26_9"]})


def test_values_are_validated_together_so_consistent_changes_pass() -> None:
    settings = load_settings(env={}, overrides={"strategy.name": "sr_breakout", "strategy.params": ["period=40"]})
    assert (settings.strategy.name, settings.strategy.params) == ("sr_breakout", ("period=40",))


def test_invalid_final_combination_across_layers_is_an_error(tmp_path: Path) -> None:
    path = toml(tmp_path, '[strategy]\nparams = ["fast=5", "slow=8"]\n')
    with pytest.raises(SettingsError, match=r"strategy\.params.*'rsi_trend' has no parameter 'fast'"):
        load_settings(path, env={}, overrides={"strategy.name": "rsi_trend"})


def test_a_later_layer_can_complete_a_combination_an_earlier_layer_started(tmp_path: Path) -> None:
    path = toml(tmp_path, '[strategy]\nparams = ["period=40"]\n')  # with the default sma_cross this alone is invalid
    settings = load_settings(path, env={}, overrides={"strategy.name": "sr_breakout"})
    assert (settings.strategy.name, settings.strategy.params) == ("sr_breakout", ("period=40",))


def test_with_values_validates() -> None:
    with pytest.raises(SettingsError, match="strategy.params"):
        Settings().with_values({"strategy.params": ["slow=1"]})
    assert Settings().with_values({"strategy.params": ["min_prob=0.6"]}).strategy.params == ("min_prob=0.6",)


def test_bad_toml_is_a_settings_error(tmp_path: Path) -> None:
    path = toml(tmp_path, "[executor\nfee_bps = = 5\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(path, env={})


def test_missing_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file .*nope.toml"):
        load_settings(tmp_path / "nope.toml", env={})


def test_top_level_value_outside_a_section_is_a_settings_error(tmp_path: Path) -> None:
    path = toml(tmp_path, "fee_bps = 5\n")
    with pytest.raises(SettingsError, match=r"'fee_bps' must be a \[section\] table"):
        load_settings(path, env={})


@pytest.mark.parametrize("symbol", ["BTC USD", "BTC€"])
def test_symbol_the_codec_would_reject_is_a_settings_error(symbol: str) -> None:
    with pytest.raises(SettingsError, match="feed.symbols"):
        load_settings(env={}, overrides={"feed.symbols": [symbol]})


def test_every_indicator_kind_is_accepted_and_multi_column_outputs_feed_the_model() -> None:
    settings = load_settings(env={}, overrides={
        "feature.indicators": ["sma:10", "sma:30", "macd:12:26:9", "bb:20:2", "rsi:14", "atr:14"],
        "model.features": ["macd_hist_12_26_9", "bb_pctb_20_2", "rsi_14", "close/sma_10"],
    })
    assert "macd:12:26:9" in settings.feature.indicators


def test_timeframes_not_longer_than_the_base_are_simply_not_derived() -> None:
    settings = load_settings(env={}, overrides={"buffer.timeframe": "5m", "buffer.timeframes": "1m,5m,15m,1h"})
    assert settings.buffer.timeframes == ("1m", "5m", "15m", "1h")
    assert load_settings(env={"TRADING_INGRESS_CRYPTOFEED": "tcp://127.0.0.1:5560"}).ingress.cryptofeed == \
        "tcp://127.0.0.1:5560"


def test_every_symbol_is_a_watch_list_of_star_for_external_feeds() -> None:
    settings = load_settings(env={"TRADING_FEED_SYMBOLS": "*", "TRADING_FEED_SOURCE": "external"})
    assert settings.feed.symbols == ("*",) and settings.ingress.max_future_s == 5.0
    assert settings.ingress.max_age_s == 10 * 365 * 86_400 and settings.ingress.insecure is False
