"""``ctl`` for people against a real live process fed by an outside publisher: positions, orders and
health as aligned tables that say what ``--json`` says, signals from the store (also after a restart of
the process), and ``ctl events`` tailing the events socket."""

from __future__ import annotations

import json
import math
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.executor.report import price_text
from actors.feed.publisher import Publisher
from messages.market import Tick
from tests.conftest import free_endpoint
from tests.helpers import ctl, run_cli, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)

MINUTE = 60_000_000_000
T0 = 1_717_200_000_000_000_000  # 2024-06-01 00:00 UTC
BASES = {"BTCUSD": 43_903.98, "ETHUSD": 2_304.56}
FIRST = 290  # minutes of ticks before the tables are read: ends with both symbols held


class Market:
    """A publisher of one tick a minute per symbol on a sine (a cross of the averages every 45 minutes)."""

    def __init__(self, endpoint: str) -> None:
        self.publisher = Publisher(endpoint)
        self.publisher.wait_for_subscriber()
        self.minute = 0
        self.sent = 0

    def run(self, minutes: int) -> None:
        for i in range(self.minute, self.minute + minutes):
            for k, (symbol, base) in enumerate(BASES.items()):
                price = round(base * (1.0 + 0.02 * math.sin(2.0 * math.pi * i / 90.0 + k)), 2)
                self.publisher.send_tick(Tick(symbol, T0 + i * MINUTE + 1_000_000_000, price - 0.01, price + 0.01,
                                              price, 1.0))
                self.sent += 1
        self.minute += minutes


def _start(db: Path, ingress: str, control: str, events: str) -> subprocess.Popen[str]:
    process = start_cli("live", "--feed", "external", "--symbols", ",".join(BASES), "--db", str(db), "--ingress",
                        ingress, "--control", control, "--events", events)
    wait_for_control(control, process)
    return process


