"""The CLI checks endpoints, ports and output folders before any work starts, and stops at once on
SIGTERM and Ctrl-C, draining and committing."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Assert a one-line error on stderr (no traceback) with exit ``code``; return the line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("flag", ["--ingress", "--control", "--events", "--cryptofeed"])
@pytest.mark.parametrize("value", ["localhost:47399", "tcp://host:port", "udp://127.0.0.1:5555", "tcp://127.0.0.1:0"])
def test_a_malformed_live_endpoint_is_one_line_before_anything_starts(flag: str, value: str, tmp_path: Path) -> None:
    result = run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), flag, value, "--duration", "5")
    one_line_error(result, 2, flag, repr(value))
    assert not (tmp_path / "x.db").exists()


def test_a_malformed_control_endpoint_for_ctl_and_feed_sim_is_one_line() -> None:
    one_line_error(run_cli("ctl", "ping", "--control", "localhost:47399"), 2, "--control", "tcp://127.0.0.1:5555")
    one_line_error(run_cli("feed-sim", "--ingress", "127.0.0.1:5555", "--count", "1"), 2, "--ingress")


def test_a_malformed_endpoint_in_the_environment_names_the_settings_key(tmp_path: Path) -> None:
    result = run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), "--duration", "5",
                     env={"TRADING_CONTROL_EVENTS": "localhost:47399"})
    one_line_error(result, 1, "'control.events'", "localhost:47399")


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    taken = free_endpoint()
    host, port = taken.removeprefix("tcp://").split(":")
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), "--duration", "5",
                         "--ingress", free_endpoint(), "--control", free_endpoint(), "--events", taken)
    one_line_error(result, 1, f"events endpoint {taken} is in use")
    assert not (tmp_path / "x.db").exists()


def test_an_unknown_host_is_named_before_anything_starts(tmp_path: Path) -> None:
    result = run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), "--duration", "5", "--ingress",
                     free_endpoint(), "--control", free_endpoint(), "--events", "tcp://nosuch.invalid:5557")
    one_line_error(result, 1, "events endpoint tcp://nosuch.invalid:5557", "not an address, a known host name")
    assert not (tmp_path / "x.db").exists()


def test_one_endpoint_given_twice_is_refused(tmp_path: Path) -> None:
    same = free_endpoint()
    result = run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), "--duration", "5",
                     "--ingress", same, "--control", same, "--events", free_endpoint())
    one_line_error(result, 1, "ingress and control", same)


def test_a_second_live_on_the_same_ports_refuses_and_the_first_runs_on(tmp_path: Path) -> None:
    ingress, control, events = free_endpoint(), free_endpoint(), free_endpoint()
    ports = ("--ingress", ingress, "--control", control, "--events", events)
    first = start_cli("live", "--feed", "external", "--db", str(tmp_path / "first.db"), *ports)
    try:
        wait_for_control(control, first)
        second = run_cli("live", "--feed", "external", "--db", str(tmp_path / "second.db"), *ports)
        one_line_error(second, 1, f"ingress endpoint {ingress} is in use")
        assert ctl(control, "health")["status"] == "healthy"
        assert ctl(control, "shutdown")["ok"]
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()


def test_backtest_out_onto_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    existing = tmp_path / "report.html"
    existing.write_text("keep me")
    result = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "x.db"), "--out", str(existing))
    one_line_error(result, 2, "--out", "is a file, not a folder")
    assert result.stdout == ""  # no backtest ran
    assert existing.read_text() == "keep me"
    result = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "x.db"), "--out", str(existing / "sub"))
    one_line_error(result, 2, f"{existing} is a file, not a folder")


def test_backtest_out_into_a_folder_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    result = run_cli("backtest", "--from", "2024-01-01", "--db", str(tmp_path / "x.db"), "--out", "/proc/report")
    one_line_error(result, 2, "--out /proc/report", "cannot write in folder /proc")
    assert result.stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_live_at_once_draining_and_committing(signum: int, tmp_path: Path) -> None:
    """With a summary line only every 60 s, the stop cannot wait for it: the process must exit 0
    within 2 s of the signal (the stop itself takes well under 0.5 s; the rest is for process
    teardown on a loaded machine), print its summary, and leave its bars committed."""
    db = tmp_path / "live.db"
    settings = tmp_path / "settings.toml"
    settings.write_text("[control]\nsummary_s = 60\n")
    control = free_endpoint()
    process = start_cli("live", "--db", str(db), "--ingress", free_endpoint(), "--control", control,
                        "--events", free_endpoint(), "--sim-rate", "2000", "--settings", str(settings))
    try:
        wait_for_control(control, process)
        wait_until(lambda: ctl(control, "metrics")["counters"]["bars"] >= 10, 30, "ticks flowing and bars closing")
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert took < 2.0, f"took {took:.2f}s to stop"
    assert f"({signal.Signals(signum).name} received)" in out
    summary = dict(line.split(None, 1) for line in out.splitlines()[1:] if line.startswith("  "))
    figures = summary["ticks"].split()
    assert figures[figures.index("accepted") + 1] == figures[figures.index("processed") + 1]
    bars = int(summary["bars"].replace(",", ""))
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM bars").fetchone()[0]
    assert bars > 0 and stored == bars
