"""The evaluation context of an OFREP request body, held to the same limits as a gRPC request.

JSON from HTTP and protobuf Structs from gRPC must reach the engine as the same Python values, so
integral numbers become `int` here too (`5.0` and `5` are one number in JSON and in flagd), an
integer beyond 2^53 is the double a Struct would carry (`9007199254740993` reads as
`9007199254740992`, as flagd reads it), and the
size limit is the protobuf requests' (`vexil.wire`).  What no other door lets in is refused here
too, by the check stored definitions get (`vexil.store.records.check_portable`): text that is not
Unicode (a lone surrogate, `"\\ud800"` in JSON), a number no double holds (`1e400`, which Python
reads as Infinity) and nesting past the depth limit, each named by its path (`context.user.name`).
Depth is counted as gRPC counts a context Struct (`wire.struct_to_dict`): the context itself is
level 0, so an attribute holding 32 nested objects or lists is within the limit and 33 is not.
"""

from __future__ import annotations

import json
import math
from typing import Any

from vexil.errors import InvalidArgument
from vexil.store.records import MAX_JSON_DEPTH, check_portable
from vexil.wire import MAX_CONTEXT_BYTES

CONTEXT_LEVEL = 0
"""The level `check_portable` counts the context object at: 0, as gRPC counts a context Struct
(a stored definition's JSON object field is level 1)."""


class InvalidContext(InvalidArgument):
    """The body is not `{"context": {...}}` within the limits (OFREP's INVALID_CONTEXT)."""


def _reject_constant(name: str) -> Any:
    raise InvalidContext(f"{name} is not a JSON number", "context")


EXACT_INTEGERS = 2**53
"""Integers up to this (either sign) are exact doubles, and so read as they are."""
MAX_NUMBER_DIGITS = 4000
"""Digits of the longest JSON integer read as a number (and then refused by its path, as no
double holds more than 309): Python refuses to read over 4,300 at all, with advice about
`sys.set_int_max_str_digits` for a message, so a longer one is refused as it is read."""


def _integer(text: str) -> int | float:
    """A JSON integer as every other door reads it: gRPC's Struct (and flagd, on every door)
    hold numbers as doubles, so one beyond 2^53 is the nearest double here too (then an int again
    when integral within int64, see `_normalized`), and a rule gives one answer on every door.
    One no double holds stays an int, for `check_portable` to refuse by its path."""
    digits = len(text.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise InvalidContext(
            f"a {digits}-digit number does not fit in a double (at most about 1.8e308), so no"
            " protobuf or JavaScript client could read it",
            "context",
        )
    value = int(text)
    if -EXACT_INTEGERS <= value <= EXACT_INTEGERS:
        return value
    try:
        return float(value)
    except OverflowError:
        return value


def parse_request(body: bytes) -> dict[str, Any]:
    """The context of an OFREP evaluation request (`{}` for an empty body or no `context`)."""
    if not body.strip():
        return {}
    if len(body) > MAX_CONTEXT_BYTES:
        raise InvalidContext(f"the request is {len(body)} bytes; the limit is {MAX_CONTEXT_BYTES}", "context")
    try:
        data = json.loads(body, parse_constant=_reject_constant, parse_int=_integer)
    except RecursionError:  # far past the limit: the decoder gives up before any check runs
        raise InvalidContext(f"nested deeper than {MAX_JSON_DEPTH} levels", "context") from None
    except ValueError as exc:
        if isinstance(exc, InvalidContext):
            raise
        raise InvalidContext(f"the request body is not valid JSON: {exc}", "context") from None
    if not isinstance(data, dict):
        raise InvalidContext('the request body is a JSON object: {"context": {...}}', "context")
    context = data.get("context")
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidContext(f"must be a JSON object, got {type(context).__name__}", "context")
    try:
        check_portable(context, "context", depth=CONTEXT_LEVEL)
    except InvalidArgument as exc:
        raise InvalidContext(exc.description, exc.field) from None
    return _normalized(context)


def _normalized(value: Any) -> Any:
    """`value` with integral numbers as int (its depth is checked already)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and -(2**63) <= value < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value
