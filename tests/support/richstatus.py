"""Decode the richer gRPC error model a failed call carries, the way a client library does.

`grpc_status.rpc_status.aio.from_call` reads `grpc-status-details-bin` and checks that its code and
message match the call's; `RichError` unpacks the standard details a test compares with its table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    fields: list[str] | None = None
    """BadRequest field paths (None: no BadRequest detail)."""
    retry_seconds: float | None = None
    preconditions: list[tuple[str, str]] = field(default_factory=list)
    """PreconditionFailure violations as (type, subject)."""
    infos: int = 0
    """How many ErrorInfo details there were (exactly one is expected)."""


def unpack(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> RichError:
    found = RichError(code, message)
    if status is None:
        return found
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.infos += 1
            found.reason, found.domain, found.metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.fields = [v.field for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            found.retry_seconds = retry.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found.preconditions = [(v.type, v.subject) for v in failure.violations]
    return found


async def rich_error(call: Any) -> tuple[RichError, dict[str, Any]]:
    """Await an aio unary call that must fail (or read a stream until it does); the decoded
    details and the raw trailing metadata."""
    try:
        if hasattr(call, "read"):
            for _ in range(1000):
                if await call.read() is grpc.aio.EOF:
                    break
        else:
            await call
    except grpc.aio.AioRpcError:
        pass
    code = await call.code()
    assert code != grpc.StatusCode.OK, "the call succeeded; expected an error"
    status = await rpc_status.aio.from_call(call)
    trailers = dict(await call.trailing_metadata() or ())
    return unpack(code, await call.details(), status), trailers


def from_error(error: grpc.RpcError) -> RichError:
    """The same for an error already raised (sync `from_call`: the error is the finished call)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return unpack(error.code(), error.details() or "", status)  # type: ignore[attr-defined]
