"""Conversions between vexil.v1 protobuf messages and the domain model.

protobuf's Struct carries every number as a double; JSONLogic and flagd follow JavaScript, where
`5` and `5.0` are the same number, so integral doubles become `int` on the way in.  That keeps
`cat`, fractional bucketing (CBOR of an int) and integer variants identical to flagd.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from vexil.engine import ErrorCode, Reason, Resolution
from vexil.errors import InvalidArgument
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision, FlagState
from vexil.v1 import evaluation_pb2, flag_pb2

MAX_CONTEXT_DEPTH = 32
MAX_CONTEXT_BYTES = 64 * 1024

_KIND_TO_PB = {kind: flag_pb2.ChangeKind.Value(f"CHANGE_KIND_{kind.value}") for kind in ChangeKind}
_REASON_TO_PB = {reason: evaluation_pb2.Reason.Value(f"REASON_{reason.value}") for reason in Reason}
_ERROR_TO_PB = {code: evaluation_pb2.ErrorCode.Value(f"ERROR_CODE_{code.value}") for code in ErrorCode}


# -- JSON values -------------------------------------------------------------------------------


def value_to_python(value: struct_pb2.Value, depth: int = 0, field: str = "", strict: bool = False) -> Any:
    """`value` as plain JSON.  `strict` (definitions written by a caller) refuses a Value with no
    kind, which older clients sent for an empty list: stored, it would silently become null."""
    if depth > MAX_CONTEXT_DEPTH:
        raise InvalidArgument(f"nested deeper than {MAX_CONTEXT_DEPTH} levels", field)
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number) and number.is_integer() and -(2**63) <= number < 2**63:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value, depth + 1, field, strict)
    if kind == "list_value":
        return [value_to_python(v, depth + 1, field, strict) for v in value.list_value.values]
    if kind is None and strict:
        raise InvalidArgument(
            "a JSON value with no kind set (an empty list sent without marking it a list?): "
            "send null explicitly, or upgrade the client",
            field,
        )
    return None


def struct_to_dict(
    struct: struct_pb2.Struct, depth: int = 0, field: str = "", strict: bool = False
) -> dict[str, Any]:
    if depth > MAX_CONTEXT_DEPTH:
        raise InvalidArgument(f"nested deeper than {MAX_CONTEXT_DEPTH} levels", field)
    return {k: value_to_python(v, depth, field, strict) for k, v in struct.fields.items()}


def python_to_value(obj: Any, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    value = out if out is not None else struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int | float):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, Mapping):
        dict_to_struct(obj, value.struct_value)
    elif isinstance(obj, list | tuple):
        # Mark the kind before adding items: an empty list would otherwise leave the Value with
        # no kind at all, which readers take as null (grpcurl refuses it as "nil Value").
        value.list_value.SetInParent()
        values = value.list_value.values
        for item in obj:
            python_to_value(item, values.add())
    else:
        value.string_value = str(obj)
    return value


def dict_to_struct(obj: Mapping[str, Any], out: struct_pb2.Struct | None = None) -> struct_pb2.Struct:
    struct = out if out is not None else struct_pb2.Struct()
    struct.Clear()
    struct.SetInParent()  # an empty object stays an object (not an unset Value) inside a Value
    for key, item in obj.items():
        python_to_value(item, struct.fields[str(key)])
    return struct


# -- time --------------------------------------------------------------------------------------


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    if seconds:
        ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def seconds(ts: Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


# -- model messages ----------------------------------------------------------------------------


_WRITABLE_STATES = frozenset(flag_pb2.FlagState.values())
"""Every state a write may name (an unknown number is refused, not read as ENABLED)."""


def flag_from_pb(msg: flag_pb2.Flag, *, strict: bool = False) -> Flag:
    """The flag a message describes; `strict` for definitions a caller writes (see value_to_python)."""
    targeting = (
        struct_to_dict(msg.targeting, field="flag.targeting", strict=strict)
        if msg.HasField("targeting")
        else None
    )
    if strict and msg.state not in _WRITABLE_STATES:
        raise InvalidArgument(
            f"unknown state {msg.state}; use FLAG_STATE_ENABLED or FLAG_STATE_DISABLED, or leave it out",
            "flag.state",
        )
    return Flag(
        key=msg.key,
        environment=msg.environment,
        variants={
            k: value_to_python(v, field=f"flag.variants.{k}", strict=strict) for k, v in msg.variants.items()
        },
        default_variant=msg.default_variant if msg.HasField("default_variant") else None,
        state=FlagState.DISABLED if msg.state == flag_pb2.FLAG_STATE_DISABLED else FlagState.ENABLED,
        targeting=targeting or None,
        description=msg.description,
        owner=msg.owner,
        tags=tuple(msg.tags),
        metadata=struct_to_dict(msg.metadata, field="flag.metadata", strict=strict),
        # Output-only on writes (stores assign them); carried for clients reading Watch events.
        version=msg.version,
        created_at=seconds(msg.created_at),
        updated_at=seconds(msg.updated_at),
        updated_by=msg.updated_by,
        managed_by=msg.managed_by,
        problem=msg.problem,
    )


def flag_to_pb(flag: Flag, out: flag_pb2.Flag | None = None) -> flag_pb2.Flag:
    msg = out if out is not None else flag_pb2.Flag()
    msg.key = flag.key
    msg.environment = flag.environment
    msg.state = flag_pb2.FLAG_STATE_ENABLED if flag.enabled else flag_pb2.FLAG_STATE_DISABLED
    for name, value in flag.variants.items():
        python_to_value(value, msg.variants[name])
    if flag.default_variant is not None:
        msg.default_variant = flag.default_variant
    if flag.targeting and isinstance(flag.targeting, Mapping):
        dict_to_struct(flag.targeting, msg.targeting)
    msg.description = flag.description
    msg.owner = flag.owner
    msg.tags.extend(flag.tags)
    if flag.metadata:
        dict_to_struct(flag.metadata, msg.metadata)
    msg.version = flag.version
    msg.created_at.CopyFrom(timestamp(flag.created_at))
    msg.updated_at.CopyFrom(timestamp(flag.updated_at))
    msg.updated_by = flag.updated_by
    msg.managed_by = flag.managed_by
    msg.problem = flag.problem
    return msg


def environment_to_pb(env: Environment, out: flag_pb2.Environment | None = None) -> flag_pb2.Environment:
    msg = out if out is not None else flag_pb2.Environment()
    msg.name = env.name
    if env.evaluators:
        dict_to_struct(env.evaluators, msg.evaluators)
    msg.kill_switch = env.kill_switch
    msg.kill_reason = env.kill_reason
    if env.metadata:
        dict_to_struct(env.metadata, msg.metadata)
    msg.config_version = env.config_version
    msg.updated_at.CopyFrom(timestamp(env.updated_at))
    msg.updated_by = env.updated_by
    return msg


def change_to_pb(change: Change, out: flag_pb2.Change | None = None) -> flag_pb2.Change:
    msg = out if out is not None else flag_pb2.Change()
    msg.environment = change.environment_name
    msg.config_version = change.config_version
    msg.kind = _KIND_TO_PB[change.kind]
    msg.actor = change.actor
    msg.timestamp.CopyFrom(timestamp(change.timestamp))
    msg.flag_key = change.flag_key
    msg.before_version = change.before_version
    msg.after_version = change.after_version
    msg.reason = change.reason
    return msg


def revision_to_pb(rev: FlagRevision) -> flag_pb2.FlagRevision:
    msg = flag_pb2.FlagRevision(
        kind=_KIND_TO_PB[rev.kind],
        actor=rev.actor,
        config_version=rev.config_version,
        reason=rev.reason,
        deleted=rev.deleted,
    )
    flag_to_pb(rev.flag, msg.flag)
    msg.timestamp.CopyFrom(timestamp(rev.timestamp))
    return msg


# -- resolutions -------------------------------------------------------------------------------


def resolution_to_pb(
    key: str,
    resolution: Resolution,
    flag_version: int,
    config_version: int,
    out: evaluation_pb2.EvaluateResponse | None = None,
) -> evaluation_pb2.EvaluateResponse:
    msg = out if out is not None else evaluation_pb2.EvaluateResponse()
    msg.flag_key = key
    value = resolution.value
    if value is not None:
        if value is True or value is False:
            msg.bool_value = value
        elif isinstance(value, str):
            msg.string_value = value
        elif isinstance(value, int):
            if -(2**63) <= value < 2**63:
                msg.int_value = value
            else:
                msg.double_value = float(value)
        elif isinstance(value, float):
            msg.double_value = value
        else:
            python_to_value(value, msg.object_value)
    if resolution.variant is not None:
        msg.variant = resolution.variant
    msg.reason = _REASON_TO_PB[resolution.reason]
    if resolution.error_code is not None:
        msg.error_code = _ERROR_TO_PB[resolution.error_code]
        msg.error_message = resolution.error_message
    msg.flag_version = flag_version
    msg.config_version = config_version
    if resolution.flag_metadata:
        dict_to_struct(resolution.flag_metadata, msg.metadata)
    return msg


def environment_from_pb(msg: flag_pb2.Environment) -> Environment:
    return Environment(
        name=msg.name,
        evaluators=struct_to_dict(msg.evaluators, field="environment.evaluators"),
        kill_switch=msg.kill_switch,
        kill_reason=msg.kill_reason,
        metadata=struct_to_dict(msg.metadata, field="environment.metadata"),
        config_version=msg.config_version,
        updated_at=seconds(msg.updated_at),
        updated_by=msg.updated_by,
    )
