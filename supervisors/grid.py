"""Parameter grids, the metrics an optimisation ranks by, and walk-forward windows.

Pure logic for ``run.py optimize``: no actors, no processes, no files.

A grid axis is ``KEY=START:STOP:STEP`` (the stop included when the steps reach it; integers stay
integers, decimals are exact: ``0.1:0.3:0.1`` is 0.1, 0.2, 0.3) or ``KEY=A,B,C`` (numbers or
true/false). :func:`check_axes` types each axis by the strategy parameter's default: an integer
parameter takes integers only, a float parameter takes any number, a flag true or false. The
points are the Cartesian product of the axes, in the order given, the last axis varying fastest.

Ranking: by the metric (best first: largest, or smallest for the drawdown metrics), a missing
value (a Sharpe ratio with no returns, a profit factor with no loss) after every present one,
and ties by the parameter values in ascending order, so the order never depends on which
backtest finished first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from actors.executor.portfolio import Trade
from actors.executor.report import summarize
from supervisors.errors import GridError

__all__ = ["COLUMNS", "METRICS", "MAX_POINTS", "Axis", "GridError", "Metric", "Outcome", "check_axes", "describe",
           "figure", "metric_named", "param_texts", "parse_axis", "points", "rank", "stitch", "table", "windows"]

MAX_POINTS = 100_000
"""The most points one grid may have."""

COLUMNS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "max_drawdown_days", "trades",
           "win_rate_pct", "profit_factor", "avg_trade", "avg_trade_pct", "avg_holding_hours", "exposure_pct",
           "open_positions", "fees", "final_equity")
"""The backtest summary's figures kept for every point (see actors/executor/report.py)."""

ParamValue = int | float | bool
Params = tuple[tuple[str, ParamValue], ...]
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure of the backtest summary to rank by."""

    name: str
    column: str
    maximise: bool

    def describe(self) -> str:
        """``"sharpe (largest first)"``."""
        return f"{self.name} ({'largest' if self.maximise else 'smallest'} first)"


METRICS = tuple(Metric(name, column, maximise) for name, column, maximise in (
    ("sharpe", "sharpe", True), ("sortino", "sortino", True), ("return", "total_return_pct", True),
    ("cagr", "cagr_pct", True), ("max_drawdown", "max_drawdown_pct", False),
    ("drawdown_days", "max_drawdown_days", False), ("trades", "trades", True), ("win_rate", "win_rate_pct", True),
    ("profit_factor", "profit_factor", True), ("avg_trade", "avg_trade", True),
    ("avg_trade_pct", "avg_trade_pct", True), ("final_equity", "final_equity", True),
))
"""Every metric by its short name; each can also be named by its summary column."""


def metric_named(name: str) -> Metric:
    """The metric called ``name`` (or whose column is ``name``); GridError listing the valid ones."""
    for metric in METRICS:
        if name in (metric.name, metric.column):
            return metric
    raise GridError(f"unknown metric {name!r}; valid: {', '.join(m.name for m in METRICS)}")


@dataclass(frozen=True, slots=True)
class Axis:
    """One parameter's values, in order, and the text that gave them."""

    key: str
    values: tuple[Any, ...]
    text: str


def _fail(text: str, why: str) -> GridError:
    return GridError(f"--grid {text!r}: {why} (expected KEY=START:STOP:STEP or KEY=A,B,C, e.g. fast=5:50:5)")


def _number(item: str, text: str) -> int | Decimal:
    item = item.strip()
    if _INT.fullmatch(item):
        return int(item)
    try:
        value = Decimal(item)
    except InvalidOperation:
        raise _fail(text, f"{item!r} is not a number") from None
    if not value.is_finite():
        raise _fail(text, f"{item!r} is not a finite number")
    return value


def _scalar(item: str, text: str) -> ParamValue:
    if item.strip().lower() in ("true", "false"):
        return item.strip().lower() == "true"
    value = _number(item, text)
    return value if isinstance(value, int) else float(value)


