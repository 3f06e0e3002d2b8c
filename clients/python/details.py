"""What an evaluation returns: the value plus why, and the vocabularies to say why.

Reasons and error codes are flagd's and OpenFeature's names, so code written against one maps
one-to-one onto the other.  `Reason` is the engine's own, so local answers need no translation.
`ErrorCode` is OpenFeature's, a superset of the engine's: it adds three codes the server never
sends but a client can hit: PROVIDER_NOT_READY (local mode before the first snapshot),
INVALID_CONTEXT (the server refused the context) and PROVIDER_FATAL (credentials refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import auto
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, TypeVar

import grpc

from vexil.client.frozen import freeze
from vexil.engine import ErrorCode as EngineErrorCode
from vexil.engine import Reason, Resolution
from vexil.engine.resolution import EMPTY_METADATA
from vexil.model import NamedEnum
from vexil.v1 import evaluation_pb2
from vexil.wire import struct_to_dict, value_to_python

T = TypeVar("T")


class ErrorCode(NamedEnum):
    """Why an evaluation failed (OpenFeature's error codes)."""

    FLAG_NOT_FOUND = auto()
    """The server (or local snapshot) has no flag with that key."""
    TYPE_MISMATCH = auto()
    """The flag's value is not of the type the getter asked for."""
    PARSE_ERROR = auto()
    """The flag's definition does not compile, or the answer could not be read."""
    GENERAL = auto()
    """Anything else, usually transient: the server unreachable, a deadline, a rule that failed."""
    PROVIDER_NOT_READY = auto()
    """No answer to give yet: local mode before its first snapshot, or a closed client."""
    INVALID_CONTEXT = auto()
    """The server refused the request as invalid: almost always the context (size or depth)."""
    PROVIDER_FATAL = auto()
    """The credentials were refused (unauthenticated or not permitted): retrying will not help."""


class EvaluationDetails(NamedTuple, Generic[T]):
    """One evaluation: the value to use and everything about how it was chosen.

    `value` is always usable: when the flag is disabled, failed, or has no default variant it is
    the caller's default.  `flag_version` and `config_version` say which data answered (0 when
    unknown), which is what to log when a flag misbehaves.

    Immutable, all the way down (object values and metadata are read-only), because local mode
    hands out one shared instance per answer that does not depend on the caller's default (see
    `local.py`).  A named tuple rather than a frozen dataclass: it is built in a fraction of
    the time, and it is built on every remote call and every local error.
    """

    flag_key: str
    value: T
    variant: str | None = None
    reason: Reason = Reason.ERROR
    error_code: ErrorCode | None = None
    error_message: str = ""
    flag_version: int = 0
    config_version: int = 0
    flag_metadata: Mapping[str, Any] = EMPTY_METADATA

    @property
    def is_error(self) -> bool:
        return self.error_code is not None


def failed(
    key: str, default: T, code: ErrorCode, message: str, config_version: int = 0
) -> EvaluationDetails[T]:
    """The caller's default, with the reason ERROR and why."""
    return EvaluationDetails(key, default, None, Reason.ERROR, code, message, 0, config_version)


# -- from the engine (local mode) ---------------------------------------------------------------

_ERRORS = {EngineErrorCode(c.value): c for c in ErrorCode if c.value in EngineErrorCode.__members__}


def from_resolution(
    key: str, default: T, resolution: Resolution, flag_version: int, config_version: int
) -> EvaluationDetails[T]:
    value = resolution.value  # object values are frozen when flag data arrives (local.py)
    code = resolution.error_code
    if value is None:
        value = default
    return EvaluationDetails(
        key,
        value,
        resolution.variant,
        resolution.reason,
        None if code is None else _ERRORS[code],
        resolution.error_message,
        flag_version,
        config_version,
        resolution.flag_metadata or EMPTY_METADATA,  # the engine's read-only mapping
    )


# -- from the wire (remote mode) ----------------------------------------------------------------

_PB_REASONS = {evaluation_pb2.Reason.Value(f"REASON_{r.value}"): r for r in Reason}
_PB_ERRORS = {
    evaluation_pb2.ErrorCode.Value(f"ERROR_CODE_{c.value}"): c
    for c in ErrorCode
    if f"ERROR_CODE_{c.value}" in evaluation_pb2.ErrorCode.DESCRIPTOR.values_by_name
}


def from_response(key: str, default: T, msg: evaluation_pb2.EvaluateResponse) -> EvaluationDetails[T]:
    kind = msg.WhichOneof("value")
    value: Any
    if kind is None:
        value = default
    elif kind == "object_value":
        value = freeze(value_to_python(msg.object_value))  # read-only, as in local mode
    else:
        value = getattr(msg, kind)
    reason = _PB_REASONS.get(msg.reason)
    code = _PB_ERRORS.get(msg.error_code) if msg.error_code else None
    message = msg.error_message
    if reason is None:  # a newer server with a reason this client does not know
        reason, code = Reason.ERROR, ErrorCode.GENERAL
        message = message or f"unknown reason {msg.reason} from the server"
    if code is not None or reason in (Reason.ERROR, Reason.DISABLED):
        value = default
    return EvaluationDetails(
        key,
        value,
        msg.variant or None,
        reason,
        code,
        message,
        msg.flag_version,
        msg.config_version,
        MappingProxyType(struct_to_dict(msg.metadata)) if msg.HasField("metadata") else EMPTY_METADATA,
    )


# What a failed call means for the caller.  Credentials refused will not fix themselves on
# retry: PROVIDER_FATAL (OpenFeature's "do not expect this to recover").  A refused request is
# almost always the context (size or depth limits).  Everything else is transient: GENERAL.
_STATUS_ERRORS = {
    grpc.StatusCode.UNAUTHENTICATED: ErrorCode.PROVIDER_FATAL,
    grpc.StatusCode.PERMISSION_DENIED: ErrorCode.PROVIDER_FATAL,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorCode.INVALID_CONTEXT,
}


def from_rpc_error(key: str, default: T, error: grpc.RpcError, deadline: float) -> EvaluationDetails[T]:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"DEADLINE_EXCEEDED: no answer within {deadline * 1000:.0f} ms"
    else:
        message = f"{name}: {details or 'the call failed'}"
    return failed(key, default, _STATUS_ERRORS.get(code, ErrorCode.GENERAL), message)  # type: ignore[arg-type]
