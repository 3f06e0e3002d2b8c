"""A call's request message must arrive soon after its headers, or the call ends.

For a method with one request message, grpc.aio waits for that message before any handler runs,
and waits for as long as the client likes (also for a call the client ended without a message):
a client that sends a call's headers and never its message holds one of the server's calls
(`vexil.connections.call_limit`) until it goes away.  20,000 such calls on one connection would
fill the limit, and every other client's calls would be refused.  So every such method is served
as if its request were a stream: the handler runs when the headers arrive and reads the one
message itself, and a call still waiting for it after `REQUEST_SECONDS` is ended.  A call
whose message does not come in time, or that ends without one, is INVALID_ARGUMENT
(`MALFORMED_REQUEST`) with a message that says so.  On the wire nothing changes: a unary request
is a stream of one message either way.

`ArrivalInterceptor` goes first in the server's list, so it wraps outermost: what it calls is the
handler the other interceptors built, given the message as grpc.aio would have given it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from vexil.reasons import Reason
from vexil.transport.details import DEFAULT_RETRY_SECONDS
from vexil.transport.peers import peer_host
from vexil.transport.status import refuse
from vexil.transport.wrapping import WrappingInterceptor

REQUEST_SECONDS = 10.0
"""The longest a call's request message may take to arrive after its headers; a call still
without it is ended between this and one and a half times this.  A client sends the message
with the headers (grpc's clients write both at once), so only a call held open on purpose, or
a link that stalls for this long, reaches it."""
MAX_WAITING_PER_ADDRESS = 100
"""Calls from one client address that may wait for their request message at once; the next is
RESOURCE_EXHAUSTED at once.  A client's calls wait microseconds (the message comes with the
headers), so even many clients behind one address hardly ever have two waiting; without this,
one address sending 2,000 headers a second would keep 20,000 calls waiting, the whole limit."""


class Arrivals:
    """The calls waiting for their request message, and one timer that ends the late ones.

    Not a timeout per call (`asyncio.timeout`): that pushes a timer onto the event loop's heap
    for every call and cancels it again, work the loop then sifts through.  Here a call costs a
    clock read, its address counted, and two dict operations; one timer, running only while
    calls wait, sweeps every half `seconds`, and a call that has waited `seconds` by then is
    cancelled."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = REQUEST_SECONDS if seconds is None else seconds
        self._waiting: dict[asyncio.Task, float] = {}
        """Each waiting call's task -> when it arrived (`time.monotonic`)."""
        self._per_address: Counter[str] = Counter()
        """Client address -> its calls waiting (`MAX_WAITING_PER_ADDRESS`)."""
        self._late: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def request(self, context: grpc.aio.ServicerContext, method: str) -> Any:
        """The call's one request message; a refusal when it does not arrive in time."""
        task = asyncio.current_task()
        assert task is not None
        address = peer_host(context.peer() or "")
        if self._per_address[address] >= MAX_WAITING_PER_ADDRESS:
            await refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{MAX_WAITING_PER_ADDRESS} calls from this address are waiting for their request"
                " message; send each call's message with its headers",
                Reason.RATE_LIMITED,
                retry_after=DEFAULT_RETRY_SECONDS,
            )
        self._per_address[address] += 1
        self._waiting[task] = time.monotonic()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.seconds / 2, self._sweep)
        try:
            request = await context.read()
        except asyncio.CancelledError:
            if task not in self._late:
                raise  # the client went away, or the server is stopping
            self._late.discard(task)
            task.uncancel()
            request = grpc.aio.EOF
            why = f"no request message arrived within {self.seconds:g} s of the call's headers"
        else:
            why = "the call ended without a request message"
        finally:
            del self._waiting[task]
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
        if request is grpc.aio.EOF:
            await refuse(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{method}: {why}; send the request message with the call",
                Reason.MALFORMED_REQUEST,
                field="",
            )
        return request

    def _sweep(self) -> None:
        due = time.monotonic() - self.seconds
        for task, arrived in list(self._waiting.items()):
            if arrived <= due and task not in self._late:
                self._late.add(task)
                task.cancel()
        self._late.intersection_update(self._waiting)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.seconds / 2, self._sweep) if self._waiting else None


def _reading_unary(behavior: Callable, method: str, arrivals: Arrivals) -> Callable:
    async def handler(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        return await behavior(await arrivals.request(context, method), context)

    return handler


def _reading_stream(behavior: Callable, method: str, arrivals: Arrivals) -> Callable:
    if asyncio.iscoroutinefunction(behavior):  # writes with context.write() (e.g. Health/Watch)
        return _reading_unary(behavior, method, arrivals)

    async def handler(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        async for item in behavior(await arrivals.request(context, method), context):
            yield item

    return handler


class ArrivalInterceptor(WrappingInterceptor):
    """Serves every method with one request message as a request stream read with a time bound."""

    def __init__(self, seconds: float | None = None) -> None:
        self.arrivals = Arrivals(seconds)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.request_streaming:
            return handler
        if handler.unary_unary is not None:
            reading = _reading_unary(handler.unary_unary, method, self.arrivals)
            return handler._replace(request_streaming=True, unary_unary=None, stream_unary=reading)
        if handler.unary_stream is not None:
            streaming = _reading_stream(handler.unary_stream, method, self.arrivals)
            return handler._replace(request_streaming=True, unary_stream=None, stream_stream=streaming)
        return handler
