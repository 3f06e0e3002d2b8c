"""A small aiohttp application on a loopback port: a stand-in for an HTTP endpoint a test needs
to control (a `/metrics` that answers what the test says, a DynamoDB that throttles, a redirect)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def site(
    app: web.Application, port: int, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[None]:
    """`app` served on 127.0.0.1:`port` (over TLS with `ssl_context`) for the block's length."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    try:
        yield
    finally:
        await runner.cleanup()
