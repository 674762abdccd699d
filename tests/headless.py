"""Headless Debian Chromium for the browser tests (playwright drives it; nothing is downloaded).

``from headless import CHROMIUM, CHROMIUM_ARGS``; the module-scoped ``browser`` fixture of
``conftest.py`` launches it once per test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/lib/chromium/chromium")  # Debian's chromium (scripts/setup.sh)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@contextmanager
def launched() -> Iterator[Any]:
    """A playwright Chromium browser; a missing Chromium is a set-up failure, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail("Debian Chromium is not installed: scripts/setup.sh installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
