"""The shutdown gate, refusing new calls once the server stops.

Why not just `grpc.aio.Server.stop`: it stops taking calls from gRPC core at once, and core then
cancels every call that had already arrived but not yet reached a handler.  Their clients see
CANCELLED, which says nothing about whether the call ran, so they cannot safely retry it.  The
gate refuses such calls itself, with UNAVAILABLE ("retry, elsewhere"), while the server is still
running; `settle` waits until clients stop sending before the server is finally stopped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from vexil.reasons import Reason
from vexil.transport.details import DEFAULT_RETRY_SECONDS
from vexil.transport.status import refuse

_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class ShutdownGate:
    """Open: calls pass untouched (`transport.generic.Router` reads one flag). Closed: every
    new call ends UNAVAILABLE before any interceptor or handler runs; calls already past it carry
    on."""

    def __init__(self, message: str = "server shutting down; retry on another replica") -> None:
        self.message = message
        self.closed = False
        self._last_refused = 0.0

    def close(self) -> None:
        self.closed = True
        self._last_refused = time.monotonic()

    def refusing(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` with its behaviour replaced by the refusal (its request is still decoded)."""
        self._last_refused = time.monotonic()
        for attr in _BEHAVIORS:
            if getattr(handler, attr) is not None:
                return handler._replace(**{attr: self._refuse})
        return handler

    async def _refuse(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        await refuse(
            context,
            grpc.StatusCode.UNAVAILABLE,
            self.message,
            Reason.SERVER_SHUTTING_DOWN,
            retry_after=DEFAULT_RETRY_SECONDS,
        )

    async def settle(self, quiet: float, deadline: float) -> None:
        """Wait (until `deadline`, a `time.monotonic` value) for `quiet` seconds without a new
        call: the clients that raced the close have had their UNAVAILABLE and moved on."""
        while True:
            now = time.monotonic()
            wait = min(self._last_refused + quiet, deadline) - now
            if wait <= 0:
                return
            await asyncio.sleep(wait)
