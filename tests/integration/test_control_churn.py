"""The control socket under clients that open a new connection for every request: each is
answered, and the process does not grow with the number of connections."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import zmq

from actors.control.actor import split_envelope
from messages.codec import encode_control, unpackb
from tests.conftest import free_endpoint
from tests.helpers import ctl, start_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(120)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def test_split_envelope_keeps_everything_up_to_the_delimiter() -> None:
    assert split_envelope([b"id", b"", b"body"]) == ([b"id", b""], [b"body"])
    assert split_envelope([b"id", b"hop", b"", b"a", b"b"]) == ([b"id", b"hop", b""], [b"a", b"b"])
    assert split_envelope([b"id", b"body"]) == ([b"id"], [b"body"])  # a DEALER without a delimiter


def churn(endpoint: str, requests: int, answered: list[int], lock: threading.Lock) -> None:
    """``requests`` metrics requests, each on a new connection closed after its reply."""
    context = zmq.Context.instance()
    body = encode_control({"cmd": "metrics"})
    for _ in range(requests):
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sock.send(body)
        if sock.poll(10_000) and unpackb(sock.recv())["ok"]:
            with lock:
                answered[0] += 1
        sock.close(0)


def run_clients(endpoint: str, clients: int, each: int) -> int:
    answered, lock = [0], threading.Lock()
    threads = [threading.Thread(target=churn, args=(endpoint, each, answered, lock)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    return answered[0]


def test_a_connection_per_metrics_request_does_not_grow_the_process(tmp_path: Path) -> None:
    """3,000 connections from 50 clients while ticks flow. Each used to leave about 11 KiB behind in
    libzmq (a request left waiting in the socket while another was answered): 33 MiB; now the
    growth is the run's own warm-up, well under the 12 MiB allowed."""
    control = free_endpoint()
    process = start_cli("live", "--db", str(tmp_path / "live.db"), "--ingress", free_endpoint(), "--control", control,
                        "--events", free_endpoint(), "--sim-rate", "3000")
    try:
        wait_for_control(control, process)
        wait_until(lambda: ctl(control, "metrics")["latency"]["samples"] >= 100, 30, "ticks flowing")
        assert run_clients(control, 50, 10) == 500  # warm-up: the first connections' one-off allocations
        before = rss_mib(process.pid)
        assert run_clients(control, 50, 60) == 3000
        grown = rss_mib(process.pid) - before
        assert grown < 12.0, f"RSS grew {grown:.1f} MiB over 3,000 connections"
        # DEALER clients too, with and without the delimiter a REQ adds
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(control)
        dealer.send_multipart([b"", encode_control({"cmd": "ping"})])
        assert dealer.poll(10_000)
        assert dealer.recv_multipart() == [b"", encode_control({"ok": True, "pong": True})]
        dealer.send(encode_control({"cmd": "ping"}))
        assert dealer.poll(10_000)
        assert unpackb(dealer.recv_multipart()[-1]) == {"ok": True, "pong": True}
        dealer.close(0)
        assert ctl(control, "shutdown")["ok"]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
