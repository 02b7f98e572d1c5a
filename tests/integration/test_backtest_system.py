"""Backtests through the real actors, in this process."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from actors.store.db import Database
from actors.store.history import load_bar_file, select_range
from messages.system import Crash
from settings import SAMPLE_DATA, load_settings
from supervisors.modes import run_backtest

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
