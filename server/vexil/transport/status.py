"""One mapping from the core's errors to gRPC status, applied to every handler by decorators.

Expected errors keep their message (it says what to fix); anything unexpected is logged with its
traceback on the server and reaches the caller as INTERNAL with a generic message, so no internal
detail (or secret) ever leaks into a response.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from vexil.errors import Conflict, ResourceExhausted, VexilError

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


async def abort(context: grpc.aio.ServicerContext, exc: VexilError) -> None:
    """End the call with the status that matches `exc` (raises, as `context.abort` does)."""
    code = STATUS.get(exc.code, grpc.StatusCode.UNKNOWN)
    trailers: list[tuple[str, str]] = []
    if isinstance(exc, Conflict):
        trailers.append(("vexil-current-version", str(exc.current_version)))
    if isinstance(exc, ResourceExhausted) and exc.retry_after:
        trailers.append(("retry-after", f"{exc.retry_after:.0f}"))
    await context.abort(code, exc.message, tuple(trailers))


async def abort_internal(context: grpc.aio.ServicerContext, where: str) -> None:
    log.exception("unexpected error in %s", where)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {where}; see the server log")


def unary(
    handler: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]]:
    """Wrap a unary handler with the error mapping."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await handler(self, request, context)
        except VexilError as exc:
            await abort(context, exc)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception:
            await abort_internal(context, handler.__qualname__)
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
        except VexilError as exc:
            await abort(context, exc)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception:
            await abort_internal(context, handler.__qualname__)

    return wrapper
