"""Two failures in one rest_for_one group at once: queues keep their order across the restarts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actors.store.history import load_bar_file, select_range
from messages.system import Crash
from settings import SAMPLE_DATA, load_settings
from supervisors.actor import SupervisedActor
from supervisors.modes import run_backtest
from supervisors.supervisor import Supervisor

pytestmark = pytest.mark.timeout(60)


def test_a_child_failing_while_its_group_restarts_for_a_sibling_keeps_its_queue_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model fails; before the supervisor handles that, the strategy (downstream, restarted with it)
    fails too, having handed its queue to its report. The restarted strategy must see that queue first."""
    bars = select_range(load_bar_file(SAMPLE_DATA), None, None, ("BTCUSD",)).head(3000)
    settings = load_settings(env={}, overrides={"strategy.name": "ma_model", "backtest.chunk": 300})
    baseline = run_backtest(settings, bars, str(tmp_path / "base.db"), progress=False)

    model_failed, strategy_failed = threading.Event(), threading.Event()
    original_receive, original_fail = SupervisedActor.on_receive, SupervisedActor._fail
    original_child_failed = Supervisor._child_failed

    def receive(self: SupervisedActor, message: object) -> object:
        if isinstance(message, Crash) and message.target == "strategy" == self.name:
            model_failed.wait(10)  # crash the strategy only once the model's failure is reported
        return original_receive(self, message)

    def fail(self: SupervisedActor, exc: BaseException | None) -> None:
        original_fail(self, exc)
        {"model": model_failed, "strategy": strategy_failed}.get(self.name, threading.Event()).set()

    def child_failed(self: Supervisor, failed: object) -> None:
        if getattr(failed, "name", "") == "model":
            strategy_failed.wait(10)  # handle the model's failure only once the strategy failed too
        original_child_failed(self, failed)

    monkeypatch.setattr(SupervisedActor, "on_receive", receive)
    monkeypatch.setattr(SupervisedActor, "_fail", fail)
    monkeypatch.setattr(Supervisor, "_child_failed", child_failed)
    crashed = run_backtest(settings, bars, str(tmp_path / "crash.db"), progress=False,
                           faults=((600, "strategy"), (1200, "model")))
    assert model_failed.is_set() and strategy_failed.is_set()
    assert crashed["counters"]["dead_letters"] == 2
    assert crashed["trades"] == baseline["trades"] and len(baseline["trades"]) > 10
    assert crashed["summary"] == baseline["summary"]
