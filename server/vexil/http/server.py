"""The HTTP side: an aiohttp server on the gRPC server's event loop, with OFREP and health routes.

Other routes (such as `/metrics`) are added with `add_routes` before `start`.  Authentication is
a pluggable coroutine (`Authenticator`): it sees each OFREP request and returns the caller's
`Principal` (or None to let it through anonymously) or raises `Unauthenticated` /
`PermissionDenied`, which become 401 / 403.  Health and other operational routes are not
authenticated.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from vexil import identity
from vexil.connections import connection_limit
from vexil.errors import CannotListen, VexilError
from vexil.http import health, ofrep
from vexil.http.cors import cors_middleware
from vexil.http.errors import error_response, internal_error, json_error
from vexil.http.listener import Listener
from vexil.identity import Principal
from vexil.service import FlagService

Authenticator = Callable[[web.Request], Awaitable[Principal | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AUTHENTICATED_PREFIX = "/ofrep/"
CREDENTIALED_PATHS = frozenset({"/metrics"})
"""Operational routes that need `authenticate_operations`' credentials when it is set."""
DETAILED_PATHS = frozenset({"/readyz"})
"""Routes that answer anyone, but give their detail only to `authenticate_operations`' callers."""


MAX_BODY_BYTES = 1024 * 1024
"""The largest request body the HTTP side reads, compressed or not (what it decompresses counts):
aiohttp's default, stated.  An OFREP context is far smaller; the console's bodies are bounded
lower still (`vexil.console.access.MAX_BODY_BYTES`)."""


async def _read_in_time(request: web.Request, seconds: float) -> web.Response | None:
    """Read the whole body before any handler sees the request, within `seconds`: a body
    sent a byte at a time would otherwise hold its handler (and connection) for as long as the
    client likes.  Handlers then get it from aiohttp's copy (`request.read()`).  A late body
    is answered 408, one over `MAX_BODY_BYTES` 413 (in JSON, as every answer of this side: aiohttp
    says it in plain text), and the connection is closed; None when the body arrived in time."""
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        response = json_error(408, f"the request body did not arrive within {seconds:g} seconds")
    except web.HTTPRequestEntityTooLarge:
        response = json_error(
            413, f"the request body is over {MAX_BODY_BYTES:,} bytes, the most this server reads: send less"
        )
    else:
        return None
    response.force_close()
    return response


class HttpServer:
    def __init__(
        self,
        service: FlagService,
        *,
        host: str = "127.0.0.1",
        port: int = 3001,
        authenticate: Authenticator | None = None,
        shutdown_grace: float = 10.0,
        reuse_port: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        authenticate_operations: Authenticator | None = None,
        cors_origins: Iterable[str] = (),
        max_connections: int = 0,
        client_timeout: float = 75.0,
    ) -> None:
        """`port` 0 picks a free port (`start` returns the one it got); `reuse_port` lets several
        worker processes share it (SO_REUSEPORT). `authenticate_operations`: who may read
        `/metrics` and the `/readyz` detail (None: anyone, as in the local profile).
        `cors_origins`: the browser origins OFREP answers (`vexil.http.cors`).
        `max_connections`: most connections held at once (0: `vexil.connections.connection_limit`);
        `client_timeout`: seconds a client has to send its next request on a connection, or a
        request's body."""
        self.max_connections = connection_limit(max_connections)
        self.client_timeout = client_timeout
        self.authenticate_operations = authenticate_operations
        self.reuse_port = reuse_port
        self.ssl_context = ssl_context
        """TLS for this listener (`vexil.security.tls`); None serves plain HTTP."""
        self.host = host
        self.port = port
        self.authenticate = authenticate
        self.shutdown_grace = shutdown_grace
        self.readiness = health.Readiness(service.cache)
        # CORS outermost: a preflight carries no credentials, so it is answered before authentication.
        self.app = web.Application(
            middlewares=[cors_middleware(cors_origins), self._middleware], client_max_size=MAX_BODY_BYTES
        )
        self.app[ofrep.SERVICE] = service
        self.app[health.READINESS] = self.readiness
        self.app.add_routes([*health.routes(), *ofrep.routes()])
        self._runner: web.AppRunner | None = None
        self._listener: Listener | None = None

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Add routes (before `start`): how `/metrics` and other operational endpoints join."""
        self.app.add_routes(routes)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authentication for OFREP, and the core's errors as HTTP responses."""
        key = request.match_info.get("key")
        token = None
        try:
            if self.authenticate is not None and request.path.startswith(AUTHENTICATED_PREFIX):
                token = identity.current_principal.set(await self.authenticate(request))
            elif self.authenticate_operations is not None:
                if request.path in CREDENTIALED_PATHS:
                    await self.authenticate_operations(request)
                elif request.path in DETAILED_PATHS:
                    request[health.DETAIL] = await self._may_see_detail(request)
            if request.body_exists and not request.content.is_eof():  # a whole body needs no timer
                late = await _read_in_time(request, self.client_timeout)
                if late is not None:
                    return late
            return await handler(request)
        except VexilError as exc:
            return error_response(exc, key)
        except web.HTTPException:
            raise
        except Exception:
            return internal_error(f"{request.method} {request.path}")
        finally:
            if token is not None:
                identity.current_principal.reset(token)

    async def _may_see_detail(self, request: web.Request) -> bool:
        """Whether the request's credentials (if any) may see what an operational route details."""
        assert self.authenticate_operations is not None
        if "Authorization" not in request.headers:
            return False
        try:
            await self.authenticate_operations(request)
        except VexilError:
            return False
        return True

    async def start(self) -> int:
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=self.shutdown_grace,
            keepalive_timeout=self.client_timeout,
        )
        await runner.setup()
        assert runner.server is not None
        listener = Listener(runner.server, limit=self.max_connections, ssl_context=self.ssl_context)
        try:
            self.port = await listener.start(self.host, self.port, reuse_port=self.reuse_port)
        except OSError as exc:
            await runner.cleanup()
            raise CannotListen(f"cannot listen on {self.host}:{self.port} (HTTP): {exc.strerror}") from None
        self._runner = runner
        self._listener = listener
        return self.port

    async def stop(self) -> None:
        """Report not ready, then close: in-flight requests get `shutdown_grace` seconds."""
        self.readiness.draining = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
