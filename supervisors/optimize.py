"""Parameter search: many backtests of one strategy over a grid, in worker processes or on a Dask cluster.

Every point runs one full backtest through the same actors as ``run.py backtest``
(:func:`supervisors.modes.run_backtest`), in a worker: a process of a
``concurrent.futures.ProcessPoolExecutor``, or a Dask worker through ``Client.get_executor()``;
one code path submits the tasks to either. The bars and the settings go to each worker once
(the pool's initializer; a Dask worker plugin), each task carries only its parameters and its
window. A worker runs one backtest at a time, into a sqlite file of its own that is deleted
after the task. Results are ranked by :func:`supervisors.grid.rank`, so the same inputs give the
same ranking whatever the number of workers or the order they finish in.

Walk-forward (``walk_forward`` = K): the range is split into K + 1 consecutive windows of nearly
equal numbers of bar closes; fold i fits on window i (the best point by the metric) and tests
those parameters on window i + 1, a rolling (not anchored) split. Each window is a backtest of
its own, starting flat with the initial cash. The out-of-sample windows, chained as one account,
give the combined result (:func:`supervisors.grid.stitch`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger
from tqdm import tqdm

from settings import Settings
from supervisors.errors import BacktestFailed, GridError, SettingsError
from supervisors.grid import COLUMNS, Axis, Metric, Outcome, Params, param_texts, points, rank, stitch, windows

__all__ = ["Fold", "Plan", "Search", "Task", "WorkerPayload", "default_jobs", "forget_run", "optimize", "plan_grid",
           "run_task", "setup_worker"]

Window = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Task:
    """One backtest: the grid point, the window of bar closes ``(after, until]`` (None: every bar),
    and whether to bring back the equity curve and the trades."""

    params: Params
    window: Window = None
    curve: bool = False


@dataclass(frozen=True, slots=True)
class WorkerPayload:
    """What every worker holds for a run: the settings and the bars."""

    settings: Settings
    bars: pd.DataFrame


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward fold: the windows, the best in-sample point, and its out-of-sample result."""

    number: int
    in_sample: tuple[int, int, int]
    out_of_sample: tuple[int, int, int]
    ranked: list[Outcome]
    report: dict[str, Any] | None
    error: str = ""

    @property
    def best(self) -> Outcome | None:
        """The in-sample winner (None if every in-sample backtest failed)."""
        return self.ranked[0] if self.ranked and not self.ranked[0].error else None


@dataclass(frozen=True, slots=True)
class Plan:
    """A grid checked against the strategy: the points it accepts, and how many it refuses (a bad
    combination, e.g. fast >= slow) with one of them and the strategy's reason."""

    axes: tuple[Axis, ...]
    valid: list[Params]
    skipped: int
    skipped_example: str


@dataclass(frozen=True, slots=True)
class Search:
    """What an optimisation found."""

    plan: Plan
    metric: Metric
    ranked: list[Outcome]
    workers: str
    seconds: float
    backtests: int
    folds: list[Fold] = field(default_factory=list)
    combined: dict[str, Any] | None = None

    @property
    def failed(self) -> list[Outcome]:
        """Backtests that could not finish: of the grid, or of every fold in and out of sample."""
        return ([o for o in self.ranked if o.error] + [o for f in self.folds for o in f.ranked if o.error]
                + [Outcome(f.best.params, None, f.error) for f in self.folds if f.best is not None and f.error])


_STATE: dict[str, WorkerPayload] = {}  # per run: a Dask worker may serve several runs
_ONE_AT_A_TIME = threading.Lock()      # a Dask worker with several threads still runs one backtest at a time


def setup_worker(run_id: str, payload: WorkerPayload) -> None:
    """Keep the run's settings and bars in this worker; log warnings and errors only."""
    _STATE[run_id] = payload
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{time:HH:mm:ss.SSS} {level: <7} worker {process} {message}")


def forget_run(run_id: str) -> None:
    """Drop the run's data from this worker."""
    _STATE.pop(run_id, None)


def _setup_pool_worker(run_id: str, payload: WorkerPayload) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it cancels what is queued
    setup_worker(run_id, payload)


def run_task(run_id: str, task: Task) -> tuple[dict[str, Any] | None, str]:
    """Run one backtest in this worker: its summary figures (``COLUMNS``, and with ``task.curve`` the
    equity curve and trades), or None and why it failed."""
    from supervisors.modes import bars_lost, run_backtest

    payload = _STATE.get(run_id)
    if payload is None:
        raise RuntimeError(f"this worker holds no data for optimisation run {run_id}")
    bars = payload.bars
    if task.window is not None:
        ts = bars["ts"].to_numpy()
        bars = bars[(ts > task.window[0]) & (ts <= task.window[1])].reset_index(drop=True)
    settings = payload.settings.with_values(
        {"strategy.params": payload.settings.strategy.params + param_texts(task.params)})
    with _ONE_AT_A_TIME, tempfile.TemporaryDirectory(prefix="optimize-") as folder:
        try:
            report = run_backtest(settings, bars, str(Path(folder) / "backtest.db"), progress=False)
        except BacktestFailed as exc:
            return None, str(exc)
    c = report["counters"]
    if c["dead_letters"] or bars_lost(c):
        return None, (f"backtest incomplete: {c['dead_letters']:,} messages dead-lettered "
                      f"({c['bars_dead_lettered']:,} bars), {bars_lost(c):,} bars lost")
    figures: dict[str, Any] = {k: report["summary"][k] for k in COLUMNS}
    if task.curve:
        figures.update(summary=report["summary"], trades=report["trades"], equity_ts=report["equity_ts"],
                       equity=report["equity"])
    return figures, ""


