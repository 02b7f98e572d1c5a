"""run.py optimize as a real subprocess: the same ranking and CSV rows on one or two worker processes and
on a local Dask cluster, each row the backtest of its parameters, walk-forward folds, and bad input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from actors.store.history import iso_utc, load_bar_file, select_range
from settings import SAMPLE_DATA, load_settings
from supervisors.grid import COLUMNS
from supervisors.modes import run_backtest
from tests.conftest import free_endpoint
from tests.helpers import ROOT, run_cli, start_cli
from tests.integration.test_user_strategy import RSI_DIP

pytestmark = pytest.mark.timeout(180)

RANGE = ("--from", "2024-01-01", "--to", "2024-03-31", "--symbols", "BTCUSD")
GRID = ("--grid", "fast=5:15:5", "--grid", "slow=10:30:10")  # 9 points, of which fast >= slow refuses 2


def optimize(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / name
    result = run_cli("optimize", *RANGE, "--db", str(tmp_path / "none.db"), "--out", str(out), *args, timeout=120)
    return result, out


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a CLI run started in the background (bounded); it must have succeeded."""
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def ranking(stdout: str) -> list[str]:
    """The printed report without the line that says where and how fast the backtests ran."""
    return [line for line in stdout.splitlines() if not line.lstrip().startswith(("ran ", "written:"))]


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """A Dask scheduler and two single-threaded workers, as separate processes on loopback."""
    distributed = pytest.importorskip("distributed")
    address = free_endpoint()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "dask.log").open("w")
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", address.rpartition(":")[2], "--no-dashboard"],
                                 cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    workers = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                                "--nthreads", "1", "--no-dashboard"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in (workers, scheduler):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


