"""A headless Chromium for browser tests, driven by playwright.

playwright cannot download its own browser build in CI (no network beyond the package indexes), so
the tests drive the distribution's `chromium` found on PATH (.ci/run installs it).  Each launch gets
a fresh user-data dir, so no cookie, cache or service worker of one test reaches the next, and the
flags keep the browser from talking to anything but the pages the test opens (no updates, no sync,
no QUIC).

`launch_chromium()` is the async context manager; the `browser` fixture wraps it for one test.
Screenshots go to `ARTIFACTS` (git-ignored) through `screenshot()`, one per test, for a human to
look at when a run fails.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The chromium on PATH; a missing browser is a setup error, not a skip."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise RuntimeError("the browser tests need chromium on PATH (Debian: apt-get install chromium)")


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on exit.  playwright's `launch` starts it on a fresh user-data
    dir of its own (a temporary directory it removes afterwards)."""
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(CHROMIUM_FLAGS), timeout=60_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the test."""
    async with launch_chromium() as launched:
        yield launched


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as `ARTIFACTS/<name>.png` (name from the test id) and return it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".png")
    await page.screenshot(path=str(path), full_page=True)
    return path
