"""The backtest report in a real browser: ``report.html`` from a real ``run.py backtest --out``, opened
from disk in headless Chromium (Debian's ``chromium``) through Playwright, with the network cut off.

Skipped, saying why, only where chromium or Playwright is not installed (``.ci/run`` installs both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import open_page, sync_api
from tests.helpers import run_cli

pytestmark = pytest.mark.timeout(120)


sync_api()  # skips this module, saying why, without chromium or Playwright

AXIS_RANGES = """() => {
    const layout = document.getElementById("report-chart")._fullLayout;
    return Object.keys(layout).filter((k) => /^xaxis\\d*$/.test(k)).sort().map((k) => layout[k].range);
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two months of the bundled sample (three symbols), written with --out."""
    folder = tmp_path_factory.mktemp("browser")
    result = run_cli("backtest", "--from", "2024-11-01", "--db", str(folder / "r.db"), "--out", str(folder / "out"))
    assert result.returncode == 0, result.stderr
    return folder / "out" / "report.html"


@pytest.fixture
def page() -> Iterator[Any]:
    with open_page() as opened:
        yield opened


def test_the_report_draws_offline_and_one_drag_zooms_every_panel(report: Path, page: Any) -> None:
    fetched: list[str] = []

    def no_network(route: Any) -> None:
        if not route.request.url.startswith("file://"):
            fetched.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", no_network)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    page.wait_for_selector("#report-chart .main-svg", timeout=30_000)
    assert fetched == [] and errors == []
    # five panels (three prices, equity, drawdown); on each price panel its close, entries and exits
    assert page.locator("#report-chart .cartesianlayer .subplot").count() == 5
    names = page.evaluate("() => document.getElementById('report-chart').data.map((t) => t.name)")
    assert names == [f"{s} {part}" for s in ("BTCUSD", "ETHUSD", "SOLUSD") for part in ("close", "entries", "exits")
                     ] + ["equity", "buy and hold", "drawdown"]
    assert page.locator("#report-chart .scatterlayer .trace .points path").count() > 20  # trade markers drawn
    before = page.evaluate(AXIS_RANGES)
    assert len(before) == 5 and all(r == before[0] for r in before)
    # a real drag across the middle of the drawdown panel
    drag = page.locator("#report-chart .draglayer .x5y5 .nsewdrag")
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => ({AXIS_RANGES})()[0][0] !== {before[0][0]!r}", timeout=10_000)
    after = page.evaluate(AXIS_RANGES)
    assert all(r == after[0] for r in after)  # every panel follows the one dragged
    assert after[0][0] > before[0][0] and after[0][1] < before[0][1]
    assert page.locator("text=CAGR").count() >= 1 and "sma_cross" in page.locator("h3").first.inner_text()
