"""The gRPC metrics interceptor: latency, status codes, in-flight calls, open streams, evaluations.

It runs after the security interceptors (auth -> rate limit -> metrics), so calls they reject
never reach it; they report those themselves (`Metrics.rate_limited`, `Metrics.auth_failures`).
Each method's handler is wrapped once (`vexil.transport.wrapping`) and the wrapper reused; the
per-call work is a clock read, a few integer updates on objects resolved when the method was
first seen, and for evaluation RPCs reading the flag key and reason off the messages already
built (see `evaluations` for which methods and how).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc

from vexil.observability.evaluations import Observe, observer_for
from vexil.observability.stats import CallStats, EvaluationCounts, Level, RequestStats
from vexil.transport.wrapping import WrappingInterceptor

UNKNOWN_METHOD = "(unknown)"
"""Method label for calls to methods this server does not have (never the name the client sent)."""


def protocol_of(method: str) -> str:
    """The `protocol` label for a gRPC method path: vexil, flagd, or grpc (health, reflection).

    The security interceptors use it too, so their rejection counters line up with these."""
    if method.startswith("/vexil."):
        return "vexil"
    if method.startswith("/flagd."):
        return "flagd"
    return "grpc"


def status_name(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status a finished call ends with, as grpc names it (OK, NOT_FOUND, ...)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if exc is None:
        return "OK"
    if isinstance(exc, grpc.aio.AbortError | grpc.aio.UsageError):
        return "UNKNOWN"
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"


class MetricsInterceptor(WrappingInterceptor):
    """Feeds `RequestStats` and `EvaluationCounts` from every gRPC call it sees."""

    def __init__(self, requests: RequestStats, evaluations: EvaluationCounts) -> None:
        self.requests = requests
        self.evaluations = evaluations
        super().__init__()
        self._unknown = requests.call("grpc", UNKNOWN_METHOD)

    def unknown_method(self, method: str) -> None:
        self._unknown.ended("UNIMPLEMENTED")

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        protocol = protocol_of(method)
        name = method.lstrip("/")
        stats = self.requests.call(protocol, name)
        if handler.unary_unary is not None and inspect.iscoroutinefunction(handler.unary_unary):
            observe = observer_for(method, self.evaluations)
            in_flight = self.requests.in_flight(protocol)
            return handler._replace(unary_unary=_unary(handler.unary_unary, stats, in_flight, observe))
        streams = handler.unary_stream
        if streams is not None and (
            inspect.iscoroutinefunction(streams) or inspect.isasyncgenfunction(streams)
        ):
            level = self.requests.stream(protocol, name)
            return handler._replace(unary_stream=_stream(handler.unary_stream, stats, level))
        return handler  # client- and bidi-streaming (reflection), synchronous handlers: not measured


def _unary(
    behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    stats: CallStats,
    in_flight: Level,
    observe: Observe | None,
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    clock = time.perf_counter

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        in_flight.value += 1
        started = clock()
        failure: BaseException | None = None
        response = None
        try:
            response = await behavior(request, context)
            return response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            code = status_name(context, failure)
            in_flight.value -= 1
            stats.finished(clock() - started, code)
            if observe is not None:
                observe(request, response, code)

    return handler


def _stream(
    behavior: Callable[[Any, grpc.aio.ServicerContext], Any],
    stats: CallStats,
    level: Level,
) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
    if inspect.iscoroutinefunction(behavior):  # a handler writing with context.write()

        async def writer(request: Any, context: grpc.aio.ServicerContext) -> None:
            with _open(context, stats, level):
                await behavior(request, context)

        return writer

    async def generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        with _open(context, stats, level):
            async for item in behavior(request, context):
                yield item

    return generator


@contextlib.contextmanager
def _open(context: grpc.aio.ServicerContext, stats: CallStats, level: Level) -> Iterator[None]:
    """One stream, whichever way its handler sends: counted open while it runs, and how it ended
    (its status, or the exception that ended it) recorded."""
    level.value += 1
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        failure = exc
        raise
    finally:
        level.value -= 1
        stats.ended(status_name(context, failure))