def parse_axis(text: str) -> Axis:
    """Parse ``KEY=START:STOP:STEP`` or ``KEY=A,B,C``; GridError (one line) if it is neither."""
    key, eq, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not eq or not key or not spec:
        raise _fail(text, "no KEY=VALUES")
    if ":" not in spec:
        items = spec.split(",")
        if any(not item.strip() for item in items):
            raise _fail(text, "an empty value in the list")
        return Axis(key, tuple(dict.fromkeys(_scalar(item, text) for item in items)), text)
    parts = spec.split(":")
    if len(parts) != 3:
        raise _fail(text, f"a range has three parts START:STOP:STEP, not {len(parts)}")
    start, stop, step = (_number(part, text) for part in parts)
    if step <= 0:
        raise _fail(text, "STEP must be > 0")
    if stop < start:
        raise _fail(text, "STOP is below START")
    count = int((stop - start) // step) + 1
    if count > MAX_POINTS:
        raise _fail(text, f"{count:,} values, over the limit of {MAX_POINTS:,} points")
    if all(isinstance(n, int) for n in (start, stop, step)):
        return Axis(key, tuple(range(int(start), int(stop) + 1, int(step))), text)
    return Axis(key, tuple(float(Decimal(start) + i * Decimal(step)) for i in range(count)), text)


def check_axes(axes: Sequence[Axis], defaults: Mapping[str, Any], strategy: str) -> tuple[Axis, ...]:
    """Type each axis by its parameter's default (a float parameter's integers become floats);
    GridError for an unknown parameter, a parameter given twice or a value of the wrong type."""
    valid = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
    seen: set[str] = set()
    checked = []
    for axis in axes:
        if axis.key not in defaults:
            raise GridError(f"--grid {axis.text!r}: strategy {strategy!r} has no parameter {axis.key!r}; "
                            f"valid parameters: {valid}")
        if axis.key in seen:
            raise GridError(f"--grid {axis.text!r}: parameter {axis.key!r} has two --grid options; give it one")
        seen.add(axis.key)
        default = defaults[axis.key]
        values = []
        for value in axis.values:
            if isinstance(default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(default, int):
                ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
            elif isinstance(default, float):
                ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
                value = float(value) if ok else value
            else:
                ok, kind = True, ""
            if not ok:
                raise GridError(f"--grid {axis.text!r}: parameter {axis.key!r} must be {kind} (its default is "
                                f"{default!r}), got {value!r}")
            values.append(value)
        checked.append(Axis(axis.key, tuple(dict.fromkeys(values)), axis.text))
    total = 1
    for axis in checked:
        total *= len(axis.values)
    if total > MAX_POINTS:
        raise GridError(f"the grid has {total:,} points, over the limit of {MAX_POINTS:,}")
    return tuple(checked)


def points(axes: Sequence[Axis]) -> list[Params]:
    """Every combination of the axes' values, the last axis varying fastest."""
    keys = [axis.key for axis in axes]
    return [tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*(axis.values for axis in axes))]


def param_texts(params: Params) -> tuple[str, ...]:
    """``(("fast", 5),)`` -> ``("fast=5",)``: the form of ``strategy.params``."""
    return tuple(f"{key}={str(value).lower() if isinstance(value, bool) else repr(value)}" for key, value in params)


def describe(params: Params) -> str:
    """``"fast=5 slow=20"``."""
    return " ".join(param_texts(params))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One point's backtest: its figures (``COLUMNS``), or why it failed."""

    params: Params
    figures: Mapping[str, Any] | None
    error: str = ""

    def value(self, metric: Metric) -> float | None:
        """The point's value of ``metric``; None when it failed or the figure is undefined."""
        value = self.figures.get(metric.column) if self.figures is not None else None
        return None if value is None else float(value)


def rank(outcomes: Iterable[Outcome], metric: Metric) -> list[Outcome]:
    """Best first by ``metric``; missing values and failures last; ties by the parameter values."""
    def key(outcome: Outcome) -> tuple[Any, ...]:
        value = outcome.value(metric)
        order = 0.0 if value is None else (-value if metric.maximise else value)
        return (bool(outcome.error), value is None, order, tuple(v for _, v in outcome.params))

    return sorted(outcomes, key=key)


def windows(ts: np.ndarray, parts: int) -> list[tuple[int, int, int]]:
    """Split the sorted distinct bar close times ``ts`` into ``parts`` consecutive windows of nearly
    equal numbers of bar closes; each is ``(after, first, last)``: the closes in ``(after, last]``,
    of which ``first`` is the first."""
    if len(ts) < 2 * parts:
        raise GridError(f"--walk-forward {parts - 1}: {parts} windows need at least {2 * parts} bar closes, "
                        f"the range has {len(ts)}")
    groups = np.array_split(np.asarray(ts, dtype=np.int64), parts)
    bounds = []
    after = int(groups[0][0]) - 1
    for group in groups:
        bounds.append((after, int(group[0]), int(group[-1])))
        after = int(group[-1])
    return bounds


def stitch(reports: Sequence[Mapping[str, Any]], initial_cash: float) -> dict[str, Any]:
    """The summary of consecutive backtests run one after the other as one account: each starts
    with the equity the one before ended with (its curve and trades scaled by that growth)."""
    ts_parts, equity_parts, trades = [], [], []
    exposed = marked = fees = 0.0
    growth = 1.0
    for report in reports:
        equity = np.asarray(report["equity"], dtype=float)
        ts_parts.append(np.asarray(report["equity_ts"], dtype=np.int64))
        equity_parts.append(equity * growth)
        trades.extend(Trade(t["symbol"], _ns(t["entry_time"]), t["entry_price"], _ns(t["exit_time"]), t["exit_price"],
                            t["qty"] * growth, t["pnl"] * growth) for t in report["trades"])
        fees += report["summary"]["fees"] * growth
        exposure = report["summary"]["exposure_pct"]
        if exposure is not None:
            exposed += exposure / 100.0 * len(equity)
            marked += len(equity)
        if len(equity):
            growth *= float(equity[-1]) / initial_cash
    ts = np.concatenate(ts_parts) if ts_parts else np.empty(0, dtype=np.int64)
    curve = np.concatenate(equity_parts) if equity_parts else np.empty(0)
    last_open = reports[-1]["summary"]["open_positions"] if reports else 0
    return summarize(initial_cash, ts, curve, trades, last_open, exposed / marked if marked else None, fees)


def _ns(iso: str) -> int:
    """``2024-01-03T04:00:00Z`` as ns since the epoch."""
    return int(np.datetime64(iso.removesuffix("Z"), "ns").astype(np.int64))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Text cells as aligned lines under ``headers``: a column of numbers to the right, others to the left."""
    cells = [list(row) for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    right = [bool(cells) and all(_is_number(row[i]) for row in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        cells = (v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True))
        return "  ".join(cells).rstrip()

    return [line(headers), *(line(row) for row in cells)]


def figure(value: Any, spec: str = ",.2f") -> str:
    """A figure for a table: ``n/a`` when undefined, integers with thousands separators."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    return format(value, spec)


def _is_number(text: str) -> bool:
    if text == "n/a":
        return True
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True
