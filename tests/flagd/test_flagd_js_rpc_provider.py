"""The JavaScript flagd provider (`@openfeature/flagd-provider`, pinned in tests/js) in RPC mode,
with a selector and its default LRU cache, against a server that serves two environments.

It caches what it resolves and evicts a flag when EventStream announces a change to it; it sends
its selector on Resolve calls but not on EventStream.  README: any OpenFeature SDK's flagd
provider works against vexil unchanged, so a change to a flag of the selected environment must
reach it (it kept answering the first value, from its cache, forever).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import jscore
from tests.support.flags import flag_pb
from tests.support.npm import tool
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2

SCRIPT = jscore.JS_DIR / "flagd-rpc.js"


class Provider:
    """The script's process: one JSON line per request line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert raw, "the provider's script ended"
        return json.loads(raw)

    async def evaluate(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"eval\n")
        await self.process.stdin.drain()
        return await self.line()


@pytest.fixture
async def two_environments() -> AsyncIterator[Connected]:
    async with running_app(server_settings(environments="local,staging")) as app, connected(app) as conn:
        for env in ("local", "staging"):
            flag = flag_pb("sel", {"v1": f"{env} v1", "v2": f"{env} v2"}, "v1", environment=env)
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
        yield conn


async def test_the_selected_environments_change_reaches_the_providers_cache(
    two_environments: Connected,
) -> None:
    jscore.install()
    process = await asyncio.create_subprocess_exec(
        tool("node"),
        str(SCRIPT),
        str(two_environments.app.port),
        "flagSetId=staging",
        "sel",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=jscore.JS_DIR,
    )
    provider = Provider(process)
    try:
        assert await provider.line() == {"ready": True}
        first = await provider.evaluate()
        assert first["value"] == "staging v1", first
        assert (await provider.evaluate())["reason"] == "CACHED"  # the cache this is about

        flag = flag_pb("sel", {"v1": "staging v1", "v2": "staging v2"}, "v2", environment="staging")
        await two_environments.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag, expected_version=1))
        deadline = time.monotonic() + 10
        answer = await provider.evaluate()
        while answer["value"] != "staging v2" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            answer = await provider.evaluate()
        assert answer["value"] == "staging v2" and answer["changes"] >= 1, answer
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
