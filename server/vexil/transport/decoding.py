"""Undecodable requests become INVALID_ARGUMENT instead of an opaque UNKNOWN, and a request is
decoded only once its caller is known.

grpcio decodes a request before any handler runs, and a decoding failure (random bytes, or a
Struct nested past protobuf's own depth limit) surfaces as UNKNOWN with the parser's internals in
the message.  This interceptor takes decoding from grpcio for unary requests: grpcio hands the
handler the bytes, and the handler this wraps decodes them itself, answering a request that does
not decode with INVALID_ARGUMENT and a message that says what to fix.  It sits after the security
interceptors (`vexil.app`), so a request is parsed only after its credentials and rate limit
passed: megabytes of protobuf from a caller without credentials cost the event loop nothing.
Client-streaming methods (reflection, open to all) keep grpcio's decoding, each message checked.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from vexil.reasons import Reason
from vexil.transport.status import refuse
from vexil.transport.wrapping import WrappingInterceptor

MESSAGE = (
    "request could not be decoded as {name}: it is not that message in protobuf's binary form,"
    " holds a string that is not UTF-8, or is nested too deeply (contexts may be nested at most"
    " 32 levels)"
)
"""The parser says no more than that it failed, so the message names every cause it can be."""


async def _refuse(context: grpc.aio.ServicerContext, name: str) -> None:
    """INVALID_ARGUMENT for the request as a whole (its BadRequest violation names no field)."""
    message = MESSAGE.format(name=name)
    await refuse(context, grpc.StatusCode.INVALID_ARGUMENT, message, Reason.MALFORMED_REQUEST, field="")


class _Undecodable:
    __slots__ = ()


UNDECODABLE = _Undecodable()


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        return _decode(deserializer, data)

    return decode


def _decoding_unary(behavior: Callable, deserialize: Callable[[bytes], Any], name: str) -> Callable:
    async def handler(data: bytes, context: grpc.aio.ServicerContext) -> Any:
        request = _decode(deserialize, data)
        if request is UNDECODABLE:
            await _refuse(context, name)
        return await behavior(request, context)

    return handler


def _decoding_stream(behavior: Callable, deserialize: Callable[[bytes], Any], name: str) -> Callable:
    if inspect.iscoroutinefunction(behavior):  # writes with context.write() (e.g. Health/Watch)
        return _decoding_unary(behavior, deserialize, name)

    async def handler(data: bytes, context: grpc.aio.ServicerContext) -> Any:
        request = _decode(deserialize, data)
        if request is UNDECODABLE:
            await _refuse(context, name)
        async for item in behavior(request, context):
            yield item

    return handler


def _decode(deserialize: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return deserialize(data)
    except (DecodeError, ValueError, RecursionError):
        return UNDECODABLE


class DecodingInterceptor(WrappingInterceptor):
    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return _wrap(handler, method)


async def _checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext, name: str) -> Any:
    async for request in requests:
        if request is UNDECODABLE:
            await _refuse(context, name)
        yield request


def _guard_request_stream(handler: grpc.RpcMethodHandler, name: str) -> grpc.RpcMethodHandler:
    """Client-streaming methods (such as reflection): each request is checked as it arrives."""
    attr = "stream_unary" if handler.stream_unary is not None else "stream_stream"
    behavior = getattr(handler, attr)
    if behavior is None:
        return handler
    if attr == "stream_unary" or inspect.iscoroutinefunction(behavior):

        async def returning(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await behavior(_checked(requests, context, name), context)

        guarded: Callable = returning
    else:

        async def streaming(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            async for item in behavior(_checked(requests, context, name), context):
                yield item

        guarded = streaming
    return handler._replace(request_deserializer=_safe(handler.request_deserializer), **{attr: guarded})


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    if handler.request_deserializer is None:
        return handler
    name = method.rsplit("/", 1)[-1] + " request"
    if handler.request_streaming:
        return _guard_request_stream(handler, name)
    deserialize = handler.request_deserializer
    if handler.unary_unary is not None:
        return handler._replace(
            request_deserializer=None, unary_unary=_decoding_unary(handler.unary_unary, deserialize, name)
        )
    if handler.unary_stream is not None:
        return handler._replace(
            request_deserializer=None, unary_stream=_decoding_stream(handler.unary_stream, deserialize, name)
        )
    return handler
