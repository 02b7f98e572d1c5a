"""One error hierarchy: every error raised on purpose is a TradingError, defined once."""

from __future__ import annotations

import pytest

import settings
from actors.model import plugin
from actors.store import errors as store_errors
from actors.store import history
from actors.strategy import registry
from supervisors import actor, errors, modes, system

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(("module", "name"), [
    (settings, "SettingsError"), (registry, "StrategyError"), (plugin, "PluginError"), (history, "DataError"),
    (store_errors, "StorageError"), (system, "StartupError"), (modes, "BacktestFailed"), (actor, "InjectedCrash"),
])
def test_each_error_is_the_one_class_of_the_hierarchy_wherever_it_is_imported_from(module, name) -> None:
    cls = getattr(module, name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, errors.TradingError)


def test_input_errors_are_value_errors_and_system_errors_runtime_errors() -> None:
    for cls in (errors.SettingsError, errors.StrategyError, errors.PluginError, errors.DataError):
        assert issubclass(cls, ValueError)
    for cls in (errors.StorageError, errors.StartupError, errors.BacktestFailed, errors.InjectedCrash):
        assert issubclass(cls, RuntimeError)


def test_a_failed_backtest_says_what_was_read_processed_and_lost_in_one_line() -> None:
    failure = errors.BacktestFailed("strategy is stuck", {"bars_read": 1200, "bars_processed": 1000,
                                                          "bars_dead_lettered": 150, "bars_dropped_at_stop": 50})
    assert str(failure) == ("backtest failed: strategy is stuck (bars read 1,200, processed 1,000, dead-lettered 150, "
                            "dropped at stop 50)")
    assert "\n" not in str(failure)
