"""Every error this project raises on purpose, in one hierarchy.

Each message is one line a user can act on: the command line prints it as it is, with a non-zero
exit and no traceback. Library errors are wrapped (``raise X from exc``) where they cross into
ours. Business rejections (an order refused by risk, a malformed tick) are not exceptions: they are
events and counters.

```
TradingError
├── SettingsError     a settings file, variable or flag is wrong (names the key)
├── StrategyError     a strategy name, parameter or strategies file is wrong (``key``: the setting)
├── StrategyFault     a strategy's own code raised while deciding (names its file and line)
├── GridError         an optimisation's grid, metric or walk-forward split is wrong
├── PluginError       a model plug-in cannot be loaded or answered nonsense
├── DataError         a data file or date range is unusable (names the rows)
├── StorageError      the database cannot keep the records, or cannot be used at all
├── StartupError      the system could not start (names the actor or endpoint)
├── BacktestFailed    a backtest could not finish (with the accounting at the stop)
└── InjectedCrash     fault injection told an actor to fail
```

Those about input are also ``ValueError``, those about the running system ``RuntimeError``, so
code that catches the built-in kinds keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BacktestFailed", "DataError", "GridError", "InjectedCrash", "PluginError", "SettingsError", "StartupError",
           "StorageError", "StrategyError", "StrategyFault", "TradingError"]


class TradingError(Exception):
    """The base of every error raised on purpose; its message is one line for the user."""


class SettingsError(TradingError, ValueError):
    """A settings file, variable or flag is wrong; the message names the key."""


class StrategyError(TradingError, ValueError):
    """A strategy name, parameter or strategies file is wrong; ``key`` is the setting to fix."""

    def __init__(self, message: str, key: str = "strategy.name") -> None:
        super().__init__(message)
        self.key = key


class GridError(TradingError, ValueError):
    """An optimisation's ``--grid``, ``--metric`` or ``--walk-forward`` is wrong; the message says what is valid."""


class PluginError(TradingError, ValueError):
    """A plug-in cannot be loaded, or answered something that is not a column of probabilities."""


class DataError(TradingError, ValueError):
    """A data file or range is unusable; the message says which rows and why."""


class StorageError(TradingError, RuntimeError):
    """The database cannot keep the records (or cannot be used at all); the message is one line."""


class StartupError(TradingError, RuntimeError):
    """The system could not start; the message says which actor and why."""


class BacktestFailed(TradingError, RuntimeError):
    """A backtest that could not finish: the system stopped (the root gave up, an actor is stuck) or
    the pipeline stopped moving. ``counters`` hold the accounting at the stop."""

    def __init__(self, reason: str, counters: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.counters = counters

    def __str__(self) -> str:
        c = self.counters
        return (f"backtest failed: {self.reason} (bars read {c.get('bars_read', 0):,}, processed "
                f"{c.get('bars_processed', 0):,}, dead-lettered {c.get('bars_dead_lettered', 0):,}, dropped at stop "
                f"{c.get('bars_dropped_at_stop', 0):,})")


class InjectedCrash(TradingError, RuntimeError):
    """Raised by an actor told to crash by fault injection."""


class StrategyFault(TradingError, RuntimeError):
    """A strategy's own code raised (or answered nonsense) while deciding: one line naming the
    strategy, the user's file and line, the exception and the bar."""
