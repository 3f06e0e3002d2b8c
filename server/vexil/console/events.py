"""Live updates for the console: server-sent events fed by the hub through `vexil.follow`.

The page opens `GET /ui/api/events?env=...` and re-reads what it shows when a change arrives.
This is one more subscriber of the one follow loop (ordering, de-duplication, resync and
shutdown come from there).  The stream ends when the session does: at its expiry, when the
credential is revoked (the stream is tracked like an API stream), at sign-out (noticed at the
next message, a heartbeat at the latest), or when the server shuts down;
the browser's EventSource then reconnects and the session check decides.

Streams are bounded twice: `MAX_STREAMS` for the process, and `MAX_STREAMS_PER_CALLER` for one
caller (as the session table counts callers: a principal's subject, or one anonymous session), so
one credential opening stream after stream takes at most its share and never the others' live
updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

from aiohttp import web

from vexil.errors import ResourceExhausted, Unavailable
from vexil.follow import Changed, Heartbeat, Item, Opened, Resynced, follow

from .access import CONSOLE, Caller, endpoint
from .session import caller_of

MAX_STREAMS = 1000
"""Open event streams per process; more are refused (429) rather than queued."""
MAX_STREAMS_PER_CALLER = 20
"""Open event streams of one caller (one per open console tab); more are refused (429).  With
1,000 per process, at least 50 callers always find room, whatever one of them does."""
OPEN = web.AppKey("vexil_console_streams", Counter)
"""Open streams by caller."""


def encode(item: Item) -> bytes:
    """One SSE message per item; heartbeats are comments (they keep proxies from timing out)."""
    if isinstance(item, Heartbeat):
        return b": heartbeat\n\n"
    data: dict[str, Any]
    if isinstance(item, Changed):
        change = item.change
        data = {
            "type": "change",
            "version": change.config_version,
            "kind": str(change.kind),
            "key": change.flag_key,
            "actor": change.actor,
        }
    elif isinstance(item, Opened | Resynced):
        data = {
            "type": "opened" if isinstance(item, Opened) else "resync",
            "version": item.snapshot.config_version,
        }
    return f"data: {json.dumps(data)}\n\n".encode()


ROUTES = web.RouteTableDef()


@ROUTES.get("/ui/api/events")
@endpoint("/vexil.v1.AdminService/ListChanges")
async def events(request: web.Request, caller: Caller) -> web.StreamResponse:
    env = request.app[CONSOLE].service.environment(request.query.get("env", ""))
    open_streams = request.app[OPEN]
    who = caller_of(caller.session)
    if open_streams[who] >= MAX_STREAMS_PER_CALLER:
        raise ResourceExhausted(
            f"these credentials already hold {MAX_STREAMS_PER_CALLER} open console event streams; "
            "close other console tabs",
            retry_after=5,
        )
    if open_streams.total() >= MAX_STREAMS:
        raise ResourceExhausted("too many open console event streams; retry shortly", retry_after=5)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    open_streams[who] += 1  # counted before the first await: a burst cannot pass the check together
    try:
        await _stream(request, response, caller, env)
    except (TimeoutError, Unavailable, ConnectionResetError):
        pass  # the session ended, the server is stopping, or the page went away
    finally:
        open_streams[who] -= 1
        if not open_streams[who]:
            del open_streams[who]
    return response


async def _stream(request: web.Request, response: web.StreamResponse, caller: Caller, env: str) -> None:
    """Send `env`'s changes on `response` until the session or the connection ends."""
    console = request.app[CONSOLE]
    service = console.service
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    tracking = (
        console.security.streams.tracking(caller.identity)
        if caller.identity is not None
        else contextlib.nullcontext()
    )
    with tracking:
        stream = follow(env, service.cache, service.cache.hub, console.heartbeat_seconds, encode)
        try:
            async with asyncio.timeout(console.sessions.remaining(caller.session)):
                async for message in stream:
                    if console.sessions.get(caller.session.id) is None:
                        break  # signed out: at the latest at the next heartbeat
                    await response.write(message)
        finally:
            await stream.aclose()


def routes() -> list[web.AbstractRouteDef]:
    return list(ROUTES)
