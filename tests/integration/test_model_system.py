"""The model in the running pipeline: off unless read, plug-ins, and its state kept in sqlite across restarts."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from actors.store.history import load_bar_file, select_range
from messages.codec import encode_bar
from messages.market import Bar
from settings import SAMPLE_DATA, Settings, load_settings
from supervisors.deps import Deps
from supervisors.modes import run_backtest
from supervisors.system import System
from tests.helpers import run_cli, wait_until

pytestmark = pytest.mark.timeout(90)

MINUTE = 60_000_000_000
T0 = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return select_range(load_bar_file(SAMPLE_DATA), None, None, ("BTCUSD",)).head(3000)


def stored_signals(db_path: str) -> list[tuple[str, str, dict, dict]]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT strategy, side, inputs, params FROM signals WHERE run='backtest' ORDER BY ts").fetchall()
    finally:
        db.close()
    return [(strategy, side, json.loads(inputs), json.loads(params)) for strategy, side, inputs, params in rows]


def test_the_model_runs_only_when_a_strategy_reads_it(bars: pd.DataFrame, tmp_path: Path) -> None:
    off = str(tmp_path / "off.db")
    run_backtest(load_settings(env={}), bars, off, progress=False)
    signals = stored_signals(off)
    assert signals and all(inputs["prob_up"] is None for _, _, inputs, _ in signals)
    assert all(params == {"fast": 10, "slow": 30, "min_prob": 0.0} for _, _, _, params in signals)
    gated = str(tmp_path / "gated.db")
    run_backtest(load_settings(env={}, overrides={"strategy.params": ["min_prob=0.5"]}), bars, gated, progress=False)
    buys = [inputs for _, side, inputs, _ in stored_signals(gated) if side == "buy"]
    assert buys and all(inputs["prob_up"] >= 0.5 for inputs in buys)


def test_a_plugin_model_drives_ma_model(bars: pd.DataFrame, tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={
        "strategy.name": "ma_model", "model.kind": "plugin", "model.plugin": "tests.actors.plugin_models:FITTED"})
    path = str(tmp_path / "plugin.db")
    report = run_backtest(settings, bars, path, progress=False)
    signals = stored_signals(path)
    assert report["trades"] and len(signals) >= 2 * len(report["trades"])
    assert {inputs["prob_up"] for _, side, inputs, _ in signals if side == "buy"} == {0.7}
    assert {inputs["prob_up"] for _, side, inputs, _ in signals if side == "sell"} == {0.3}
    assert all(strategy == "ma_model" and params["threshold"] == 0.55 for strategy, _, _, params in signals)
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM model_state").fetchone()[0] == 0  # plug-ins keep none


def test_a_backtest_stores_the_model_state_and_a_rerun_replaces_it(bars: pd.DataFrame, tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"strategy.name": "ma_model", "model.checkpoint_bars": 500,
                                                "backtest.chunk": 700})
    path = str(tmp_path / "state.db")
    for _ in range(2):
        run_backtest(settings, bars, path, progress=False)
        rows = sqlite3.connect(path).execute("SELECT run, symbol, timeframe, ts, kind, state FROM model_state").fetchall()
        assert [row[:5] for row in rows] == [("backtest", "BTCUSD", "1h", int(bars["ts"].iloc[-1]), "logistic")]
        state = json.loads(rows[0][5])
        assert state["updates"] == len(bars) - 30 and state["features"] == list(settings.model.features)


@pytest.mark.parametrize("victims", [("model", "strategy", "feature", "model")])
def test_crashes_mid_replay_with_the_model_in_use_give_the_same_trades(bars: pd.DataFrame, tmp_path: Path,
                                                                      victims: tuple[str, ...]) -> None:
    settings = load_settings(env={}, overrides={"strategy.name": "ma_model", "backtest.chunk": 300})
    baseline = run_backtest(settings, bars, str(tmp_path / "base.db"), progress=False)
    faults = tuple((500 + 600 * i, victim) for i, victim in enumerate(victims))
    crashed = run_backtest(settings, bars, str(tmp_path / "crash.db"), progress=False, faults=faults)
    assert crashed["counters"]["dead_letters"] == len(victims)
    assert crashed["trades"] == baseline["trades"] and len(baseline["trades"]) > 10
    assert crashed["summary"] == baseline["summary"]
    states = [sqlite3.connect(tmp_path / name).execute("SELECT state FROM model_state").fetchone()[0]
              for name in ("base.db", "crash.db")]
    assert states[0] == states[1]   # the model learned exactly the same through the crashes


def minute_bars(start: int, count: int) -> list[Bar]:
    out = []
    for k in range(start, start + count):
        for j, symbol in enumerate(SYMBOLS):
            price = 100.0 * (1 + 0.05 * math.sin(k / (7 + j))) + 0.3 * math.sin(k * 1.7 + j)
            out.append(Bar(symbol, T0 + (k + 1) * MINUTE, "1m", price, price + 0.2, price - 0.2, price, 1.0))
    return out


def run_live_bars(settings: Settings, batch: list[Bar]) -> dict:
    """Start a live system, publish ``batch`` into its ingress, drain, return the model's view, stop."""
    system = System(settings, "live", Deps.of(settings, "live",
                                              ingress=IngressSocket(settings.ingress.endpoint, 100_000)))
    system.start()
    try:
        at_start = system.query("model", "models")
        publisher = Publisher(settings.ingress.endpoint)
        publisher.wait_for_subscriber()
        before = system.counters.get("bars_processed")
        for bar in batch:
            publisher.send_frames(encode_bar(bar))
        publisher.close()
        wait_until(lambda: system.counters.get("bars_processed") == before + len(batch), 30, "every bar")
        assert system.drain(timeout=20)
        return {"at_start": at_start, "at_end": system.query("model", "models")}
    finally:
        system.stop()