def _stop(process: subprocess.Popen[str], control: str) -> None:
    if process.poll() is None:
        try:
            ctl(control, "shutdown")
            process.wait(timeout=30)
        except (TimeoutError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live process that has taken FIRST minutes of ticks, every one processed and every signal stored."""
    folder = tmp_path_factory.mktemp("ctl")
    endpoints = {"ingress": free_endpoint(), "control": free_endpoint(), "events": free_endpoint()}
    process = _start(folder / "live.db", **endpoints)
    try:
        market = Market(endpoints["ingress"])
        market.run(FIRST)
        control = endpoints["control"]
        wait_until(lambda: ctl(control, "metrics")["counters"]["ticks_processed"] == market.sent, 30, "every tick")
        wait_until(lambda: len(ctl(control, "signals", last=1_000)["signals"])
                   == ctl(control, "metrics")["counters"]["signals"], 30, "the signals to be stored")
        yield {**endpoints, "process": process, "market": market, "db": folder / "live.db"}
    finally:
        _stop(process, endpoints["control"])


def _cli(live: dict[str, Any], *args: str) -> str:
    result = run_cli("ctl", *args, "--control", live["control"])
    assert result.returncode == 0, result.stderr
    return result.stdout


def _raw(live: dict[str, Any], *args: str) -> dict[str, Any]:
    return json.loads(_cli(live, *args, "--json"))


def test_positions_are_a_table_of_what_the_json_says(live: dict[str, Any]) -> None:
    raw = _raw(live, "positions")
    text = _cli(live, "positions").splitlines()
    assert text[0].startswith(f"equity {raw['equity']:,.2f}  cash {raw['cash']:,.2f}")
    table = text[1:]
    assert table[0].split() == ["symbol", "qty", "avg", "price", "mark", "unrealized"]
    assert len({len(line) for line in table}) == 1  # figures right-aligned under their headers
    assert sorted(raw["positions"]) == ["BTCUSD", "ETHUSD"] == [line.split()[0] for line in table[1:]]
    for line in table[1:]:
        symbol, qty, avg, mark, unrealized = line.split()
        held = raw["positions"][symbol]
        assert qty == price_text(round(held["qty"], 8)) and avg == price_text(held["avg_price"])
        assert mark == price_text(held["mark"]) and unrealized == f"{held['unrealized']:+,.2f}"


def test_orders_are_one_row_per_order_with_its_latest_state_and_fills(live: dict[str, Any]) -> None:
    raw = _raw(live, "orders")
    latest = {o["client_id"]: o for o in raw["orders"]}
    assert len(raw["orders"]) > len(latest) >= 4  # each order's states arrive as several entries
    lines = _cli(live, "orders").splitlines()
    header, rows, footer = lines[0], lines[1:-1], lines[-1]
    assert footer == f"  {len(latest)} orders, {len(raw['open'])} open"
    assert [row.split()[0] for row in rows] == list(latest)  # once each, in order of first appearance
    status_at = header.index("status")
    filled_end = header.index("filled") + len("filled")
    for row in rows:
        order = latest[row.split()[0]]
        assert row[status_at:].split()[0] == order["status"]
        fills = [f for f in raw["fills"] if f["client_id"] == order["client_id"]]
        if order["status"] == "filled":
            filled = sum(f["qty"] for f in fills)
            assert row[:filled_end].split()[-1] == price_text(round(filled, 8))  # right-aligned under "filled"
            assert price_text(fills[0]["price"]) in row


def test_health_is_a_table_with_every_actor_running(live: dict[str, Any]) -> None:
    raw = _raw(live, "health")
    lines = _cli(live, "health").splitlines()
    assert lines[0] == f"status: {raw['status']}"
    header, rows = lines[1], lines[2:]
    assert sorted(row.split()[0] for row in rows) == sorted(raw["actors"])
    assert all(row.split()[1] == "running" for row in rows)
    processed_end = header.index("processed") + len("processed")
    for row in rows:  # right-aligned under "processed", and no fewer than a moment before (control counts requests)
        assert int(row[:processed_end].split()[-1].replace(",", "")) >= raw["actors"][row.split()[0]]["processed"]


def test_signals_last_n_shows_the_latest_with_their_reasons(live: dict[str, Any]) -> None:
    raw = _raw(live, "signals", "--last", "5")["signals"]
    everything = ctl(live["control"], "signals", last=1_000)["signals"]
    assert len(raw) == 5 and raw == everything[-5:]  # the latest five, oldest first
    assert all(s["reason"] and s["inputs"] and s["params"] for s in raw)
    lines = _cli(live, "signals", "--last", "5").splitlines()
    assert lines[0].split()[:3] == ["time", "(UTC)", "symbol"] and len(lines) == 6
    for line, signal in zip(lines[1:], raw, strict=True):
        assert signal["symbol"] in line and signal["reason"] in line and price_text(signal["price"]) in line
    bad = run_cli("ctl", "signals", "last=0", "--control", live["control"])
    assert bad.returncode == 1 and '"last" must be a whole number from 1 to 1,000' in bad.stderr
    usage = run_cli("ctl", "orders", "--last", "3", "--control", live["control"])
    assert usage.returncode == 2 and "--last is for 'ctl signals' only" in usage.stderr


def test_ctl_events_tails_the_events_socket(live: dict[str, Any]) -> None:
    command = ["ctl", "events", "--events", live["events"], "--count", "3"]
    every = start_cli(*command)
    orders = start_cli(*command, "--topic", "order.")
    market = live["market"]
    try:
        def both_done() -> bool:
            market.run(10)  # more ticks: more signals, orders and fills to publish
            return every.poll() is not None and orders.poll() is not None
        wait_until(both_done, 60, "three events on each tail")
        for tail in (every, orders):
            assert tail.returncode == 0, tail.stderr.read()
        seen = every.stdout.read().splitlines()
        assert len(seen) == 3 and all(line.split()[2].split(".")[0] in {"signal", "order", "fill", "health"}
                                      for line in seen)
        only = orders.stdout.read().splitlines()
        assert len(only) == 3 and all(line.split()[2].startswith("order.") for line in only)
        assert all("client_id=" in line and "status=" in line for line in only)
    finally:
        for tail in (every, orders):
            if tail.poll() is None:
                tail.kill()
                tail.wait()


def test_ctl_events_ends_cleanly_on_ctrl_c(live: dict[str, Any]) -> None:
    tail = start_cli("ctl", "events", "--events", live["events"], "--topic", "health.")
    try:
        assert tail.stderr.readline().startswith(f"listening to {live['events']} for topics health.*")
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=10) == 0
        assert tail.stderr.read() == ""  # no traceback, no error line
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()


def test_signals_outlive_a_restart_of_the_process(live: dict[str, Any]) -> None:
    control = live["control"]
    wait_until(lambda: len(ctl(control, "signals", last=1_000)["signals"])
               == ctl(control, "metrics")["counters"]["signals"], 30, "the signals to be stored")
    before = ctl(control, "signals", last=20)["signals"]
    _stop(live["process"], live["control"])
    process = _start(live["db"], free_endpoint(), live["control"], free_endpoint())
    try:
        assert ctl(live["control"], "signals", last=20)["signals"] == before  # read from the store
    finally:
        _stop(process, live["control"])
