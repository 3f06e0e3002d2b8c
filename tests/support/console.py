"""What the console's tests share: the server under test with its tokens by role, the CLI
pointed at it (an independent view of what is stored), signing in as a person would (or opening
a session over HTTP), and where
screenshots go (`tests/.artifacts/console/`, git-ignored, beside the other browser tests')."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import aiohttp
from playwright.sync_api import Page, expect

from tests.support.browser import ARTIFACTS
from tests.support.servers import VEXIL, ServerProcess

SCREENSHOTS = ARTIFACTS / "console"
WAIT_MS = 15_000
"""Bound of every wait on a condition in the page (generous: the machine is shared)."""


def cli(target: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VEXIL, *args, "--target", target, "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Console:
    """A running server with the console, its tokens by role, and the CLI pointed at it."""

    server: ServerProcess
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}/ui/"

    def cli(self, *args: str, role: str = "admin") -> subprocess.CompletedProcess[str]:
        done = cli(self.server.target, self.tokens[role], *args)
        assert done.returncode == 0, done.stderr
        return done

    def flag(self, key: str) -> dict[str, Any]:
        """The flag as the CLI reads it from the API (an independent view of what is stored)."""
        data: dict[str, Any] = json.loads(self.cli("flags", "get", key, "--json").stdout)
        return data


def sign_in(page: Page, console: Console, role: str = "admin") -> None:
    """Sign in through the form, as a person would."""
    page.goto(console.url)
    page.get_by_label("API key or JWT").fill(console.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text(role)


async def open_session(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """Open a console session where no credential is needed (the open profile): its cookie is
    set on `http` by hand (it is Secure, and these clients speak plain HTTP to loopback, where a
    browser sends it), and the header a write must carry (CSRF) is returned."""
    async with http.get(f"{base}/ui/api/session") as answer:
        csrf = (await answer.json())["csrf"]
        http.headers["Cookie"] = f"vexil_console={answer.cookies['vexil_console'].value}"
    return {"X-CSRF-Token": csrf}


async def answered(http: aiohttp.ClientSession, method: str, url: str, **request: Any) -> tuple[int, dict]:
    """The status of a console API request and the `error` of its answer ({} when there is none)."""
    async with http.request(method, url, **request) as answer:
        body = await answer.json()
        return answer.status, body.get("error", {}) if isinstance(body, dict) else {}