def default_jobs() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def plan_grid(settings: Settings, axes: Sequence[Axis]) -> Plan:
    """Check every point of ``axes`` with ``settings``' strategy; GridError if it refuses them all."""
    valid, skipped, example = [], 0, ""
    for point in points(axes):
        try:
            settings.with_values({"strategy.params": settings.strategy.params + param_texts(point)})
        except SettingsError as exc:
            skipped += 1
            if not example:
                reason = str(exc).partition("; valid parameters:")[0].removeprefix("settings key 'strategy.params': ")
                example = f"{' '.join(param_texts(point))}: {reason}"
            continue
        valid.append(point)
    if not valid:
        raise GridError(f"every point of the grid is refused by the strategy, e.g. {example}")
    return Plan(tuple(axes), valid, skipped, example)


@contextmanager
def _executor(run_id: str, payload: WorkerPayload, jobs: int, cluster: str | None) -> Iterator[tuple[Executor, str]]:
    """A ``concurrent.futures`` executor whose workers hold ``payload``: a process pool, or a Dask cluster."""
    if cluster:
        from supervisors.cluster import dask_executor
        with dask_executor(cluster, run_id, payload) as (executor, workers):
            yield executor, f"{workers} Dask worker{'s' * (workers != 1)} at {cluster}"
        return
    # fork: the workers start with the modules and the bars already in memory, nothing sent; safe only
    # while this process runs no other thread (a lock held by one would stay locked in the children),
    # so with threads running (a caller's, tqdm's monitor) they are spawned and sent the bars instead
    forkable = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    context = multiprocessing.get_context("fork" if forkable else "spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_setup_pool_worker, initargs=(run_id, payload))
    try:
        yield pool, f"{jobs} worker process{'es' * (jobs != 1)}"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_all(executor: Executor, run_id: str, tasks: Sequence[Task], progress: bool,
             desc: str) -> list[tuple[dict[str, Any] | None, str]]:
    """Submit every task, follow them with a progress bar, and return their results in task order."""
    futures = {executor.submit(run_task, run_id, task): n for n, task in enumerate(tasks)}
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), unit="backtest", desc=desc, disable=None if progress else True) as bar:
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update()
    return results


def _outcomes(tasks: Sequence[Task], results: Sequence[tuple[dict[str, Any] | None, str]]) -> list[Outcome]:
    return [Outcome(task.params, figures, error) for task, (figures, error) in zip(tasks, results, strict=True)]


def optimize(settings: Settings, bars: pd.DataFrame, plan: Plan, metric: Metric, *, jobs: int | None = None,
             cluster: str | None = None, walk_forward: int = 0, progress: bool = True,
             on_start: Callable[[str], None] | None = None) -> Search:
    """Backtest the points of ``plan`` with ``settings`` on ``bars`` and rank them by ``metric``; with
    ``walk_forward`` = K, fit and test over K rolling folds (GridError if the range is too short).
    ``on_start`` hears where the backtests run."""
    if walk_forward < 0:
        raise GridError(f"--walk-forward {walk_forward}: give a number of folds >= 1")
    bounds = windows(np.unique(bars["ts"].to_numpy()), walk_forward + 1) if walk_forward else []
    run_id = uuid.uuid4().hex
    count = len(plan.valid) * max(1, walk_forward)
    began = time.monotonic()
    with _executor(run_id, WorkerPayload(settings, bars), min(jobs or default_jobs(), count), cluster) as (
            executor, workers):
        if on_start is not None:
            on_start(workers)
        if not walk_forward:
            tasks = [Task(point) for point in plan.valid]
            ranked = rank(_outcomes(tasks, _run_all(executor, run_id, tasks, progress, "optimize")), metric)
            return Search(plan, metric, ranked, workers, time.monotonic() - began, len(tasks))
        folds = _walk_forward(executor, run_id, plan.valid, bounds, metric, progress)
    reports = [f.report for f in folds if f.report is not None]
    combined = stitch(reports, reports[0]["summary"]["initial_cash"]) if reports else None
    return Search(plan, metric, [], workers, time.monotonic() - began, count + sum(f.best is not None for f in folds),
                  folds, combined)


def _walk_forward(executor: Executor, run_id: str, valid: list[Params], bounds: list[tuple[int, int, int]],
                  metric: Metric, progress: bool) -> list[Fold]:
    """Fit every fold on its in-sample window, then run each fold's best point out of sample."""
    folds = len(bounds) - 1
    tasks = [Task(point, (bounds[i][0], bounds[i][2])) for i in range(folds) for point in valid]
    outcomes = _outcomes(tasks, _run_all(executor, run_id, tasks, progress, "walk-forward: in sample"))
    ranked = [rank(outcomes[i * len(valid):(i + 1) * len(valid)], metric) for i in range(folds)]
    tested = [i for i in range(folds) if ranked[i] and not ranked[i][0].error]
    checks = [Task(ranked[i][0].params, (bounds[i + 1][0], bounds[i + 1][2]), curve=True) for i in tested]
    results = dict(zip(tested, _run_all(executor, run_id, checks, progress, "walk-forward: out of sample"),
                       strict=True))
    done = []
    for i in range(folds):
        report, error = results.get(i, (None, "every in-sample backtest failed"))
        done.append(Fold(i + 1, bounds[i], bounds[i + 1], ranked[i], report, error))
    return done
