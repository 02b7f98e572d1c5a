"""The command line as a real subprocess: help, bad arguments, backtests, a live run, ctl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.feed.publisher import Publisher
from messages.market import Tick
from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("command", [[], ["live"], ["backtest"], ["ingest"], ["ctl"], ["feed-sim"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: run.py" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["fly"], "invalid choice: 'fly'"),
    (["live", "--duration", "soon"], "--duration: 'soon' is not a number"),
    (["live", "--feed", "carrier-pigeon"], "invalid choice: 'carrier-pigeon'"),
    (["backtest"], "the following arguments are required: --from"),
    (["backtest", "--from", "yesterday-ish"], "--from 'yesterday-ish' is not a date"),
    (["backtest", "--from", "2024-03-01", "--to", "2024-02-01"], "--to 2024-02-01 is before --from 2024-03-01"),
    (["ctl", "health", "nonsense"], "argument 'nonsense' is not KEY=VALUE"),
    (["ingest", "bars.csv"], "the following arguments are required: --symbol"),
    (["ingest", "bars.csv", "--symbol", "X", "--timeframe", "1x"], "bad timeframe '1x'"),
    (["ingest", "missing.csv", "--symbol", "X"], "data file missing.csv does not exist"),
    (["backtest", "--from", "2024-01-01", "--timeframe", "7"], "bad timeframe '7'"),
])
def test_a_bad_argument_is_one_line_and_a_nonzero_exit(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_settings_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "settings.toml"
    bad.write_text("[executor]\nfee_bsp = 3\n")
    result = run_cli("backtest", "--from", "2024-01-01", "--settings", str(bad))
    assert result.returncode == 1
    assert "unknown settings key 'executor.fee_bsp'" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctl_without_a_running_system_times_out_cleanly() -> None:
    result = run_cli("ctl", "ping", "--control", free_endpoint(), "--timeout", "0.3")
    assert result.returncode == 1
    assert "no reply from" in result.stderr and "Traceback" not in result.stderr


def test_backtest_on_a_fresh_checkout_gives_the_same_result_twice(tmp_path: Path) -> None:
    first = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "a.db"), "--json")
    second = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "b.db"), "--json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    report = json.loads(first.stdout)
    assert report["summary"]["trades"] == len(report["trades"]) > 0
    assert report["summary"]["start"] == "2024-01-01T01:00:00Z"
    assert set(report["trades"][0]) == {"symbol", "entry_time", "entry_price", "exit_time", "exit_price", "qty", "pnl"}
    text = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "c.db"))
    assert text.returncode == 0
    for label in ("trades", "return", "max drawdown", "final equity"):
        assert label in text.stdout


def test_backtest_of_a_range_with_no_data_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("backtest", "--from", "2031-01-01", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert "no bars in the requested range" in result.stderr
    assert "Traceback" not in result.stderr


def test_backtest_reads_a_csv_given_with_data(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    price = 100.0
    for i in range(200):
        price *= 1.01 if (i // 25) % 2 == 0 else 0.99
        rows.append(f"{1_704_067_200 + 86_400 * (i + 1)},{price},{price * 1.01},{price * 0.99},{price},10")
    path.write_text("\n".join(rows) + "\n")
    broken = tmp_path / "broken.csv"
    broken.write_text(rows[0] + "\n" + rows[1] + "\n1704240000,1,0.5,2,1,1\n")
    db = str(tmp_path / "d.db")
    result = run_cli("backtest", "--from", "2024-01-01", "--data", str(broken), "--symbols", "TEST", "--db", db)
    assert result.returncode == 0, result.stderr  # cleaned as ingest cleans, and said so
    assert "high/low not containing open/close        1  repaired at rows 3" in result.stderr
    result = run_cli("backtest", "--from", "2024-01-01", "--data", str(path), "--db", db, "--json")
    assert result.returncode == 1 and "no symbol column" in result.stderr
    result = run_cli("backtest", "--from", "2024-01-01", "--data", str(path), "--symbols", "TEST", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["bars"] == 200
    assert report["trades"] and all(t["symbol"] == "TEST" for t in report["trades"])


def test_live_demo_trades_and_exits_cleanly(tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    result = run_cli("live", "--duration", "6", "--sim-speed", "3000", "--db", str(tmp_path / "live.db"),
                     "--ingress", ingress, "--control", control, "--events", events)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "live run ended" in out
    values = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert int(values["ticks"][2].replace(",", "")) > 1000
    assert values["ticks"][6] == "0"  # none rejected: the simulator's compressed time is its market's clock
    assert int(values["bars"][1].replace(",", "")) > 100
    assert int(values["signals"][1].replace(",", "")) >= 1
    assert int(values["orders"][1].replace(",", "")) >= 1
    assert "ticks/s=" in result.stderr   # the periodic summary line


def test_outside_publisher_into_live_external_with_ctl(tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    process = start_cli("live", "--feed", "external", "--db", str(tmp_path / "ext.db"), "--ingress", ingress,
                        "--control", control, "--events", events)
    try:
        wait_for_control(control, process)
        publisher = Publisher(ingress)
        publisher.wait_for_subscriber()
        symbols = ("BTCUSD", "ETHUSD", "SOLUSD")
        t0 = 1_717_200_000_000_000_000
        for i in range(10_000):
            price = 100.0 + (i % 97) * 0.1
            publisher.send_tick(Tick(symbols[i % 3], t0 + i * 100_000_000, price, price + 0.02, price + 0.01, 1.0))
        for i in range(50):
            publisher.send_frames([b"tick.BTCUSD", b"garbage" * (i + 1)])
        publisher.close()
        wait_until(lambda: ctl(control, "metrics")["counters"]["ticks_received"] == 10_050, 30, "10,050 messages")
        metrics = run_cli("ctl", "metrics", "--control", control, "--json")
        assert metrics.returncode == 0
        counters = json.loads(metrics.stdout)["counters"]
        assert counters["ticks_accepted"] == 10_000
        assert counters["ticks_rejected"] == 50
        assert counters["rejected_by_reason"] == {"not_msgpack": 50}
        table = run_cli("ctl", "metrics", "--control", control)
        assert table.returncode == 0 and '"ticks_accepted": 10000' in table.stdout
        rows = [line.split() for line in table.stdout.splitlines() if line.startswith("  to ")]
        assert [row[1] for row in rows] == ["feed", "buffer", "feature", "model", "strategy", "the"]
        assert all(int(row[-4].replace(",", "")) >= 1 for row in rows)  # batches timed at every stage
        health = run_cli("ctl", "health", "--control", control)
        assert health.returncode == 0
        assert "status: healthy" in health.stdout
        assert health.stdout.count("running") == 8
        assert [line.split()[-1] for line in health.stdout.splitlines()[2:]] == ["ok"] * 8  # the condition column
        shutdown = run_cli("ctl", "shutdown", "--control", control)
        assert shutdown.returncode == 0
        assert process.wait(timeout=30) == 0
        assert "received 10,050" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_crash_loop_past_the_intensity_limit_ends_the_process_cleanly(tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    env = {"TRADING_SUPERVISOR_MAX_RESTARTS": "1", "TRADING_SUPERVISOR_WITHIN_S": "60"}
    import os
    import subprocess
    import sys
    from tests.helpers import ROOT
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "live", "--feed", "external", "--allow-fault-injection",
         "--db", str(tmp_path / "loop.db"), "--ingress", ingress, "--control", control, "--events", events],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **env})
    try:
        wait_for_control(control, process)
        crashes = 0

        def crashed_out() -> bool:
            nonlocal crashes
            if process.poll() is not None:
                return True
            try:
                if ctl(control, "crash", timeout=0.5, actor="feed").get("ok"):
                    crashes += 1
            except TimeoutError:
                pass
            return process.poll() is not None

        wait_until(crashed_out, 30, "the process to give up")
        assert process.returncode == 1
        stderr = process.stderr.read()
        assert "exceeds the limit of 1" in stderr
        assert "run.py: error: supervisor root:" in stderr
        assert crashes >= 4   # market gave up twice; the root gave up on the second escalation
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_fault_injection_crash_over_ctl_restarts_and_trading_continues(tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    process = start_cli("live", "--allow-fault-injection", "--sim-speed", "3000", "--db", str(tmp_path / "f.db"),
                        "--ingress", ingress, "--control", control, "--events", events)
    try:
        wait_for_control(control, process)
        wait_until(lambda: ctl(control, "metrics")["counters"]["bars"] > 50, 30, "bars")
        crash = run_cli("ctl", "crash", "actor=feature", "--control", control)
        assert crash.returncode == 0, crash.stderr
        wait_until(lambda: ctl(control, "health")["actors"]["feature"]["restarts"] == 1, 20, "the restart")
        bars_after = ctl(control, "metrics")["counters"]["bars"]
        wait_until(lambda: ctl(control, "metrics")["counters"]["bars"] > bars_after + 50, 30, "bars to keep coming")
        health = run_cli("ctl", "health", "--control", control)
        assert "status: healthy" in health.stdout
        assert run_cli("ctl", "shutdown", "--control", control).returncode == 0
        assert process.wait(timeout=30) == 0
        assert "feature restarted" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _minute_file(path: Path, rows: list[str] | None = None, label_shift: int = 0) -> Path:
    """Three days of one-minute bars stamped at their open time (as data vendors export them),
    or ``label_shift`` seconds later."""
    if rows is None:
        rows, price = [], 100.0
        for i in range(3 * 1440):
            price *= 1.002 if (i // 90) % 2 == 0 else 0.998
            rows.append(f"{1_704_067_200 + 60 * i + label_shift},{price:.6f},{price * 1.001:.6f},"
                        f"{price * 0.999:.6f},{price:.6f},{i % 9}")
    path.write_text("time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_ingest_then_backtest_from_the_database_replays_exactly_the_imported_bars(tmp_path: Path) -> None:
    data, db = _minute_file(tmp_path / "minutes.csv"), str(tmp_path / "h.db")
    result = run_cli("ingest", str(data), "--symbol", "TEST", "--ts-label", "open", "--db", db)
    assert result.returncode == 0, result.stderr
    *cleaning, ingested = result.stdout.strip().splitlines()
    assert ingested == (f"ingested 4,320 1m bars of TEST from {data} into {db} (4,320 new, 0 replaced): "
                        "close times 2024-01-01T00:01:00Z .. 2024-01-04T00:00:00Z")
    assert cleaning[0].endswith("4,320 rows read, 4,320 bars kept") and len(cleaning) == 7  # nothing cleaned
    from_db = run_cli("backtest", "--from", "2024-01-01", "--db", db, "--json")
    assert from_db.returncode == 0, from_db.stderr
    assert "replaying 4,320 bars of TEST from database" in from_db.stderr
    report = json.loads(from_db.stdout)
    assert report["summary"]["bars"] == 4_320 and report["trades"]
    closes = _minute_file(tmp_path / "closes.csv", label_shift=60)       # the same bars, stamped at their close
    from_file = run_cli("backtest", "--from", "2024-01-01", "--data", str(closes), "--symbols", "TEST",
                        "--db", str(tmp_path / "other.db"), "--json")
    assert from_file.returncode == 0, from_file.stderr
    assert from_db.stdout == from_file.stdout                            # the same bars, the same trades


def test_strict_ingest_of_a_broken_file_names_rows_and_reasons_and_imports_nothing(tmp_path: Path) -> None:
    rows = [f"{1_704_067_200 + 60 * i},100,101,99,100,1" for i in range(10)]
    rows[2] = f"{1_704_067_200 + 120},100,99,101,100,1"        # file row 4: high below low
    rows[5] = f"{1_704_067_200 + 330},100,101,99,100,-1"        # file row 7: negative volume, 30 s off the grid
    data, db = _minute_file(tmp_path / "broken.csv", rows), tmp_path / "h.db"
    result = run_cli("ingest", str(data), "--symbol", "TEST", "--db", str(db), "--strict")
    assert result.returncode == 1
    assert result.stderr.strip() == (f"run.py: error: {data}: negative volume at rows 7; high/low do not contain open "
                                     "and close at rows 4")
    assert not db.exists()
