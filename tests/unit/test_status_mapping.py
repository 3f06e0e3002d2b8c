"""`status.unary` and `status.streaming` map a handler's errors the same way, over a real server.

Both decorators promise one mapping: a core error ends the call with its own status and message,
an abort the handler made itself passes through untouched, and anything unexpected is logged with
its traceback and reaches the caller as INTERNAL with a generic message that leaks nothing.  The
expected statuses and messages below are written by hand, not read from the code under test.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from vexil.errors import FlagNotFound
from vexil.transport import status

SECRET = "s3cret-detail-never-sent"
SERVICE = "test.Mapping"


class Handlers:
    """One handler per outcome, for each kind of call."""

    @status.unary
    async def Found(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"ok"

    @status.unary
    async def CoreError(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise FlagNotFound("flag 'missing' does not exist in environment 'dev'")

    @status.unary
    async def Aborts(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.OUT_OF_RANGE, "aborted by the handler")
        return b""

    @status.unary
    async def Crashes(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError(SECRET)

    @status.streaming
    async def StreamCoreError(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        yield b"first"
        raise FlagNotFound("flag 'gone' does not exist in environment 'dev'")

    @status.streaming
    async def StreamAborts(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        await context.abort(grpc.StatusCode.OUT_OF_RANGE, "aborted by the handler")

    @status.streaming
    async def StreamCrashes(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError(SECRET)


UNARY = ("Found", "CoreError", "Aborts", "Crashes")
STREAMING = ("StreamCoreError", "StreamAborts", "StreamCrashes")

# method: (status, message) the caller must see, written down by hand.
EXPECTED = {
    "CoreError": (grpc.StatusCode.NOT_FOUND, "flag 'missing' does not exist in environment 'dev'"),
    "Aborts": (grpc.StatusCode.OUT_OF_RANGE, "aborted by the handler"),
    "Crashes": (grpc.StatusCode.INTERNAL, "internal error in Handlers.Crashes; see the server log"),
    "StreamCoreError": (grpc.StatusCode.NOT_FOUND, "flag 'gone' does not exist in environment 'dev'"),
    "StreamAborts": (grpc.StatusCode.OUT_OF_RANGE, "aborted by the handler"),
    "StreamCrashes": (
        grpc.StatusCode.INTERNAL,
        "internal error in Handlers.StreamCrashes; see the server log",
    ),
}


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    """A loopback server serving `Handlers` (raw bytes, no serializers) and a channel to it."""
    handlers = Handlers()
    methods = {name: grpc.unary_unary_rpc_method_handler(getattr(handlers, name)) for name in UNARY}
    methods |= {name: grpc.unary_stream_rpc_method_handler(getattr(handlers, name)) for name in STREAMING}
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
            yield chan
    finally:
        await server.stop(None)


async def test_a_handler_that_returns_answers(channel: grpc.aio.Channel) -> None:
    assert await channel.unary_unary(f"/{SERVICE}/Found")(b"", timeout=10) == b"ok"


@pytest.mark.parametrize("method", ["CoreError", "Aborts", "Crashes"])
async def test_unary_errors_end_the_call_with_their_status(
    channel: grpc.aio.Channel, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=10)
    assert (raised.value.code(), raised.value.details()) == EXPECTED[method]
    assert_logged_only_the_crash(method, caplog)


@pytest.mark.parametrize("method", ["StreamCoreError", "StreamAborts", "StreamCrashes"])
async def test_streaming_errors_end_the_stream_with_their_status(
    channel: grpc.aio.Channel, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for item in channel.unary_stream(f"/{SERVICE}/{method}")(b"", timeout=10):
            received.append(item)
    assert received == [b"first"]
    assert (raised.value.code(), raised.value.details()) == EXPECTED[method]
    assert_logged_only_the_crash(method, caplog)


def assert_logged_only_the_crash(method: str, caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected error is logged with its traceback (the detail stays on the server); an
    expected one or the handler's own abort is not logged as an error."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == status.log.name]
    if method.endswith("Crashes"):
        assert len(errors) == 1, errors
        assert errors[0].exc_info is not None and SECRET in str(errors[0].exc_info[1])
        assert errors[0].getMessage() == f"unexpected error in Handlers.{method}"
    else:
        assert errors == []
