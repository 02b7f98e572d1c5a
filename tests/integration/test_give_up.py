"""When the root gives up, the final summary accounts for every accepted tick."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ctl, start_cli, wait_for_control

pytestmark = pytest.mark.timeout(120)


def test_two_hundred_fast_crashes_stop_live_with_every_tick_accounted(endpoints: dict[str, str],
                                                                     tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("[supervisor]\nmax_restarts = 3\nbackoff_max_s = 0.05\n")
    process = start_cli("live", "--duration", "60", "--allow-fault-injection", "--db", str(tmp_path / "live.db"),
                        "--ingress", endpoints["ingress"], "--control", endpoints["control"],
                        "--events", endpoints["events"], "--settings", str(settings), "--sim-rate", "5000")
    try:
        wait_for_control(endpoints["control"], process)
        sent = 0
        for _ in range(200):
            if process.poll() is not None:
                break
            try:
                reply = ctl(endpoints["control"], "crash", timeout=2.0, actor="strategy")
            except TimeoutError:
                break  # the system is stopping
            assert reply == {"ok": True, "crashing": "strategy"} or not reply["ok"], reply
            sent += 1
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, err
    assert sent > 4
    assert err.strip().splitlines()[-1].startswith("run.py: error: supervisor root: ")
    found = re.search(r"ticks\s+received ([\d,]+)\s+accepted ([\d,]+)\s+rejected ([\d,]+)\s+processed ([\d,]+)\s+"
                      r"dead-lettered ([\d,]+)\s+dropped at stop ([\d,]+)", out)
    assert found, out
    received, accepted, rejected, processed, dead, dropped = (int(g.replace(",", "")) for g in found.groups())
    assert accepted > 0
    assert received == accepted + rejected
    assert accepted == processed + dead + dropped
