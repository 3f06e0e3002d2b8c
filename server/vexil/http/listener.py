"""The HTTP side's listening sockets, holding at most `limit` connections (`vexil.connections`).

aiohttp's own site accepts without bound and lets asyncio run the TLS handshake before anything
of aiohttp sees the connection, so a connection that never finishes its handshake could not even
be counted.  Here the listener is plain TCP: every accepted connection is counted from accept to
close, one over the limit is answered 503 (on TLS: closed) before any handshake is spent on it,
and TLS is started on the connection afterwards, with `HANDSHAKE_SECONDS` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from vexil.connections import HANDSHAKE_SECONDS
from vexil.http.errors import json_body

log = logging.getLogger(__name__)

REFUSAL_WARNING_SECONDS = 60.0
BACKLOG = 1024
"""Connections the kernel queues for accept (asyncio's default is 100).  A burst of more, such as
a fleet of clients reconnecting at once, has its SYNs dropped and retried a second later.  At
most the connection limit: asyncio accepts a whole backlog before any is refused, and each
accepted one holds a file descriptor until then."""


def _refusal(limit: int) -> bytes:
    body = json_body(
        {"errorDetails": f"this server holds its most HTTP connections ({limit}); retry shortly or reuse one"}
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Listener:
    """Counts connections and hands each one, TLS started if asked for, to aiohttp's protocol."""

    def __init__(
        self,
        protocol: Callable[[], asyncio.Protocol],
        *,
        limit: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.protocol = protocol
        """aiohttp's `web.Server`: a new request handler (an asyncio protocol) per connection."""
        self.limit = limit
        self.ssl_context = ssl_context
        self.refused = 0
        """Connections refused since the last warning about them (one a minute at most)."""
        self._warned_at = -REFUSAL_WARNING_SECONDS
        self.connections: set[_Counted] = set()
        """Every connection accepted and not yet closed, in its TLS handshake or not."""
        self.refusal = _refusal(limit)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen (every address `host` resolves to, as aiohttp would); return the port bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Counted(self),
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=min(BACKLOG, self.limit),
        )
        return int(self._server.sockets[0].getsockname()[1])

    def refuse(self) -> None:
        self.refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= REFUSAL_WARNING_SECONDS:
            log.warning(
                "refused %d HTTP connection(s): %d are open, the most this server holds (max_connections)",
                self.refused,
                self.limit,
            )
            self.refused = 0
            self._warned_at = now

    def close(self) -> None:
        """Stop accepting, and drop connections still in their TLS handshake (aiohttp closes the
        others gracefully when its runner is cleaned up)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            if connection.handler is None:
                connection.abort()


class _Counted(asyncio.Protocol):
    """One accepted connection: counted until it closes, then passed on to aiohttp's handler."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.handler: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Task[None] | None = None
        self.early: list[bytes] = []
        """What TLS decrypted before `_start_tls` resumed to hand the connection over (the
        request that follows the client's Finished can come in the same turn of the loop)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        listener = self.listener
        if len(listener.connections) >= listener.limit:
            listener.refuse()
            if listener.ssl_context is None:
                transport.write(listener.refusal)  # type: ignore[attr-defined]
            transport.close()
            return
        listener.connections.add(self)
        if listener.ssl_context is None:
            self._hand_over(transport)
        else:
            transport.pause_reading()  # type: ignore[attr-defined]  # the ClientHello waits for start_tls
            self.handshake = asyncio.get_running_loop().create_task(self._start_tls(listener.ssl_context))

    async def _start_tls(self, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        try:
            # This protocol stays the connection's: start_tls feeds it what TLS decrypts.
            tls = await loop.start_tls(
                self.transport, self, context, server_side=True, ssl_handshake_timeout=HANDSHAKE_SECONDS
            )
        except Exception as exc:  # a failed or unfinished handshake, or the client went away
            log.debug("HTTP connection closed in its TLS handshake: %r", exc)
            self.abort()
            return
        if tls is None:  # closed as the handshake ended
            self.abort()
            return
        self._hand_over(tls)

    def _hand_over(self, transport: asyncio.BaseTransport) -> None:
        self.handler = self.listener.protocol()
        self.handler.connection_made(transport)
        early, self.early = self.early, []
        for data in early:
            self.handler.data_received(data)

    def abort(self) -> None:
        self.listener.connections.discard(self)
        if self.transport is not None:
            self.transport.abort()

    # -- the rest of asyncio's protocol, passed on once the handler has the connection --------

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self.handler is not None:
            self.handler.connection_lost(exc)
