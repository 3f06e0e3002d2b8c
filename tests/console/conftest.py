"""The console's browser tests: a real `vexil serve` with authentication, headless Chromium and
the CLI, all on loopback.

One server per module (tests use their own flag keys, so they share it); one browser per
module; a fresh browser context (cookies, storage) per test.  Chromium is Debian's (`chromium`
on PATH), driven by playwright with its `executable_path`: playwright's own browser download is
never used.  Every test saves a screenshot under `tests/.artifacts/console/` (git-ignored).
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.browser import CHROMIUM_FLAGS, chromium_path
from tests.support.console import SCREENSHOTS, WAIT_MS, Console, cli
from tests.support.servers import VEXIL, ServerProcess, running_app, server_settings


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    boot = subprocess.run(
        [VEXIL, "keys", "create", "--bootstrap", "--store", "memory", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert boot.returncode == 0, boot.stderr
    admin = json.loads(boot.stdout)["token"]
    server = ServerProcess(
        tmp,
        "--env",
        "local",
        "--environments",
        "local",
        "--store",
        "memory",
        # Every test signs in with the same admin key within a minute or two: room for all of them
        # in its admin rate-limit bucket (the default, 100 calls a minute, is per person).
        env={
            "VEXIL_BOOTSTRAP_ADMIN_KEY": admin,
            "VEXIL_HEARTBEAT_SECONDS": "2",
            "VEXIL_RATE_LIMIT_ADMIN": "6000",
            # Room for more flags than the list shows at once (1,000), for its "Show more".
            "VEXIL_CACHE_MAXSIZE": "2000",
        },
    )
    with server:
        tokens = {"admin": admin}
        for role in ("editor", "evaluator"):
            made = cli(server.target, admin, "keys", "create", "--role", role, "-e", "local", "--json")
            assert made.returncode == 0, made.stderr
            tokens[role] = json.loads(made.stdout)["token"]
        yield Console(server, tokens)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Per module: the sync driver runs its own event loop in this thread while it is open, which
    async tests (pytest-asyncio) must not meet."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    made.set_default_timeout(WAIT_MS)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    expect.set_options(timeout=WAIT_MS)
    yield opened
    assert not errors, f"script errors in the page: {errors}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if not opened.is_closed():
        # An artifact for a human, not a guarantee: a slow machine may not take it in time.  The
        # screen the test ended on, not the whole page: a diff of 5,000 lines took 10 s whole.
        try:
            opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"))
        except PlaywrightTimeoutError:
            warnings.warn(f"no screenshot of {request.node.name}: the browser took too long", stacklevel=1)


@pytest.fixture
async def open_console() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with (
        running_app(server_settings()) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        yield http, f"http://127.0.0.1:{app.http_port}"