def test_one_two_processes_and_a_dask_cluster_give_the_same_ranking_and_csv(tmp_path: Path,
                                                                           dask_scheduler: str) -> None:
    runs = {name: start_cli("optimize", *RANGE, "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / name),
                            *GRID, *where) for name, where in (("one", ("--jobs", "1")), ("two", ("--jobs", "2")),
                                                               ("dask", ("--cluster", dask_scheduler)))}
    one, two, dask = (finished(runs[name]) for name in ("one", "two", "dask"))
    out_one, out_two, out_dask = (tmp_path / name for name in ("one", "two", "dask"))
    assert "on 1 worker process " in one.stdout and "on 2 worker processes" in two.stdout
    assert f"on 2 Dask workers at {dask_scheduler}" in dask.stdout
    assert "fast (3), slow (3): 9 points, 7 valid" in one.stdout
    assert "skipped       2 points the strategy refuses, e.g. fast=10 slow=10: " in one.stdout
    assert ranking(one.stdout) == ranking(two.stdout) == ranking(dask.stdout)
    csv_bytes = (out_one / "results.csv").read_bytes()
    assert csv_bytes == (out_two / "results.csv").read_bytes() == (out_dask / "results.csv").read_bytes()
    table = rows(out_one / "results.csv")
    assert len(table) == 7 and list(table[0]) == ["fast", "slow", *COLUMNS, "error"]
    sharpe = [float(r["sharpe"]) for r in table]
    assert sharpe == sorted(sharpe, reverse=True) and all(r["error"] == "" for r in table)
    best = table[0]
    header = next(n for n, line in enumerate(one.stdout.splitlines()) if line.startswith("rank"))
    assert one.stdout.splitlines()[header + 1].split()[:3] == ["1", best["fast"], best["slow"]]
    for out in (out_one, out_two, out_dask):
        png = (out / "heatmap.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_each_row_is_the_backtest_of_its_parameters(tmp_path: Path) -> None:
    result, out = optimize(tmp_path, "run", "--grid", "fast=5,15", "--param", "slow=20", "--metric", "max_drawdown")
    assert result.returncode == 0, result.stderr
    table = rows(out / "results.csv")
    drawdowns = [float(r["max_drawdown_pct"]) for r in table]
    assert len(table) == 2 and drawdowns == sorted(drawdowns)  # the smallest drawdown first
    assert not (out / "heatmap.png").exists()  # one parameter: no heatmap
    bars = select_range(load_bar_file(SAMPLE_DATA), pd.Timestamp("2024-01-01", tz="UTC").value,
                        pd.Timestamp("2024-04-01", tz="UTC").value, ("BTCUSD",))
    for row in table:
        settings = load_settings(env={}, overrides={"strategy.params": (f"fast={row['fast']}", "slow=20")})
        summary = run_backtest(settings, bars, str(tmp_path / "check.db"), progress=False)["summary"]
        assert {c: row[c] for c in COLUMNS} == {c: "" if summary[c] is None else str(summary[c]) for c in COLUMNS}


def test_walk_forward_tests_each_folds_best_on_the_next_window(tmp_path: Path) -> None:
    result, out = optimize(tmp_path, "wf", *GRID, "--walk-forward", "2", "--metric", "return", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "walk-forward, rolling: 2 folds over 3 windows" in result.stdout
    assert "ran           16 backtests" in result.stdout  # 7 points x 2 folds in sample, 2 out of sample
    folds = rows(out / "walk_forward.csv")
    fitted = rows(out / "results.csv")
    assert len(folds) == 2 and len(fitted) == 14
    bars = load_bar_file(SAMPLE_DATA, symbol="BTCUSD")
    growth = 1.0
    for fold in folds:
        in_sample = [r for r in fitted if r["fold"] == fold["fold"]]
        best = max(in_sample, key=lambda r: float(r["total_return_pct"]))
        chosen = (fold["fast"], fold["slow"])
        assert chosen == (best["fast"], best["slow"]) == (in_sample[0]["fast"], in_sample[0]["slow"])
        window = bars[(bars["ts"] >= pd.Timestamp(fold["out_of_sample_from"]).value)
                      & (bars["ts"] <= pd.Timestamp(fold["out_of_sample_to"]).value)].reset_index(drop=True)
        settings = load_settings(env={}, overrides={"strategy.params": (f"fast={chosen[0]}", f"slow={chosen[1]}")})
        summary = run_backtest(settings, window, str(tmp_path / "check.db"), progress=False)["summary"]
        assert iso_utc(int(window["ts"].iloc[0])) == fold["out_of_sample_from"]
        assert fold["out_of_sample_final_equity"] == str(summary["final_equity"])
        assert fold["out_of_sample_trades"] == str(summary["trades"])
        growth *= summary["final_equity"] / summary["initial_cash"]
    assert f"final equity {100_000 * growth:,.2f}" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--grid", "fast=5:x:5"), "run.py optimize: error: argument --grid: --grid 'fast=5:x:5': 'x' is not a number"),
    (("--grid", "speed=1,2"), "run.py: error: --grid 'speed=1,2': strategy 'sma_cross' has no parameter 'speed'; "
                              "valid parameters: fast=10, slow=30, min_prob=0.0"),
    (("--grid", "fast=5,6", "--metric", "sharp"), "run.py: error: unknown metric 'sharp'; valid: sharpe, sortino, "),
])
def test_a_bad_grid_or_metric_is_one_line_and_exit_2_with_nothing_written(tmp_path: Path, args: tuple[str, ...],
                                                                         message: str) -> None:
    result, out = optimize(tmp_path, "bad", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "" and not out.exists()


def test_a_strategy_from_a_file_outside_the_project_is_optimised_in_the_workers(tmp_path: Path) -> None:
    source = tmp_path / "mine" / "rsi_dip.py"
    source.parent.mkdir()
    source.write_text(RSI_DIP)
    reference = f"{source}:RsiDip"
    result, out = optimize(tmp_path, "mine", "--strategy", reference, "--grid", "below=5,15", "--param", "above=60",
                           "--jobs", "2")
    assert result.returncode == 0, result.stderr
    table = rows(out / "results.csv")
    assert sorted(r["below"] for r in table) == ["15.0", "5.0"]  # a float parameter: its values are floats
    bars = select_range(load_bar_file(SAMPLE_DATA), pd.Timestamp("2024-01-01", tz="UTC").value,
                        pd.Timestamp("2024-04-01", tz="UTC").value, ("BTCUSD",))
    for row in table:
        settings = load_settings(env={}, overrides={"strategy.name": reference,
                                                    "strategy.params": (f"below={row['below']}", "above=60")})
        summary = run_backtest(settings, bars, str(tmp_path / "check.db"), progress=False)["summary"]
        assert int(row["trades"]) == summary["trades"] > 0
        assert row["final_equity"] == str(summary["final_equity"])
    bad, _ = optimize(tmp_path, "bad", "--strategy", reference, "--grid", "rsi=2.5")
    assert bad.returncode == 2
    assert bad.stderr == "run.py: error: --grid 'rsi=2.5': parameter 'rsi' must be an integer (its default is 2), got 2.5\n"
