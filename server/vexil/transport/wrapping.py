"""The one way vexil's gRPC interceptors work: wrap each method's handler once, reuse it.

An aio interceptor runs on every call; building a new wrapped handler each time would put
allocation and closure creation on the evaluate path.  `WrappingInterceptor` keeps, per method,
the handler it was given and the wrapper it made, and reuses the wrapper while the inner handler
is the same object.  The cache holds one entry per method, so it stays bounded even when an inner
interceptor hands out a fresh handler on every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]
"""What an aio server interceptor is given: the rest of the chain, which finds the handler."""


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses say how to wrap one method's handler (`wrap`); this caches the result."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            self.unknown_method(handler_call_details.method)
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    def unknown_method(self, method: str) -> None:
        """Called for a method no service implements (the call ends UNIMPLEMENTED)."""
