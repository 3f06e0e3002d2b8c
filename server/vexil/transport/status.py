"""One mapping from the core's errors to gRPC status, applied to every handler by decorators.

Expected errors keep their message (it says what to fix); anything unexpected is logged with its
traceback on the server and reaches the caller as INTERNAL with a generic message, so no internal
detail (or secret) ever leaks into a response.

Every error also carries the richer error model (`vexil.transport.details`): the error's `Reason`
in an ErrorInfo, plus BadRequest, RetryInfo or PreconditionFailure where they apply.  The plain
trailers sent before that (`vexil-current-version`, `retry-after`) stay for older clients.
Refusals that are not core errors (an undecodable request, a server shutting down) go through
`refuse`, so they carry the same details.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.rpc import status_pb2

from vexil.errors import (
    Conflict,
    InvalidArgument,
    KillSwitchAdminOnly,
    ResourceExhausted,
    Unavailable,
    VexilError,
)
from vexil.reasons import Reason
from vexil.transport.details import (
    DEFAULT_RETRY_SECONDS,
    Violation,
    bounded,
    details_trailer,
    rich_status,
)

log = logging.getLogger(__name__)

R = TypeVar("R")

STATUS = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "ABORTED": grpc.StatusCode.ABORTED,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code(exc: VexilError) -> grpc.StatusCode:
    return STATUS.get(exc.code, grpc.StatusCode.UNKNOWN)


def details(exc: VexilError) -> status_pb2.Status:
    """The `google.rpc.Status` that describes `exc` (see `vexil.transport.details`)."""
    metadata: dict[str, str] = {}
    field: str | None = None
    description = ""
    retry_after: float | None = None
    preconditions: tuple[Violation, ...] = ()
    if isinstance(exc, InvalidArgument):
        field, description = exc.field, exc.description
    if isinstance(exc, Conflict):
        metadata["current_version"] = str(exc.current_version)
        preconditions = ((exc.reason.value, "expected_version", exc.message),)
    if isinstance(exc, KillSwitchAdminOnly):
        preconditions = ((exc.reason.value, "flag.state", exc.message),)
    if isinstance(exc, ResourceExhausted):
        retry_after = exc.retry_after or DEFAULT_RETRY_SECONDS
        metadata["retry_after_seconds"] = f"{retry_after:.0f}"
    if isinstance(exc, Unavailable):
        retry_after = DEFAULT_RETRY_SECONDS
    return rich_status(
        status_code(exc),
        exc.message,
        exc.reason,
        metadata=metadata,
        field=field,
        field_description=description,
        retry_after=retry_after,
        preconditions=preconditions,
    )


async def abort(context: grpc.aio.ServicerContext, exc: VexilError) -> None:
    """End the call with the status that matches `exc` (raises, as `context.abort` does)."""
    trailers: list[tuple[str, str | bytes]] = []
    if isinstance(exc, Conflict):
        trailers.append(("vexil-current-version", str(exc.current_version)))
    if isinstance(exc, ResourceExhausted) and exc.retry_after:
        trailers.append(("retry-after", f"{exc.retry_after:.0f}"))
    trailers.append(details_trailer(details(exc)))
    await context.abort(status_code(exc), bounded(exc.message), tuple(trailers))


async def refuse(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: Reason,
    *,
    field: str | None = None,
    retry_after: float | None = None,
) -> None:
    """End the call with `code` and `message` for a refusal that is no core error (raises)."""
    status = rich_status(code, message, reason, field=field, retry_after=retry_after)
    await context.abort(code, bounded(message), (details_trailer(status),))


async def abort_internal(context: grpc.aio.ServicerContext, where: str) -> None:
    log.exception("unexpected error in %s", where)
    message = f"internal error in {where}; see the server log"
    await refuse(context, grpc.StatusCode.INTERNAL, message, Reason.INTERNAL)


async def _end_with(context: grpc.aio.ServicerContext, exc: Exception, where: str) -> None:
    """The error mapping both decorators apply, called from their `except` (raises): a core
    error gets its status, an abort the handler made itself goes on as it is, anything else is
    INTERNAL (logged with the traceback of the exception being handled)."""
    if isinstance(exc, VexilError):
        await abort(context, exc)
    elif isinstance(exc, grpc.aio.AbortError | grpc.aio.UsageError):
        raise exc
    else:
        await abort_internal(context, where)


def unary(
    handler: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]]:
    """Wrap a unary handler with the error mapping."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await handler(self, request, context)
        except Exception as exc:
            await _end_with(context, exc, handler.__qualname__)
        raise AssertionError("unreachable: abort raises")

    return wrapper


def streaming(
    handler: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[R]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[R]]:
    """Wrap a server-streaming handler (an async generator) with the error mapping."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[R]:
        try:
            async for item in handler(self, request, context):
                yield item
        except Exception as exc:
            await _end_with(context, exc, handler.__qualname__)

    return wrapper
