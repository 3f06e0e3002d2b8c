"""A call that sends its headers and not its request message is ended, not held.

grpc.aio holds such a call for as long as the client keeps it, and each one takes a place among
the calls the server holds at once (twice `max_connections`): a client holding them all had every
other client refused.  The server promises (README, "Bounded work"): a call still without its
request message 10-15 s after its headers (the bound, and half as much again) ends
INVALID_ARGUMENT, `MALFORMED_REQUEST`, and a message that comes within the bound is answered.
The bound is made 1 s here so the test is quick; everything else is a real server on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.richstatus import from_error
from tests.support.servers import running_app, server_settings
from vexil.transport import arrival
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

BOUND = 1.0
MALFORMED = "MALFORMED_REQUEST"

EVALUATE = "/vexil.v1.EvaluationService/Evaluate"
WATCH = "/vexil.v1.EvaluationService/Watch"
HEALTH = "/grpc.health.v1.Health/Check"


async def never() -> AsyncIterator[bytes]:
    """A request stream that sends nothing: the call's headers go, its message never does."""
    await asyncio.sleep(3600)
    yield b""


async def nothing() -> AsyncIterator[bytes]:
    """A request stream that ends at once: the call is half-closed with no message."""
    return
    yield b""


async def ending(call: grpc.aio.Call, within: float) -> tuple[grpc.StatusCode, str, str]:
    """How `call` ended (code, details, reason), waiting at most `within` seconds."""
    try:
        async with asyncio.timeout(within):
            if isinstance(call, grpc.aio.StreamStreamCall):
                async for _ in call:
                    pass
            else:
                await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or "", from_error(error).reason
    raise AssertionError(f"{call} answered without a request message")


async def evaluate(channel: grpc.aio.Channel) -> grpc.StatusCode:
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    try:
        await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="nope"), timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
def short_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrival, "REQUEST_SECONDS", BOUND)


@pytest.mark.usefixtures("short_bound")
async def test_calls_without_their_message_are_ended_and_their_places_freed() -> None:
    # max_connections 1: the server holds 2 calls at once.
    async with running_app(server_settings(max_connections=1)) as app:
        target = f"127.0.0.1:{app.port}"
        async with grpc.aio.insecure_channel(target) as holder, grpc.aio.insecure_channel(target) as other:
            started = time.monotonic()
            held = [holder.stream_unary(EVALUATE)(never()), holder.stream_unary(HEALTH)(never())]
            await asyncio.sleep(0.3)
            assert await evaluate(other) == grpc.StatusCode.RESOURCE_EXHAUSTED  # both places are held
            for call in held:
                code, details, reason = await ending(call, within=BOUND * 1.5 + 1)
                assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, MALFORMED), details
                assert "no request message arrived within 1 s" in details, details
                assert BOUND <= time.monotonic() - started < BOUND * 1.5 + 0.3
            assert await evaluate(other) == grpc.StatusCode.OK  # (the flag is unknown: an answer)


@pytest.mark.usefixtures("short_bound")
async def test_a_message_that_comes_within_the_bound_is_answered() -> None:
    """A slow link is not a hostile client: a message 0.7 of the bound late is served."""

    async def late() -> AsyncIterator[bytes]:
        await asyncio.sleep(BOUND * 0.7)
        yield evaluation_pb2.EvaluateRequest(flag_key="nope").SerializeToString()

    async with (
        running_app(server_settings()) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch,
    ):
        # The first sweep comes at half the bound, inside the wait: it must leave the call be.
        answer = evaluation_pb2.EvaluateResponse.FromString(
            await ch.stream_unary(EVALUATE)(late(), timeout=5)
        )
        assert answer.error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND


@pytest.mark.usefixtures("short_bound")
async def test_a_stream_without_its_request_is_ended_too() -> None:
    """Watch and health Watch read one request, then stream: a Watch never sent is ended."""
    async with (
        running_app(server_settings()) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch,
    ):
        call = ch.stream_stream(WATCH)(never())
        code, details, reason = await ending(call, within=BOUND + 2)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, MALFORMED), details


async def test_a_call_that_ends_without_a_message_is_refused_at_once() -> None:
    async with (
        running_app(server_settings()) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch,
    ):
        for path in (EVALUATE, HEALTH):
            code, details, reason = await ending(ch.stream_unary(path)(nothing()), within=2)
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, MALFORMED), details
            assert (
                details
                == f"{path}: the call ended without a request message; send the request message with the call"
            )
        # A real request is answered as before.
        health = health_pb2_grpc.HealthStub(ch)
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_one_address_may_keep_only_so_many_calls_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ending calls in time alone would not do: one address sending 2,000 headers a second would
    keep the whole limit waiting.  So each address may have only so many calls waiting (here 2),
    and its next call is refused at once, until one of them ends.  (That other addresses are
    counted apart: `tests/unit/test_arrivals.py`, as loopback gives every client one address.)"""
    monkeypatch.setattr(arrival, "MAX_WAITING_PER_ADDRESS", 2)
    async with running_app(server_settings()) as app:
        target = f"127.0.0.1:{app.port}"
        async with grpc.aio.insecure_channel(target) as holder, grpc.aio.insecure_channel(target) as other:
            held = [holder.stream_unary(EVALUATE)(never()) for _ in range(2)]
            await asyncio.sleep(0.3)
            code, details, reason = await ending(holder.stream_unary(HEALTH)(never()), within=2)
            assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"), details
            assert details.startswith("2 calls from this address are waiting for their request message"), (
                details
            )
            assert await evaluate(other) == grpc.StatusCode.RESOURCE_EXHAUSTED
            held.pop().cancel()
            await asyncio.sleep(0.3)
            assert await evaluate(other) == grpc.StatusCode.OK
            held.pop().cancel()
