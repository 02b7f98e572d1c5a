"""Backtests through the real actors, in this process and through the CLI."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest

from actors.feed.replay import ReplayPlan, in_flight
from actors.store.writer import Database
from actors.store.history import load_bar_file, select_range
from messages.system import Crash
from settings import SAMPLE_DATA, load_settings
from supervisors.clock import SimClock
from supervisors.deps import Deps
from supervisors.health import Counters
from supervisors.modes import _replay, run_backtest
from supervisors.system import System
from tests.helpers import run_cli

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def bars():
    return select_range(load_bar_file(SAMPLE_DATA), None, None, ("BTCUSD", "ETHUSD"))


def test_batch_size_does_not_change_the_trades(bars, tmp_path: Path) -> None:
    big = run_backtest(load_settings(env={}, overrides={"backtest.chunk": 20_000}), bars, str(tmp_path / "a.db"), progress=False)
    small = run_backtest(load_settings(env={}, overrides={"backtest.chunk": 7}), bars, str(tmp_path / "b.db"), progress=False)
    assert big["trades"] == small["trades"]
    assert big["summary"] == small["summary"]
    assert len(big["trades"]) > 20


def test_the_replay_leaves_garbage_collection_as_it_found_it(bars, tmp_path: Path) -> None:
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    run_backtest(load_settings(env={}), bars.iloc[:500], str(tmp_path / "gc.db"), progress=False)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen == 0


def test_backtest_results_are_stored(bars, tmp_path: Path) -> None:
    db_path = str(tmp_path / "r.db")
    report = run_backtest(load_settings(env={}), bars, db_path, progress=False)
    db = Database(db_path)
    try:
        fills = db.count("fills", "backtest")
        assert fills == 2 * len(report["trades"]) + report["summary"]["open_positions"]
        assert db.count("orders", "backtest") >= fills
        assert db.count("signals", "backtest") == db.count("orders", "backtest")
    finally:
        db.close()
    again = run_backtest(load_settings(env={}), bars, db_path, progress=False)
    db = Database(db_path)
    try:
        assert db.count("fills", "backtest") == fills   # a rerun replaces its run, never duplicates
    finally:
        db.close()
    assert again["trades"] == report["trades"]


def test_a_crash_before_the_data_arrives_loses_nothing(bars, tmp_path: Path, monkeypatch) -> None:
    baseline = run_backtest(load_settings(env={}), bars, str(tmp_path / "base.db"), progress=False)

    from supervisors import system as system_module
    original_start = system_module.System.start

    def start_then_crash(self, timeout: float = 10.0) -> None:
        original_start(self, timeout)
        for victim in ("feature", "strategy", "executor"):
            self.registry.tell(victim, Crash("test"))

    monkeypatch.setattr(system_module.System, "start", start_then_crash)
    crashed = run_backtest(load_settings(env={}), bars, str(tmp_path / "crash.db"), progress=False)
    assert crashed["counters"]["dead_letters"] == 3
    assert crashed["trades"] == baseline["trades"]
    assert crashed["summary"] == baseline["summary"]


@pytest.mark.parametrize("victims", [("buffer",), ("feature",), ("model",), ("strategy",), ("executor",),
                                     ("feature", "executor", "buffer", "model", "strategy", "store")])
def test_crashes_mid_replay_give_the_same_trades(bars, tmp_path: Path, victims: tuple[str, ...]) -> None:
    settings = load_settings(env={}, overrides={"backtest.chunk": 300})
    baseline = run_backtest(settings, bars, str(tmp_path / "base.db"), progress=False)

    faults = tuple((3000 + 2500 * i, victim) for i, victim in enumerate(victims))
    crashed = run_backtest(settings, bars, str(tmp_path / "crash.db"), progress=False, faults=faults)
    assert crashed["counters"]["dead_letters"] == len(victims)
    assert crashed["trades"] == baseline["trades"]
    assert crashed["summary"] == baseline["summary"]


def test_a_tiny_heartbeat_timeout_loses_no_bar(bars, tmp_path: Path) -> None:
    """The replay runs about a hundred times longer than the heartbeat timeout: nothing is taken for hung."""
    baseline = run_backtest(load_settings(env={}), bars, str(tmp_path / "base.db"), progress=False)
    settings = load_settings(env={}, overrides={"supervisor.heartbeat_s": 0.01, "supervisor.heartbeat_timeout_s": 0.01,
                                                "backtest.chunk": 50})
    report = run_backtest(settings, bars, str(tmp_path / "tiny.db"), progress=False)
    c = report["counters"]
    assert c["bars_read"] == c["bars_processed"] == c["bars"] == len(bars)
    assert c["dead_letters"] == c["hangs"] == c["late_output_dropped"] == c["bars_dropped_at_stop"] == 0
    assert report["trades"] == baseline["trades"] and report["summary"] == baseline["summary"]


class _PeakCounters(Counters):
    """Counters that also remember the most bars ever in flight after an add."""

    peak = 0

    def add(self, reasons=None, **deltas: int) -> None:
        super().add(reasons, **deltas)
        self.peak = max(self.peak, in_flight(self.snapshot()))


def test_the_window_bounds_the_bars_in_flight(bars, tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"backtest.chunk": 100, "backtest.window": 3})
    plan = ReplayPlan(bars, 100)
    system = System(settings, "backtest", Deps.of(settings, "backtest", replay=plan, symbols=("BTCUSD", "ETHUSD"),
                                                         db_path=str(tmp_path / "w.db")),
                    clock=SimClock(int(bars["ts"].iloc[0])))
    system.counters = counters = _PeakCounters()
    system.start()
    try:
        report = _replay(system, plan.bars, False, ())
    finally:
        system.stop()
    assert report["counters"]["bars_processed"] == len(bars)
    # a batch is sent only while fewer than window x chunk bars are in flight; a batch holds at most
    # chunk bars plus the rest of its last timestamp (one bar per symbol)
    assert 100 <= counters.peak < 3 * 100 + 100 + 2


def _run_cli_in(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "cli.db"), *args, env=env)


def test_a_fifty_ms_heartbeat_timeout_and_fifty_bar_batches_give_the_default_trades(tmp_path: Path) -> None:
    default = _run_cli_in(tmp_path, "--json")
    assert default.returncode == 0, default.stderr
    expected = json.loads(default.stdout)
    assert expected["summary"]["trades"] == 473 and round(expected["summary"]["final_equity"], 2) == 113_450.21
    env = {"TRADING_SUPERVISOR_HEARTBEAT_TIMEOUT_S": "0.05", "TRADING_BACKTEST_CHUNK": "50"}
    for _ in range(2):
        run = _run_cli_in(tmp_path, "--json", env=env)
        assert run.returncode == 0, run.stderr
        assert run.stdout == default.stdout
    assert expected["summary"]["bars_read"] == expected["summary"]["bars_processed"] == 26_352


FLAKY = '''
import threading

import numpy as np

calls = [0]


def {name}(x):
    calls[0] += 1
    if {fails}:
        raise RuntimeError("the model failed on call %d" % calls[0])
    return np.full(len(x), 0.6)
'''


def _plugin(tmp_path: Path, name: str, fails: str, **supervisor: float) -> tuple[str, dict[str, str]]:
    (tmp_path / f"{name}_model.py").write_text(FLAKY.format(name=name, fails=fails))
    settings = tmp_path / f"{name}.toml"
    lines = ["[model]", 'kind = "plugin"', f'plugin = "{name}_model:{name}"', "[strategy]", 'name = "ma_model"',
             "[backtest]", "chunk = 2000", "[supervisor]", *(f"{k} = {v}" for k, v in supervisor.items())]
    settings.write_text("\n".join(lines) + "\n")
    return str(settings), {"PYTHONPATH": str(tmp_path)}


def test_a_backtest_with_a_dead_letter_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    settings, env = _plugin(tmp_path, "flaky", "calls[0] == 3")
    result = _run_cli_in(tmp_path, "--json", "--settings", settings, env=env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("run.py: error: backtest incomplete: 1 messages dead-lettered (")
    summary = json.loads(result.stdout)["summary"]
    assert summary["dead_letters"] == 1 and summary["bars_dead_lettered"] > 0
    assert summary["bars_read"] == summary["bars_processed"] + summary["bars_dead_lettered"]


def test_when_the_root_gives_up_the_backtest_fails_in_one_line_and_accounts_for_every_bar(tmp_path: Path) -> None:
    settings, env = _plugin(tmp_path, "broken", "True", max_restarts=1, backoff_max_s=0.05)
    result = _run_cli_in(tmp_path, "--settings", settings, env=env)
    assert result.returncode == 1 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]  # (the crashes above it are logged with their tracebacks)
    found = re.fullmatch(r"run\.py: error: backtest failed: supervisor root: .* \(bars read ([\d,]+), processed "
                         r"([\d,]+), dead-lettered ([\d,]+), dropped at stop ([\d,]+)\)", last)
    assert found, last
    read, processed, dead, dropped = (int(g.replace(",", "")) for g in found.groups())
    assert read > 0 and dead > 0
    assert read == processed + dead + dropped


def test_a_stuck_actor_fails_the_backtest_in_one_line_and_the_process_exits(tmp_path: Path) -> None:
    """The model plug-in never returns from its third call: the model is stuck, the run fails loudly
    (its thread cannot be stopped) and the process still exits, every bar accounted for."""
    settings, env = _plugin(tmp_path, "stuck", "calls[0] == 3 and threading.Event().wait()", heartbeat_s=0.05,
                            heartbeat_timeout_s=0.1, stuck_timeout_s=1.0)
    result = _run_cli_in(tmp_path, "--settings", settings, env=env)
    assert result.returncode == 1 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    found = re.fullmatch(r"run\.py: error: backtest failed: model is stuck: no heartbeat answer .* inside MarketBatch;"
                         r" .* \(bars read ([\d,]+), processed ([\d,]+), dead-lettered ([\d,]+), dropped at stop "
                         r"([\d,]+)\)", last)
    assert found, last
    read, processed, dead, dropped = (int(g.replace(",", "")) for g in found.groups())
    assert dead > 0 and dropped > 0
    assert read == processed + dead + dropped
