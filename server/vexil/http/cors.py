"""CORS for OFREP: browsers on the configured origins (`cors_origins`) may call it.

A web page's OFREP provider sends `Content-Type: application/json` and `If-None-Match`, so every
call is preceded by a preflight (`OPTIONS` with `Access-Control-Request-Method`).  For an allowed
origin the preflight is answered 204 with the methods and headers OFREP clients send, and every
OFREP answer (errors included, so a page can read a 401 or a 429) carries
`Access-Control-Allow-Origin` and exposes `ETag` (without it the provider cannot send
`If-None-Match`, and every poll would be a full answer).  A preflight from any other origin is
refused with 403 and a message naming the setting; other requests from it are answered without
`Access-Control-Allow-Origin`, so the browser keeps the answer from the page.  Same as flagd's
`cors-origin`: nothing is allowed unless configured, `*` allows every origin.

The preflight is answered before authentication: browsers never send credentials with it.
Only OFREP paths take part; health and metrics are not for browsers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from vexil.http.errors import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PATH_PREFIX = "/ofrep/"
ALLOW_METHODS = "POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization, If-None-Match, flagd-selector"
"""What OFREP providers send: the JSON body's type, the credential, the bulk ETag, and flagd's
environment selector."""
EXPOSE_HEADERS = "ETag, Retry-After"
MAX_AGE_SECONDS = "600"
"""How long a browser may reuse a preflight answer."""
ANY = "*"


def _is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def cors_middleware(origins: Iterable[str]) -> Middleware:
    """The middleware for `origins` (exact `scheme://host[:port]` strings, or `*`); with none it
    still answers preflights, with a 403 that says how to allow an origin."""
    allowed = frozenset(origin.lower() for origin in origins)

    def allows(origin: str) -> bool:
        return bool(origin) and (ANY in allowed or origin.lower() in allowed)

    def grant(origin: str, response: web.StreamResponse | web.HTTPException) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PATH_PREFIX):
            return await handler(request)
        origin = request.headers.get("Origin", "")
        if _is_preflight(request):
            if not allows(origin):
                refused = json_error(
                    403,
                    f"origin {origin or '(none)'} may not call OFREP from a browser; "
                    "add it to the cors_origins setting (VEXIL_CORS_ORIGINS, --cors-origins)",
                )
                refused.headers.add("Vary", "Origin")
                return refused
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE_SECONDS,
                    "Vary": "Origin",
                },
            )
        if not allows(origin):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            grant(origin, exc)
            raise
        grant(origin, response)
        return response

    return middleware


__all__ = ["ALLOW_HEADERS", "EXPOSE_HEADERS", "cors_middleware"]