def stored_states(db_path: str) -> dict[str, dict]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT symbol, timeframe, state FROM model_state WHERE run='live'").fetchall()
    finally:
        db.close()
    return {f"{symbol}/{timeframe}": json.loads(state) for symbol, timeframe, state in rows}


def test_a_live_system_resumes_the_model_from_the_store(live_settings: Settings) -> None:
    settings = live_settings.with_values({"strategy.name": "ma_model", "model.checkpoint_bars": 50})
    first = run_live_bars(settings, minute_bars(0, 120))
    assert first["at_start"] == {}
    stored = stored_states(settings.store.db)
    assert set(stored) == {f"{s}/1m" for s in SYMBOLS}
    for key, view in first["at_end"].items():
        assert view["updates"] == 120 - 30   # features whole from bar 29 (sma_30); each later bar teaches one lesson
        assert (stored[key]["weights"], stored[key]["bias"], stored[key]["updates"]) == (
            view["weights"], view["bias"], view["updates"])
    second = run_live_bars(settings, minute_bars(120, 60))
    assert second["at_start"] == first["at_end"]   # a fresh system starts from the stored state
    for key, view in second["at_end"].items():
        # the stored bars warm the features up before the first new bar, and the resumed state does not
        # learn them twice; the first new bar has no previous one to learn from (it may follow a gap)
        assert view["updates"] == first["at_end"][key]["updates"] + 60 - 1
        assert stored_states(settings.store.db)[key]["updates"] == view["updates"]
    other = settings.with_values({"model.features": ["ret_1", "close/sma_10"]})
    fresh = run_live_bars(other, [])["at_start"]  # a state learned over other features is not resumed:
    assert fresh and all(len(view["weights"]) == 2 for view in fresh.values())  # fresh models, warmed by history


def test_the_model_state_survives_a_process_restart_of_the_cli(tmp_path: Path) -> None:
    from tests.conftest import free_endpoint

    db = str(tmp_path / "restart.db")

    def live() -> str:
        result = run_cli("live", "--strategy", "ma_model", "--duration", "2", "--sim-speed", "3000", "--db", db,
                         "--ingress", free_endpoint(), "--control", free_endpoint(), "--events", free_endpoint())
        assert result.returncode == 0, result.stderr
        return result.stderr

    assert "resumed from the store" not in live()
    after_first = {key: state["updates"] for key, state in stored_states(db).items()}
    assert len(after_first) == 3 and all(updates > 0 for updates in after_first.values())
    assert "model state of 3 series resumed from the store (run 'live')" in live()
    after_second = {key: state["updates"] for key, state in stored_states(db).items()}
    assert all(after_second[key] > updates for key, updates in after_first.items())
