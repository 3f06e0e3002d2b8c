"""Helpers for the operations tests: scraping a server, running the CLI without blocking the
event loop an in-process server runs on."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import aiohttp

from tests.support.servers import VEXIL
from vexil.app import App
from vexil.ops.scrape import Scrape


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def vexil(*args: str, env: dict[str, str] | None = None, timeout: float = 90.0) -> Ran:
    """The `vexil` command as a subprocess (asynchronously: an in-process server keeps serving)."""
    proc = await asyncio.create_subprocess_exec(
        VEXIL,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def server_args(app: App) -> list[str]:
    return ["--target", f"127.0.0.1:{app.port}", "--http-url", f"http://127.0.0.1:{app.http_port}"]


async def metrics_text(app: App) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.http_port}/metrics") as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


async def scrape(app: App) -> Scrape:
    return Scrape.parse(await metrics_text(app))
