"""Shared fixtures: free loopback endpoints, fresh settings, and no actor left running."""

from __future__ import annotations

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


def free_endpoint() -> str:
    """A loopback TCP endpoint on a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


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
