"""What ``run.py optimize`` shows and writes: the best points as a table, results.csv (every point,
every figure), walk_forward.csv (per fold), and for two-parameter grids heatmap.png."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.store.history import iso_utc
from supervisors.grid import COLUMNS, Outcome, describe, figure, table
from supervisors.optimize import Fold, Search

__all__ = ["report_lines", "write_results"]

_SHOWN = (("return %", "total_return_pct", "+,.2f"), ("sharpe", "sharpe", ".2f"),
          ("max dd %", "max_drawdown_pct", ".2f"), ("trades", "trades", ""))


def _value(outcome: Outcome, column: str, spec: str) -> str:
    value = outcome.figures.get(column) if outcome.figures is not None else None
    return figure(value, spec) if spec else figure(value)


def _columns(search: Search) -> list[tuple[str, str, str]]:
    """The figures shown per point: the metric first, then the usual ones."""
    metric = search.metric
    spec = "" if metric.column in ("trades", "open_positions") else ",.4f"
    return [(metric.name, metric.column, spec), *(c for c in _SHOWN if c[1] != metric.column)]


def _best_rows(search: Search, ranked: Sequence[Outcome], top: int) -> list[str]:
    keys = [axis.key for axis in search.plan.axes]
    shown = _columns(search)
    rows = [[str(n), *(figure(v, "g") if isinstance(v, float) else figure(v) for _, v in o.params),
             *(_value(o, column, spec) for _, column, spec in shown)]
            for n, o in enumerate([o for o in ranked if not o.error][:top], 1)]
    return table(["rank", *keys, *(label for label, _, _ in shown)], rows)


def _day(ts: int) -> str:
    """``2024-03-14 06:00``, or ``2024-03-14`` at midnight."""
    text = iso_utc(ts).removesuffix("Z").replace("T", " ")
    return text.removesuffix(" 00:00:00").removesuffix(":00")


def report_lines(search: Search, top: int) -> list[str]:
    """The console report: the grid, the work done, and the best points (or the folds)."""
    sizes = ", ".join(f"{axis.key} ({len(axis.values)})" for axis in search.plan.axes)
    total = math.prod(len(axis.values) for axis in search.plan.axes)
    lines = [f"  grid          {sizes}: {total:,} points, {total - search.plan.skipped:,} valid"]
    if search.plan.skipped:
        lines.append(f"  skipped       {search.plan.skipped:,} points the strategy refuses, e.g. "
                     f"{search.plan.skipped_example}")
    per = search.seconds / search.backtests if search.backtests else 0.0
    lines.append(f"  ran           {search.backtests:,} backtests in {search.seconds:.1f}s on {search.workers} "
                 f"({per:.3f}s per backtest)")
    lines.append(f"  metric        {search.metric.describe()}")
    if search.failed:
        lines.append(f"  failed        {len(search.failed):,} backtests, e.g. {describe(search.failed[0].params)}: "
                     f"{search.failed[0].error}")
    if not search.folds:
        return [*lines, "", *_best_rows(search, search.ranked, top)]
    lines += ["", f"walk-forward, rolling: {len(search.folds)} folds over {len(search.folds) + 1} windows; "
              "fit on window i, test on window i+1"]
    extra = search.metric.column != "total_return_pct"
    lines += table(["fold", "in sample", "out of sample", "best parameters", f"in {search.metric.name}",
                    f"out {search.metric.name}", *(["out return %"] if extra else []), "out trades"],
                   [_fold_row(search, fold, extra) for fold in search.folds])
    combined = search.combined
    if combined is not None:
        figures = [(search.metric.name, search.metric.column, ",.4f")] if search.metric.column not in (
            "total_return_pct", "max_drawdown_pct", "trades") else []
        figures += [("return", "total_return_pct", "+,.2f"), ("max drawdown", "max_drawdown_pct", ".2f"),
                    ("trades", "trades", "")]
        text = ", ".join(f"{label} {figure(combined[column], spec) if spec else figure(combined[column])}"
                         f"{'%' if column.endswith('_pct') else ''}" for label, column, spec in figures)
        lines += ["", f"combined out of sample ({_day(search.folds[0].out_of_sample[1])} .. "
                  f"{_day(search.folds[-1].out_of_sample[2])}, one account): {text}, final equity "
                  f"{combined['final_equity']:,.2f}"]
    return lines


def _fold_row(search: Search, fold: Fold, with_return: bool) -> list[str]:
    metric = search.metric
    best = fold.best
    summary = fold.report["summary"] if fold.report is not None else None
    out_metric = figure(summary.get(metric.column), ",.4f") if summary else fold.error
    return [str(fold.number), f"{_day(fold.in_sample[1])} .. {_day(fold.in_sample[2])}",
            f"{_day(fold.out_of_sample[1])} .. {_day(fold.out_of_sample[2])}",
            describe(best.params) if best is not None else "none",
            figure(best.value(metric) if best is not None else None, ",.4f"), out_metric,
            *([figure(summary["total_return_pct"], "+,.2f") if summary else "n/a"] if with_return else []),
            figure(summary["trades"]) if summary else "n/a"]


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _write_points(path: Path, keys: list[str], rows: list[tuple[list[Any], Outcome]], lead: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*lead, *keys, *COLUMNS, "error"])
        for prefix, outcome in rows:
            figures = outcome.figures or {}
            writer.writerow([*prefix, *(v for _, v in outcome.params), *(_cell(figures.get(c)) for c in COLUMNS),
                             outcome.error])


def write_results(directory: str | Path, search: Search, title: str) -> list[Path]:
    """Write results.csv (and walk_forward.csv, or heatmap.png for two parameters) into
    ``directory`` (created if needed); return the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    keys = [axis.key for axis in search.plan.axes]
    results = out / "results.csv"
    if not search.folds:
        _write_points(results, keys, [([], o) for o in search.ranked], [])
        written = [results]
        if len(search.plan.axes) == 2:
            written.append(_heatmap(out / "heatmap.png", search, title))
        return written
    _write_points(results, keys, [([f.number], o) for f in search.folds for o in f.ranked], ["fold"])
    folds = out / "walk_forward.csv"
    with folds.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fold", "in_sample_from", "in_sample_to", "out_of_sample_from", "out_of_sample_to", *keys,
                         f"in_sample_{search.metric.column}", *(f"out_of_sample_{c}" for c in COLUMNS), "error"])
        for f in search.folds:
            best = f.best
            summary = f.report["summary"] if f.report is not None else {}
            writer.writerow([f.number, iso_utc(f.in_sample[1]), iso_utc(f.in_sample[2]), iso_utc(f.out_of_sample[1]),
                             iso_utc(f.out_of_sample[2]),
                             *([v for _, v in best.params] if best is not None else [""] * len(keys)),
                             _cell(best.value(search.metric) if best is not None else None),
                             *(_cell(summary.get(c)) for c in COLUMNS), f.error])
    return [results, folds]


