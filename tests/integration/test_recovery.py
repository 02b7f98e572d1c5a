"""Recovery of the account after a SIGKILL: positions, cash and orders come back from the store."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)


def shut_down(process, control: str) -> None:
    """Stop a live process over the control socket; it must exit 0."""
    assert run_cli("ctl", "shutdown", "--control", control).returncode == 0
    assert process.wait(timeout=30) == 0


def kill_if_running(process) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def stored_account(db: Path) -> tuple[dict[str, float], float, int]:
    conn = sqlite3.connect(db)
    try:
        positions: dict[str, float] = {}
        cash = 100_000.0
        for symbol, side, qty, price, fee in conn.execute("SELECT symbol, side, qty, price, fee FROM fills WHERE run='live'"):
            signed = qty if side == "buy" else -qty
            positions[symbol] = positions.get(symbol, 0.0) + signed
            cash -= signed * price + fee
        orders = conn.execute("SELECT COUNT(*) FROM orders WHERE run='live'").fetchone()[0]
    finally:
        conn.close()
    return {s: q for s, q in positions.items() if abs(q) > 1e-12}, cash, orders


def test_sigkill_then_restart_resumes_with_the_same_positions_and_no_duplicate_orders(tmp_path: Path) -> None:
    db = tmp_path / "live.db"

    def start(feed: str = "sim") -> tuple:
        control = free_endpoint()
        process = start_cli("live", "--feed", feed, "--sim-speed", "3000", "--db", str(db), "--ingress", free_endpoint(),
                            "--control", control, "--events", free_endpoint())
        wait_for_control(control, process)
        return process, control

    first, control = start()
    try:
        wait_until(lambda: ctl(control, "metrics")["counters"]["fills"] >= 3, 60, "three fills")
        # let the store commit what it has (it commits whenever its mailbox runs dry)
        wait_until(lambda: stored_account(db)[2] > 0, 10, "orders in the store")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    positions, cash, orders_before = stored_account(db)
    ids_before = {row[0] for row in sqlite3.connect(db).execute("SELECT client_id FROM orders")}

    # a restart that does not trade (external feed, nothing sent) shows exactly what was restored
    quiet, control = start("external")
    try:
        restored = ctl(control, "positions")
        got = {s: p["qty"] for s, p in restored["positions"].items()}
        assert got.keys() == positions.keys()
        for symbol, qty in positions.items():
            assert got[symbol] == pytest.approx(qty, rel=1e-9)
        assert restored["cash"] == pytest.approx(cash, rel=1e-9)
        shut_down(quiet, control)
    finally:
        kill_if_running(quiet)

    second, control = start()
    try:
        held = {s for s, q in positions.items() if q > 0}
        if held:  # the strategy learned what the account holds, so it sells it on the next cross down
            def sold_a_held_position() -> bool:
                return any(o["side"] == "sell" and o["status"] == "filled" and o["symbol"] in held
                           and o["client_id"] not in ids_before for o in ctl(control, "orders")["orders"])
            wait_until(sold_a_held_position, 60, "a position held before the kill to be sold")
            # and it knew from the start: it never tried to buy what the account already held
            assert not [o for o in ctl(control, "orders")["orders"]
                        if o["client_id"] not in ids_before and o["reason"] == "already long"]
        wait_until(lambda: ctl(control, "metrics")["counters"]["bars"] > 100, 30, "trading to go on")
        shut_down(second, control)
    finally:
        kill_if_running(second)
    conn = sqlite3.connect(db)
    try:
        duplicates = conn.execute(
            "SELECT COUNT(*) FROM (SELECT symbol, ts, side, COUNT(*) c FROM orders WHERE run='live' "
            "AND strategy != 'risk' GROUP BY symbol, ts, side HAVING c > 1)").fetchone()[0]
        filled_twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT client_id, COUNT(*) c FROM fills GROUP BY run, client_id HAVING c > 1)"
        ).fetchone()[0]
        orders_after = conn.execute("SELECT COUNT(*) FROM orders WHERE run='live'").fetchone()[0]
    finally:
        conn.close()
    assert duplicates == 0 and filled_twice == 0
    assert orders_after >= orders_before
    final_positions, _, _ = stored_account(db)
    assert all(q > 0 for q in final_positions.values())  # long only, shorts off: never sold what was not held
