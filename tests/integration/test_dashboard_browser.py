"""The dashboard in a real browser: a live run (the CLI as a subprocess, on the built-in simulator)
opened in headless Chromium (Debian's ``chromium``) through Playwright.

Skipped, saying why, only where chromium or Playwright is not installed (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_endpoint
from tests.browser import open_page, sync_api
from tests.helpers import ROOT, ctl, wait_for_control

pytestmark = pytest.mark.timeout(120)

TOKEN = "browser-token-0123456789abcdef"
ACTORS = ("store", "executor", "control", "web", "feature", "model", "strategy", "buffer", "feed")

sync_api()  # skips this module, saying why, without chromium or Playwright

ALL_RUNNING = """(names) => {
    const rows = [...document.querySelectorAll("tr[data-actor]")];
    return rows.length === names.length && names.every(
        (name) => rows.some((row) => row.dataset.actor === name && row.dataset.state === "running"));
}"""


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``run.py live`` on the simulator with the dashboard on a free loopback port and a token."""
    control = free_endpoint()
    port = int(free_endpoint().rsplit(":", 1)[1])
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "live", "--duration", "90", "--db", str(tmp_path / "live.db"),
         "--ingress", free_endpoint(), "--control", control, "--events", free_endpoint(),
         "--http", f"127.0.0.1:{port}", "--sim-rate", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "TRADING_HTTP_TOKEN": TOKEN})
    try:
        wait_for_control(control, process)
        yield {"control": control, "url": f"http://127.0.0.1:{port}/"}
        assert ctl(control, "shutdown")["ok"]
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def page() -> Iterator[Any]:
    with open_page() as opened:
        yield opened


def test_the_dashboard_shows_every_actor_running_and_counters_moving_while_ticks_flow(live_run: dict[str, Any],
                                                                                    page: Any) -> None:
    assert page.goto(live_run["url"]).status == 401  # the token is required of the page too
    assert page.goto(f"{live_run['url']}?token={TOKEN}").status == 200
    page.wait_for_function(ALL_RUNNING, arg=list(ACTORS), timeout=20_000)
    status = page.locator("#status")
    assert status.get_attribute("data-status") in ("healthy", "degraded")
    assert page.locator("#venue").text_content() == "venue paper"  # where orders go (a venue: its breaker too)
    tree = page.locator("#tree")
    for node in ("root", "execution", "signals", "market", *ACTORS):
        assert tree.locator(f'li[data-node="{node}"]').count() == 1, node
    received = page.locator("#counter-ticks-received")
    first = int(received.get_attribute("data-value") or 0)
    page.wait_for_function("(before) => Number(document.getElementById('counter-ticks-received').dataset.value) > before",
                           arg=first, timeout=20_000)
    assert int(received.get_attribute("data-value") or 0) > first
    assert page.locator("#latency tr").count() >= 2  # stages timed while ticks flow
    assert page.locator("#counters .tile").count() >= 10
    assert re.search(r"cash [\d,]+\.\d\d · equity [\d,]+\.\d\d", page.locator("#account").text_content())
    line = page.wait_for_selector("#equity-line", timeout=20_000)  # once the first bars are marked
    points = int(line.get_attribute("data-points"))
    page.wait_for_function("(before) => Number(document.getElementById('equity-line').dataset.points) > before",
                           arg=points, timeout=20_000)
    page.wait_for_selector("#signals tr td.inputs", timeout=20_000)  # the latest signals, with their inputs
    assert "crossed" in page.locator("#signals tr").first.text_content()  # sma_cross's reason
    ids = page.evaluate("() => [...document.querySelectorAll('[id]')].map((node) => node.id)")
    assert len(ids) == len(set(ids))
