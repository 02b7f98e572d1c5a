"""Shared fixtures: free loopback endpoints, fresh settings, and no actor left running."""

from __future__ import annotations

import os
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settings import Settings, load_settings  # noqa: E402

# A live run serves HTTP on 127.0.0.1:8780 by default: the runs tests start (inheriting this
# environment) serve none unless a test gives them a free port with --http
os.environ["TRADING_HTTP_LISTEN"] = "off"


_RANDOM = random.SystemRandom()  # not the seeded module state: two processes must not pick alike


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes local ports from for outgoing connections (Linux; else IANA's)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_endpoint() -> str:
    """A loopback TCP endpoint on a random port that was free a moment ago.

    The port is outside the ephemeral range, so no outgoing connection (of this process or any
    other) can take it between now and the bind that follows.
    """
    low, high = _ephemeral_ports()
    ranges = [r for r in ((10_000, low - 1), (high + 1, 65_535)) if r[1] - r[0] >= 1_000]
    for _ in range(200):
        port = _RANDOM.randint(*_RANDOM.choice(ranges))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return f"tcp://127.0.0.1:{port}"
    raise RuntimeError("no free loopback port found outside the ephemeral range")


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture
def endpoints() -> dict[str, str]:
    """Fresh ingress, control and events endpoints."""
    return {"ingress": free_endpoint(), "control": free_endpoint(), "events": free_endpoint()}


@pytest.fixture
def live_settings(endpoints: dict[str, str], tmp_path: Path) -> Settings:
    """Settings for a live system on fresh loopback ports and a fresh database."""
    return load_settings(env={}, overrides={
        "ingress.endpoint": endpoints["ingress"], "control.endpoint": endpoints["control"],
        "control.events": endpoints["events"], "store.db": str(tmp_path / "live.db"),
        "feed.source": "external",
    })
