"""Evaluation contexts as the server sees them, so local mode answers exactly as remote mode does.

A remote context travels as a protobuf Struct: every number becomes a double, the server turns
integral doubles back into ints, unknown types become strings and nesting is limited.  Rules
can tell the difference (`cat` prints 30 and 30.0 differently; `fractional` hashes the CBOR of
the value), so local mode puts a context through the same transformation before evaluating.
The common case (string, bool and small-int attributes) is detected in one pass and the
caller's dict is used as is: no copy on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

from vexil.wire import MAX_CONTEXT_DEPTH, dict_to_struct

Context = Mapping[str, Any]

EXACT = 2**53  # ints up to this survive the trip through a double unchanged
_INT64 = 2**63
_EMPTY: dict[str, Any] = {}


class ContextError(ValueError):
    """The context cannot be sent (the server would refuse it too)."""


def wire_context(context: Context | None) -> Mapping[str, Any]:
    """`context` as the server would see it after the Struct round trip (often `context` itself)."""
    if not context:
        return _EMPTY
    if context.__class__ is dict:
        for key, value in context.items():
            if key.__class__ is not str:
                break
            cls = value.__class__
            if cls is str or cls is bool or value is None:
                continue
            if cls is int and -EXACT <= value <= EXACT:
                continue
            break
        else:
            return context
    return _struct(context, 0)


def to_struct(context: Context | None) -> struct_pb2.Struct | None:
    """The request's Struct (None for an empty context: the field is then left unset)."""
    if not context:
        return None
    try:
        return dict_to_struct(context)
    except (OverflowError, ValueError, TypeError, RecursionError) as exc:
        raise ContextError(f"context cannot be encoded: {exc}") from None


def _struct(obj: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    if depth > MAX_CONTEXT_DEPTH:
        raise ContextError(f"context: nested deeper than {MAX_CONTEXT_DEPTH} levels")
    return {str(k): _value(v, depth) for k, v in obj.items()}


def _value(obj: Any, depth: int) -> Any:
    if depth > MAX_CONTEXT_DEPTH:
        raise ContextError(f"context: nested deeper than {MAX_CONTEXT_DEPTH} levels")
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | float):
        try:
            number = float(obj)
        except OverflowError:
            raise ContextError(f"context: {obj} does not fit in a double") from None
        if math.isfinite(number) and number.is_integer() and -_INT64 <= number < _INT64:
            return int(number)
        return number
    if isinstance(obj, Mapping):
        return _struct(obj, depth + 1)
    if isinstance(obj, list | tuple):
        return [_value(v, depth + 1) for v in obj]
    return str(obj)
