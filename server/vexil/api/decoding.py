"""Undecodable requests become INVALID_ARGUMENT instead of an opaque UNKNOWN.

grpcio decodes a request before any handler runs, and a decoding failure (random bytes, or a
Struct nested past protobuf's own depth limit) surfaces as UNKNOWN with the parser's internals in
the message.  This interceptor wraps every handler's deserializer: a request that does not decode
is answered with INVALID_ARGUMENT and a message that says what to fix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

MESSAGE = (
    "request could not be decoded as {name}: it is malformed or nested too deeply "
    "(contexts may be nested at most 32 levels)"
)


class _Undecodable:
    __slots__ = ()


UNDECODABLE = _Undecodable()


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, RecursionError):
            return UNDECODABLE

    return decode


def _guard_unary(behavior: Callable, name: str) -> Callable:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request is UNDECODABLE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE.format(name=name))
        return await behavior(request, context)

    return handler


def _guard_stream(behavior: Callable, name: str) -> Callable:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request is UNDECODABLE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE.format(name=name))
        async for item in behavior(request, context):
            yield item

    return handler


class DecodingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once and reuses the wrapper: this runs on every call."""

    def __init__(self) -> None:
        # method -> (handler as given, its wrapper): one entry per method, so it stays bounded
        # even if a later interceptor hands out a fresh handler on every call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    if handler.request_streaming or handler.request_deserializer is None:
        return handler
    name = method.rsplit("/", 1)[-1] + " request"
    if handler.unary_unary is not None:
        return handler._replace(
            request_deserializer=_safe(handler.request_deserializer),
            unary_unary=_guard_unary(handler.unary_unary, name),
        )
    if handler.unary_stream is not None:
        return handler._replace(
            request_deserializer=_safe(handler.request_deserializer),
            unary_stream=_guard_stream(handler.unary_stream, name),
        )
    return handler
