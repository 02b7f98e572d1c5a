"""Speed of run.py optimize: a 64-point grid on one and two worker processes, against the same backtests
run one by one.

    python -m bench.optimize_speed [--runs 3] [--jobs 2]

The grid is sma_cross fast=2:16:2 x slow=20:90:10 (8 x 8 = 64 points, all valid) on the bundled sample
(2024, three symbols, 26,352 hourly bars: 8,784 bar closes per backtest). Each measurement runs --runs
times, alternating, and the table shows the median and, in brackets, every run:

  one by one     run_backtest(settings, bars, db, progress=False) for each point, one after the other in
                 this process, each into a fresh sqlite file as a worker does: only the loop is timed.
  optimize -j N  supervisors.optimize.optimize(..., jobs=N), what run.py optimize calls: worker processes
                 started (fork), every backtest, the results back and ranked. Not timed: imports, loading
                 the bars, the table and the files.

Per backtest = wall time / 64. CPU s = user + system time of this process and its (finished) worker
processes over the measurement, per backtest: what the work costs whatever else runs on the machine.
The best point and the whole ranking must be the same in every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from settings import load_settings  # noqa: E402
from supervisors.grid import describe as describe_point  # noqa: E402
from supervisors.grid import metric_named, param_texts, parse_axis  # noqa: E402
from supervisors.logs import setup_logging  # noqa: E402
from supervisors.modes import load_backtest_bars, run_backtest  # noqa: E402
from supervisors.optimize import optimize, plan_grid  # noqa: E402

GRID = ("fast=2:16:2", "slow=20:90:10")


def cpu_seconds() -> float:
    """User + system time of this process and of its children that have ended."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def one_by_one(settings, bars, plan) -> float:  # type: ignore[no-untyped-def]
    """Seconds to run every point's backtest in this process, one after the other."""
    began = time.perf_counter()
    for point in plan.valid:
        chosen = settings.with_values({"strategy.params": param_texts(point)})
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            run_backtest(chosen, bars, str(Path(folder) / "backtest.db"), progress=False)
    return time.perf_counter() - began


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the parallel run (default 2)")
    args = parser.parse_args()
    setup_logging("WARNING")
    tqdm.tqdm.monitor_interval = 0  # no monitor thread: the pool forks from a process with one thread
    settings = load_settings(env={})
    with tempfile.TemporaryDirectory() as folder:
        bars, source = load_backtest_bars(None, str(Path(folder) / "none.db"), None, None, None)
    plan = plan_grid(settings, [parse_axis(text) for text in GRID])
    metric = metric_named("sharpe")
    assert len(plan.valid) == 64, len(plan.valid)
    print(describe())
    print(f"grid sma_cross {' x '.join(GRID)}: {len(plan.valid)} points; {len(bars):,} bars from {source}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    labels = ("one by one", "optimize -j 1", f"optimize -j {args.jobs}")
    times: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    rankings = set()
    for _ in range(args.runs):
        before = cpu_seconds()
        times["one by one"].append(one_by_one(settings, bars, plan))
        cpu["one by one"].append(cpu_seconds() - before)
        for jobs in (1, args.jobs):
            assert threading.active_count() == 1, threading.enumerate()
            before = cpu_seconds()
            search = optimize(settings, bars, plan, metric, jobs=jobs, progress=False)
            cpu[f"optimize -j {jobs}"].append(cpu_seconds() - before)
            assert search.workers == f"{jobs} worker process{'es' * (jobs != 1)}", search.workers
            times[f"optimize -j {jobs}"].append(search.seconds)
            rankings.add(tuple((o.params, tuple(sorted(o.figures.items()))) for o in search.ranked))
    assert len(rankings) == 1, "the ranking differs between runs"
    best = next(iter(rankings))[0][0]
    serial = statistics.median(times["one by one"])
    print(f"{'':<16}{'wall s':>8}{'per backtest s':>16}{'vs one by one':>15}{'CPU s per backtest':>20}  runs (s)")
    for label, runs in times.items():
        median = statistics.median(runs)
        print(f"{label:<16}{median:>8.2f}{median / len(plan.valid):>16.4f}{serial / median:>14.2f}x"
              f"{statistics.median(cpu[label]) / len(plan.valid):>20.4f}  {', '.join(f'{r:.2f}' for r in runs)}")
    one, many = statistics.median(times["optimize -j 1"]), statistics.median(times[f"optimize -j {args.jobs}"])
    print(f"-j {args.jobs} takes {many / one:.0%} of -j 1's time ({one / many:.2f}x); best point by sharpe: "
          f"{describe_point(best)} in every run; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
