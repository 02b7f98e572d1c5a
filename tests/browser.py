"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright for Python.

``sync_api()`` skips the calling test module, saying why, where chromium or Playwright is not
installed (``.ci/run`` installs both); ``open_page()`` gives a page of a fresh browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "open_page", "sync_api"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def sync_api() -> Any:
    """Playwright's sync API; skip the module (at import) without it or without chromium."""
    api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: "
                              "pip install -r requirements-dev.txt")
    if not CHROMIUM.exists():
        pytest.skip(f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium, as "
                    ".ci/run does); it is not installed here", allow_module_level=True)
    return api


@contextmanager
def open_page() -> Iterator[Any]:
    """A 1400 x 1000 page in a fresh headless chromium, closed afterwards."""
    with sync_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()
