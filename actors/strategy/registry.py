"""Every strategy by name, its typed parameters, and which strategy trades which symbol.

A strategy is a :class:`~actors.strategy.api.Strategy` subclass: a built-in one by its name
(``sma_cross``), or one of the user's as ``path/to/file.py:ClassName`` or
``package.module:ClassName``. Its ``params`` give each parameter a default whose type (int,
float or bool) is the parameter's type; its ``check`` raises ValueError for a bad combination.
:func:`make_spec` checks a name and parameters once and returns a :class:`StrategySpec` that
builds one rule per symbol and timeframe. A :class:`StrategyPlan` gives every symbol its spec:
the default one (settings ``strategy.name`` and ``strategy.params``) or the one a strategies
file assigns to it::

    [[strategy]]
    name = "macd_rsi"
    symbols = ["BTCUSD", "ETHUSD"]
    params = { rsi = 21, sell_above = 75 }

Every error is a :class:`StrategyError`: one line that says what is valid.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import os
import sys
import tomllib
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.strategy.api import Strategy
from actors.strategy.bollinger_breakout import BollingerBreakout
from actors.strategy.ma_model import MaModel
from actors.strategy.macd_rsi import MacdRsi
from actors.strategy.rsi_trend import RsiTrend
from actors.strategy.sma_cross import SmaCross
from actors.strategy.sr_breakout import SrBreakout
from messages.market import SYMBOL_PATTERN, BarFrame
from supervisors.errors import StrategyError

__all__ = [
    "STRATEGIES", "StrategyError", "StrategyPlan", "StrategySpec", "defaults", "load_strategy_class", "load_strategy_file",
    "make_spec", "parse_param_texts", "strategy_plan", "valid_params",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCross, MacdRsi, RsiTrend, BollingerBreakout, SrBreakout, MaModel)
}
"""Every strategy class by its name."""

ParamValue = int | float | bool
_FILE_KEYS = ("name", "symbols", "params")


def _strategy(name: str) -> type[Strategy]:
    if isinstance(name, str) and ":" in name:
        return load_strategy_class(name)
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise StrategyError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}, "
                            f"or your own as path/to/file.py:ClassName or package.module:ClassName")
    return cls


_LOADED: dict[str, type[Strategy]] = {}


def load_strategy_class(reference: str) -> type[Strategy]:
    """The Strategy subclass ``file.py:ClassName`` or ``package.module:ClassName`` names (loaded once)."""
    found = _LOADED.get(reference)
    if found is not None:
        return found
    where, _, class_name = reference.rpartition(":")
    if not where or not class_name.isidentifier():
        raise StrategyError(f"strategy {reference!r} is not FILE.py:ClassName or package.module:ClassName")
    if where.endswith(".py") or "/" in where or os.sep in where:
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise StrategyError(f"strategy file {where} not found")
        module_name = "actortrade_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12] + "_" + \
            "".join(c if c.isalnum() else "_" for c in path.stem)
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise StrategyError(f"strategy file {where} cannot be loaded as Python")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # so that pickling and dataclasses inside it work
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - user code: say where it failed, in one line
                del sys.modules[module_name]
                raise StrategyError(f"strategy file {where} failed to load: {_where(exc, str(path))}") from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise StrategyError(f"strategy module {where} cannot be imported: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - user code
            raise StrategyError(f"strategy module {where} failed to load: {_where(exc, None)}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or cls is Strategy:
        found_classes = sorted(n for n, v in vars(module).items()
                               if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy)
        raise StrategyError(f"{where} has no Strategy subclass {class_name!r}; "
                            f"it has: {', '.join(found_classes) or 'none'}")
    _LOADED[reference] = cls
    return cls


def _where(exc: BaseException, path: str | None) -> str:
    """``file:line: Kind: message`` for an exception raised by user code."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if path is None or f.filename == path]
    at = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    return f"{at}{type(exc).__name__}: {exc}"


def defaults(name: str) -> dict[str, ParamValue]:
    """The parameters of strategy ``name`` with their defaults, in order."""
    params = _strategy(name).params
    bad = [key for key, value in params.items() if not isinstance(value, (int, float, bool))]
    if bad:
        raise StrategyError(f"strategy {name!r}: parameter {bad[0]!r} has default {params[bad[0]]!r}; "
                            f"a default must be an int, a float or a bool")
    return dict(params)


def valid_params(name: str) -> str:
    """``"fast=10, slow=30, min_prob=0.0"``: the parameters of ``name`` and their defaults."""
    return ", ".join(f"{key}={value!r}" for key, value in defaults(name).items())


def _coerce(name: str, key: str, value: Any, default: ParamValue) -> ParamValue:
    def fail(kind: str) -> StrategyError:
        return StrategyError(f"strategy {name!r}: parameter {key!r} must be {kind}, got {value!r}; "
                             f"valid parameters: {valid_params(name)}", "strategy.params")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise fail("true or false")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        raise fail("an integer")
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None or not math.isfinite(number):
        raise fail("a number")
    return number


