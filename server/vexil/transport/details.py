"""The richer gRPC error model (AIP-193): a `google.rpc.Status` in `grpc-status-details-bin`.

A status code and an English message are all most gRPC clients show, and they are not enough for
a program to act on.  Every error vexil answers also carries, in the standard trailer that
clients of any language decode (`grpc_status.rpc_status.from_call` in Python, `@grpc/grpc-js`
plus `google.rpc.Status` in Node, `status.FromError` in Go):
- `ErrorInfo`: a stable `reason` from `vexil.reasons.Reason`, the `DOMAIN`, and metadata
  (such as `current_version` of a stale write);
- `BadRequest` field violations for INVALID_ARGUMENT, naming the field to fix;
- `RetryInfo` for RESOURCE_EXHAUSTED and UNAVAILABLE: how long to wait before retrying;
- `PreconditionFailure` where a precondition failed (a stale version, the kill switch).

Built only when a call fails: the success path never touches this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from vexil.reasons import DOMAIN, Reason

DETAILS_KEY = "grpc-status-details-bin"
"""The trailer gRPC reserves for a serialized `google.rpc.Status`."""

DEFAULT_RETRY_SECONDS = 1.0
"""RetryInfo's delay when the cause names none (a store outage, a replica shutting down)."""

MAX_MESSAGE_BYTES = 1024
"""Most UTF-8 bytes of an error message (`grpc-message`, and again inside the details): a message
may quote the request (a flag key, a field's value), and gRPC clients refuse trailers over 8 KiB
(C-core, Java) with RESOURCE_EXHAUSTED, which reads as a rate limit."""

Violation = tuple[str, str, str]
"""A `PreconditionFailure` violation: (type, subject, description)."""


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def bounded(message: str) -> str:
    """`message`, cut to `MAX_MESSAGE_BYTES` (at a character boundary) with how much was left out."""
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    kept = data[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")
    return f"{kept}... ({len(message) - len(kept)} more characters)"


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: Reason,
    *,
    metadata: Mapping[str, str] | None = None,
    field: str | None = None,
    field_description: str = "",
    retry_after: float | None = None,
    preconditions: Sequence[Violation] = (),
) -> status_pb2.Status:
    """The `google.rpc.Status` for one error; `code` and `message` must be the call's own (clients
    check that they match; both are `bounded`).  `field` adds a BadRequest violation
    (INVALID_ARGUMENT; "" for a request that is wrong as a whole), `retry_after` a RetryInfo,
    `preconditions` a PreconditionFailure."""
    message = bounded(message)
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason.value, domain=DOMAIN)
    for key, value in (metadata or {}).items():
        info.metadata[key] = value
    status.details.append(_packed(info))
    if field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=bounded(field), description=bounded(field_description) or message
        )
        status.details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        status.details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    if preconditions:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(type=kind, subject=subject, description=text)
                for kind, subject, text in preconditions
            ]
        )
        status.details.append(_packed(failure))
    return status


def details_trailer(status: status_pb2.Status) -> tuple[str, bytes]:
    """The trailing-metadata entry that carries `status`."""
    return DETAILS_KEY, status.SerializeToString()
