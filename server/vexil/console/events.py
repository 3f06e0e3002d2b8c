"""Live updates for the console: server-sent events fed by the hub through `vexil.follow`.

The page opens `GET /ui/api/events?env=...` and re-reads what it shows when a change arrives.
This is one more subscriber of the one follow loop (ordering, de-duplication, resync and
shutdown come from there).  The stream ends when the session does: at its expiry, when the
credential is revoked (the stream is tracked like an API stream), at sign-out (noticed at the
next message, a heartbeat at the latest), or when the server shuts down;
the browser's EventSource then reconnects and the session check decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from vexil.errors import ResourceExhausted, Unavailable
from vexil.follow import Changed, Heartbeat, Item, Opened, Resynced, follow

from .access import CONSOLE, Caller, endpoint

MAX_STREAMS = 1000
"""Open event streams per process; more are refused (429) rather than queued."""
OPEN = web.AppKey("vexil_console_streams", list)


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
    console = request.app[CONSOLE]
    service = console.service
    env = service.environment(request.query.get("env", ""))
    open_streams = request.app[OPEN]
    if len(open_streams) >= MAX_STREAMS:
        raise ResourceExhausted("too many open console event streams; retry shortly", retry_after=5)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    open_streams.append(response)
    tracking = (
        console.security.streams.tracking(caller.identity)
        if caller.identity is not None
        else contextlib.nullcontext()
    )
    try:
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
    except (TimeoutError, Unavailable, ConnectionResetError):
        pass  # the session ended, the server is stopping, or the page went away
    finally:
        open_streams.remove(response)
    return response


def routes() -> list[web.AbstractRouteDef]:
    return list(ROUTES)