def _heatmap(path: Path, search: Search, title: str) -> Path:
    """The metric over the two parameters; blank where a point was skipped, failed or undefined."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols = search.plan.axes
    grid = np.full((len(rows.values), len(cols.values)), np.nan)
    where = {value: n for n, value in enumerate(rows.values)}, {value: n for n, value in enumerate(cols.values)}
    for outcome in search.ranked:
        value = outcome.value(search.metric)
        if value is not None:
            (_, a), (_, b) = outcome.params
            grid[where[0][a], where[1][b]] = value
    size = (max(5.0, 0.55 * len(cols.values) + 2.5), max(4.0, 0.4 * len(rows.values) + 2))
    figure_, axes = plt.subplots(figsize=size)
    image = axes.imshow(grid, origin="lower", aspect="auto", cmap="viridis" if search.metric.maximise else "viridis_r")
    axes.set_xticks(range(len(cols.values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in cols.values],
                    rotation=90 if len(cols.values) > 12 else 0)
    axes.set_yticks(range(len(rows.values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in rows.values])
    axes.set_xlabel(cols.key)
    axes.set_ylabel(rows.key)
    figure_.colorbar(image, ax=axes, label=search.metric.name)
    best = next((o for o in search.ranked if o.value(search.metric) is not None), None)
    if best is not None:
        (_, a), (_, b) = best.params
        axes.plot(where[1][b], where[0][a], marker="*", color="red", markersize=14, linestyle="none",
                  label=f"best: {describe(best.params)}")
        axes.legend(loc="upper left", fontsize=8, framealpha=0.8)
    axes.set_title(f"{title}: {search.metric.name}", fontsize=10)
    figure_.tight_layout()
    figure_.savefig(path, dpi=100)
    plt.close(figure_)
    return path