def parse_param_texts(texts: Iterable[str]) -> dict[str, str]:
    """``["fast=5", "slow=20"]`` -> ``{"fast": "5", "slow": "20"}``; a later key wins."""
    params: dict[str, str] = {}
    for text in texts:
        key, eq, value = str(text).partition("=")
        if not eq or not key.strip() or not value.strip():
            raise StrategyError(f"strategy parameter {text!r} is not KEY=VALUE, e.g. 'fast=10'", "strategy.params")
        params[key.strip()] = value.strip()
    return params


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A checked strategy: its name, every parameter (defaults filled in), and what it reads."""

    name: str
    params: tuple[tuple[str, ParamValue], ...]
    features: tuple[str, ...]
    needs_prediction: bool

    def build(self) -> Strategy:
        """A fresh instance (one per symbol and timeframe); its signals carry these parameters."""
        return _strategy(self.name)(**dict(self.params))

    def describe(self) -> str:
        """``"macd_rsi(fast=12, slow=26, ...)"``."""
        return f"{_strategy(self.name).strategy_name()}({', '.join(f'{k}={v!r}' for k, v in self.params)})"


def make_spec(name: str, params: Mapping[str, Any] | None = None) -> StrategySpec:
    """Check ``name`` and ``params`` (values may be text) and return the spec; StrategyError if wrong."""
    known = defaults(name)
    values = dict(known)
    for key, value in (params or {}).items():
        if key not in known:
            raise StrategyError(f"strategy {name!r} has no parameter {key!r}; valid parameters: {valid_params(name)}",
                                "strategy.params")
        values[key] = _coerce(name, key, value, known[key])
    try:
        rule = _strategy(name)(**values)
    except ValueError as exc:
        raise StrategyError(f"strategy {name!r}: {exc}; valid parameters: {valid_params(name)}",
                            "strategy.params") from None
    return StrategySpec(name, tuple(values.items()), tuple(rule.required_features()), bool(rule.needs_prediction()))


@dataclass(frozen=True, slots=True)
class StrategyPlan:
    """Which strategy trades which symbol: ``assigned`` ones, else ``default``."""

    default: StrategySpec
    assigned: tuple[tuple[str, StrategySpec], ...] = ()

    def for_symbol(self, symbol: str) -> StrategySpec:
        """The spec that trades ``symbol``."""
        for assigned_symbol, spec in self.assigned:
            if assigned_symbol == symbol:
                return spec
        return self.default

    @property
    def specs(self) -> tuple[StrategySpec, ...]:
        """Every distinct spec in the plan, the default first."""
        return tuple(dict.fromkeys((self.default, *(spec for _, spec in self.assigned))))

    @property
    def needs_prediction(self) -> bool:
        """Whether any strategy in the plan reads the model's probability."""
        return any(spec.needs_prediction for spec in self.specs)

    def describe(self) -> str:
        """One line: each spec with its symbols."""
        parts = [f"{spec.describe()} on {', '.join(s for s, sp in self.assigned if sp == spec)}"
                 for spec in self.specs if spec != self.default]
        rest = "every other symbol" if self.assigned else "every symbol"
        return "; ".join([*parts, f"{self.default.describe()} on {rest}"])


def load_strategy_file(path: str) -> tuple[tuple[str, StrategySpec], ...]:
    """Read ``[[strategy]]`` tables (name, symbols, params) from a TOML file; StrategyError if wrong."""
    def fail(message: str) -> StrategyError:
        return StrategyError(f"strategy file {path}: {message}", "strategy.file")

    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise StrategyError(f"cannot read strategy file {path}: {exc.strerror}", "strategy.file") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML: {exc}") from None
    extra = [key for key in document if key != "strategy"]
    entries = document.get("strategy")
    if extra or not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise fail("expected one or more [[strategy]] tables with name, symbols and params, and nothing else")
    owner: dict[str, int] = {}
    assigned: list[tuple[str, StrategySpec]] = []
    for n, entry in enumerate(entries, 1):
        unknown = [key for key in entry if key not in _FILE_KEYS]
        if unknown:
            raise fail(f"entry {n}: unknown key {unknown[0]!r}; valid: {', '.join(_FILE_KEYS)}")
        symbols, params = entry.get("symbols"), entry.get("params", {})
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            raise fail(f"entry {n}: 'symbols' must be a non-empty list of symbols")
        if not isinstance(params, dict):
            raise fail(f"entry {n}: 'params' must be a table, e.g. params = {{ fast = 10 }}")
        try:
            spec = make_spec(entry.get("name", ""), params)
        except StrategyError as exc:
            raise fail(f"entry {n}: {exc}") from None
        for symbol in symbols:
            if SYMBOL_PATTERN.fullmatch(symbol) is None:
                raise fail(f"entry {n}: bad symbol {symbol!r}; a symbol is 1-32 of letters, digits and ._:/-")
            if symbol in owner:
                raise fail(f"symbol {symbol!r} is in entries {owner[symbol]} and {n}; a symbol trades one strategy")
            owner[symbol] = n
            assigned.append((symbol, spec))
    return tuple(assigned)


def strategy_plan(settings: Any) -> StrategyPlan:
    """The plan of the ``strategy`` settings section (``name``, ``params``, ``file``)."""
    default = make_spec(settings.name, parse_param_texts(settings.params))
    assigned = load_strategy_file(settings.file) if settings.file else ()
    return StrategyPlan(default, assigned)
