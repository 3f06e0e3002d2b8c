"""A real browser on OFREP: `@openfeature/ofrep-web-provider` in headless Chromium against vexil.

A page served from one loopback port (the allowed origin, in `cors_origins`) loads the OpenFeature
web SDK and the OFREP web provider (bundled from tests/js at test time), points the provider at
vexil's HTTP port with a short poll, and shows a boolean and a string flag.  The test reads them
off the page, sees a poll answered 304 while nothing changed, changes a flag through the admin API
and waits for the page to show the new value.  The same page from another port (a foreign origin)
is refused by the browser's CORS check and shows the code defaults.  One screenshot per page goes
to tests/.artifacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, Response

from tests.support.browser import screenshot
from tests.support.flags import flag_pb
from tests.support.servers import Connected, connected, free_port, running_app, server_settings
from tests.support.webbundle import bundle
from vexil.v1 import admin_pb2

POLL_MS = 300
WAIT_S = 30.0
"""Bound on every wait for the page (a loaded CI machine is slow; a broken one never gets there)."""

# The page: the flags it shows, with code defaults a served value can never be confused with.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vexil OFREP in a browser</title></head>
<body>
<h1>vexil flags over OFREP</h1>
<p>browser-bool: <b id="bool">-</b></p>
<p>browser-text: <b id="text">-</b> (<span id="reason">-</span>)</p>
<p>provider: <span id="status">loading</span></p>
<script src="/ofrep-web.js"></script>
<script>
const { OpenFeature, OFREPWebProvider, ProviderEvents } = ofrepWeb;
const client = OpenFeature.getClient();
const show = (id, text) => { document.getElementById(id).textContent = text; };
function render() {
  show("bool", String(client.getBooleanValue("browser-bool", false)));
  const text = client.getStringDetails("browser-text", "code-default");
  show("text", text.value);
  show("reason", text.reason + (text.errorCode ? " " + text.errorCode : ""));
}
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, render);
OpenFeature.addHandler(ProviderEvents.Error, (event) => show("status", "error: " + event.message));
const provider = new OFREPWebProvider({
  baseUrl: new URLSearchParams(location.search).get("ofrep"),
  pollInterval: %(poll)d,
  changeDetection: "polling",
  cacheMode: "disabled",
});
OpenFeature.setContext({ targetingKey: "user-1", country: "AT" }).then(() =>
  OpenFeature.setProviderAndWait(provider).then(
    () => { show("status", "ready"); render(); },
    (error) => { show("status", "error: " + error); render(); },
  ));
</script>
</body></html>
""".replace("%(poll)d", str(POLL_MS))

FLAGS = [
    flag_pb("browser-bool", default="on"),
    flag_pb(
        "browser-text",
        {"hello": "Hello", "gruss": "Grüß Gott", "servus": "Servus"},
        "hello",
        {"if": [{"==": [{"var": "country"}, "AT"]}, "gruss", None]},
    ),
]
CHANGED = flag_pb(
    "browser-text",
    {"hello": "Hello", "gruss": "Grüß Gott", "servus": "Servus"},
    "hello",
    {"if": [{"==": [{"var": "country"}, "AT"]}, "servus", None]},
)


@contextlib.asynccontextmanager
async def page_site(script: Path) -> AsyncIterator[str]:
    """The page and its bundle on a loopback port of their own: an origin. Yields the origin."""

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def bundled(_: web.Request) -> web.FileResponse:
        return web.FileResponse(script)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ofrep-web.js", bundled)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle("ofrep-web.js", "ofrepWeb", tmp_path_factory.mktemp("bundle"))


@pytest.fixture
async def origins(script: Path) -> AsyncIterator[tuple[str, str]]:
    """(allowed origin, foreign origin): the same page on two ports."""
    async with page_site(script) as allowed, page_site(script) as foreign:
        yield allowed, foreign


@pytest.fixture
async def vexil(origins: tuple[str, str]) -> AsyncIterator[Connected]:
    allowed, _ = origins
    async with running_app(server_settings(cors_origins=(allowed,))) as app, connected(app) as conn:
        for flag in FLAGS:
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
        yield conn


async def eventually(
    condition: Callable[[], object], what: Callable[[], str], timeout: float = WAIT_S
) -> None:
    """Wait (bounded) until `condition()` holds; the failure says what did not happen (`what()`,
    written when it fails)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f} s: {what()}")
        await asyncio.sleep(0.05)


class Recorder:
    """The page's OFREP responses (status per bulk call) and console messages."""

    def __init__(self, page: Page) -> None:
        self.statuses: list[int] = []
        self.console: list[str] = []
        page.on("response", self._response)
        page.on("console", self._console)

    def _response(self, response: Response) -> None:
        if "/ofrep/v1/evaluate/flags" in response.url and response.request.method == "POST":
            self.statuses.append(response.status)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def cors_errors(self) -> list[str]:
        return [line for line in self.console if "CORS" in line or "Access-Control" in line]


async def text(page: Page, element: str) -> str:
    return await page.inner_text(f"#{element}")


@contextlib.asynccontextmanager
async def provider_page(
    browser: Browser, origin: str, vexil: Connected, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Page, Recorder]]:
    """The test page served from `origin`, its provider pointed at vexil's OFREP side, once the
    provider has left "loading" (ready or failed); screenshot and closed afterwards."""
    page = await browser.new_page()
    seen = Recorder(page)
    try:
        await page.goto(f"{origin}/?ofrep=http://127.0.0.1:{vexil.app.http_port}")
        await page.wait_for_function(
            "document.getElementById('status').textContent !== 'loading'", timeout=WAIT_S * 1000
        )
        yield page, seen
    finally:
        await screenshot(page, request.node.name)
        await page.close()


async def test_the_web_provider_reads_polls_and_sees_changes(
    browser: Browser, vexil: Connected, origins: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    allowed, _ = origins
    async with provider_page(browser, allowed, vexil, request) as (page, seen):
        assert await text(page, "status") == "ready", seen.console
        assert (await text(page, "bool"), await text(page, "text")) == ("true", "Grüß Gott")
        assert await text(page, "reason") == "TARGETING_MATCH"

        # Polls while nothing changes: the provider sends the ETag back and gets 304.
        await eventually(lambda: 304 in seen.statuses, lambda: f"no 304 among the polls {seen.statuses}")
        assert seen.statuses[0] == 200

        await vexil.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=CHANGED))
        await page.wait_for_function(
            "document.getElementById('text').textContent === 'Servus'", timeout=WAIT_S * 1000
        )
        assert seen.statuses[-1] in (200, 304) and seen.statuses.count(200) >= 2, seen.statuses
        assert await text(page, "bool") == "true"
        assert seen.cors_errors() == []


async def test_a_foreign_origin_is_refused_by_the_browser(
    browser: Browser, vexil: Connected, origins: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    _, foreign = origins
    async with provider_page(browser, foreign, vexil, request) as (page, seen):
        assert (await text(page, "status")).startswith("error"), seen.console
        # The code defaults: nothing vexil answered reached the page.
        assert (await text(page, "bool"), await text(page, "text")) == ("false", "code-default")
        await eventually(seen.cors_errors, lambda: f"no CORS error in the console: {seen.console}")
        assert any(foreign in line for line in seen.cors_errors()), seen.cors_errors()
        assert 200 not in seen.statuses
