"""The evaluation context of a request, decoded only as far as the rules read it.

A caller may send a 50 KB context of 2,000 attributes to a rule that reads one.  Converting every
attribute to Python on every call made such a call five times as expensive as one with a single
attribute, so the context stays a protobuf `Struct` and `ContextView` converts an attribute the
first time a rule reads it (once per request: EvaluateAll's rules share the view).

The request's limits still hold for the whole context, not only for what is read:
- size: the context's encoded length, checked before it is parsed at all;
- depth: a context nested deeper than `MAX_CONTEXT_DEPTH` is refused even if no rule reads it.
  Walking every attribute to measure depth would cost what the laziness saves.  A context with
  fewer bytes that could open a nested level than the limit is parsed as it is; any other is
  parsed under `PADDING` extra levels of nesting: protobuf's own parser refuses anything nested
  past its fixed limit, and with the padding that limit falls below `MAX_CONTEXT_DEPTH` whatever
  mix of objects and lists the context nests.  Only a context the padded parse refuses (deeply
  nested, or not a protobuf at all) is parsed plainly and measured exactly, in Python.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from vexil.errors import InvalidArgument
from vexil.wire import MAX_CONTEXT_BYTES, struct_to_dict, value_to_python

FIELD = "context"


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint encoding of `n` (a length or a varint field's value)."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _wrap_in_struct(inner_len: int) -> bytes:
    """Prefix making a Struct of bytes of `inner_len` into `Struct{fields{"": {struct_value: .}}}`
    (3 message levels: the map entry, the Value, the Struct)."""
    value = b"\x2a" + varint(inner_len)  # Value.struct_value
    entry = b"\x12" + varint(len(value) + inner_len) + value  # map entry: value (empty key omitted)
    return b"\x0a" + varint(len(entry) + inner_len) + entry  # Struct.fields


def _wrap_in_list(inner_len: int) -> bytes:
    """Prefix making a Struct of bytes of `inner_len` into
    `Struct{fields{"": {list_value: [{struct_value: .}]}}}` (5 message levels)."""
    value = b"\x2a" + varint(inner_len)  # Value.struct_value
    items = b"\x0a" + varint(len(value) + inner_len) + value  # ListValue.values
    listed = b"\x32" + varint(len(items) + inner_len) + items  # Value.list_value
    entry = b"\x12" + varint(len(listed) + inner_len) + listed  # map entry: value
    return b"\x0a" + varint(len(entry) + inner_len) + entry  # Struct.fields


STRUCT_WRAPPERS = 8
LIST_WRAPPERS = 2
PADDING = 3 * STRUCT_WRAPPERS + 5 * LIST_WRAPPERS
"""Message levels added in front of a context: each level of a context costs protobuf 3 levels
for an object and 2 for a list, so this many more put its fixed limit (100) at 32 lists or 22
objects deep, never past `MAX_CONTEXT_DEPTH` whatever the mix (checked against the exact check
by `tests/unit/test_wire_context.py`)."""


FEW_NESTING_TAGS = 32
"""Each level of nesting in a context is a Value holding an object (tag byte 0x2a) or a list
(0x32): a context holding fewer of those bytes (counted at C speed, strings included) than the
limit cannot be nested past it, and is parsed as it is, without the padding."""

COUNTED_BYTES = 2048
"""Only a context up to this size is counted first (a microsecond or two).  A larger one is
padded at once: counting 50 KB costs about 30 us, more than the padding it could save, and a
context that large nearly always holds those bytes in its strings ('*' is 0x2a, '2' is 0x32)."""


def _shallow(data: bytes) -> bool:
    """Bytes too few and too flat for a context in them to break a limit: at most
    `COUNTED_BYTES`, with fewer bytes that could open a nested level than `FEW_NESTING_TAGS`.
    A context, or a whole request, this small needs neither the padding nor the split."""
    return len(data) <= COUNTED_BYTES and data.count(b"\x2a") + data.count(b"\x32") < FEW_NESTING_TAGS


@functools.lru_cache(maxsize=256)
def _padding(size: int) -> bytes:
    """The bytes that go in front of a Struct of `size` bytes to wrap it `PADDING` levels deep
    (they depend on the size alone; callers sending contexts of the same size share them)."""
    prefixes = []
    for _ in range(LIST_WRAPPERS):
        prefix = _wrap_in_list(size)
        prefixes.append(prefix)
        size += len(prefix)
    for _ in range(STRUCT_WRAPPERS):
        prefix = _wrap_in_struct(size)
        prefixes.append(prefix)
        size += len(prefix)
    return b"".join(reversed(prefixes))


def padded_bytes(raw: bytes) -> bytes:
    """`raw` (an encoded Struct) inside `PADDING` levels of wrapping lists and Structs (copied
    once: wrapping level by level copied a 50 KB context ten times)."""
    return _padding(len(raw)) + raw


def _unwrap(outer: struct_pb2.Struct) -> struct_pb2.Struct:
    struct = outer
    for _ in range(STRUCT_WRAPPERS):
        struct = struct.fields[""].struct_value
    for _ in range(LIST_WRAPPERS):
        struct = struct.fields[""].list_value.values[0].struct_value
    return struct


def parse_context(raw: bytes) -> struct_pb2.Struct:
    """The context Struct encoded in `raw`, checked against the size and depth limits without
    converting it (InvalidArgument naming `context`; DecodeError when it is not a Struct)."""
    if len(raw) > MAX_CONTEXT_BYTES:
        raise InvalidArgument(f"{len(raw)} bytes; the limit is {MAX_CONTEXT_BYTES} bytes", FIELD)
    if _shallow(raw):
        return struct_pb2.Struct.FromString(raw)
    try:
        return _unwrap(struct_pb2.Struct.FromString(padded_bytes(raw)))
    except DecodeError:
        pass
    struct = struct_pb2.Struct.FromString(raw)  # a DecodeError here: not a context at all
    struct_to_dict(struct, field=FIELD)  # deeply nested: measured exactly (raises past the limit)
    return struct


class ContextView(Mapping[str, Any]):
    """A read-only mapping over a context Struct that converts each attribute on first read.

    Values are exactly what `wire.struct_to_dict` gives (integral numbers as int, nested objects
    as dicts); the depth limit was checked when the Struct was parsed (`parse_context`)."""

    __slots__ = ("_fields", "_seen")

    def __init__(self, struct: struct_pb2.Struct) -> None:
        self._fields = struct.fields
        self._seen: dict[str, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        seen = self._seen
        if key in seen:
            return seen[key]
        value = self._fields.get(key) if key.__class__ is str else None
        if value is None:
            return default
        converted = seen[key] = value_to_python(value, 0, FIELD)
        return converted

    def __getitem__(self, key: str) -> Any:
        if key.__class__ is not str or key not in self._fields:
            raise KeyError(key)
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        return key.__class__ is str and key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def as_dict(self) -> dict[str, Any]:
        """Every attribute converted (each read once, as `get` reads it)."""
        return {key: self.get(key) for key in self._fields}

    @property
    def converted(self) -> int:
        """How many attributes have been converted so far (what the rules read)."""
        return len(self._seen)


BULK_DICT_FIELDS = 32
"""A bulk evaluation converts a context of at most this many attributes whole: its many rules read
most of a small context, and the engine reads a dict faster than a view (measured: a 8-attribute
context over 60 targeting rules, 120 us through the view, 88 us through a dict converted in 11 us).
A wider context stays a view, converted only as far as the rules read it."""


def for_bulk(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """`context` as a bulk evaluation (every flag's rule) reads it best (see `BULK_DICT_FIELDS`)."""
    if context.__class__ is ContextView and len(context) <= BULK_DICT_FIELDS:
        return context.as_dict()  # type: ignore[attr-defined]
    return context


# -- requests ----------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]  # IndexError past the end: the caller falls back
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


SCAN_FIELDS = 16
"""Fields read in Python looking for the context before decoding the request as a whole instead:
a request may repeat a field 300,000 times, and the scan must not become the cost."""


def split_field(data: bytes, number: int) -> tuple[bytes, bytes | None] | None:
    """`data` (an encoded request) without the first occurrence of its length-delimited field
    `number`, and that field's payload (None when the request has no such field).  None when the
    field is not among the first `SCAN_FIELDS` or the bytes are not a plain run of fields: the
    caller then decodes the request as a whole.  A second occurrence of the field (protobuf
    merges the two) is left in the rest, where the caller finds it."""
    pos, end = 0, len(data)
    try:
        for _ in range(SCAN_FIELDS):
            if pos >= end:
                return (data, None) if pos == end else None
            start = pos
            tag, pos = _read_varint(data, pos)
            wire = tag & 7
            if wire == 0:
                _, pos = _read_varint(data, pos)
            elif wire == 2:
                size, pos = _read_varint(data, pos)
                if tag >> 3 == number:
                    stop = pos + size
                    if stop > end:
                        return None
                    return data[:start] + data[stop:], data[pos:stop]
                pos += size
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return None
    except (IndexError, ValueError):
        return None
    return None


class Decoded:
    """A request whose context was split off and parsed but not converted (`ContextView`).

    `problem` is the context's limit error, raised by `checked_context`, which the handler calls
    where it checks the context (after the flag key, type and environment, as for any request)."""

    __slots__ = ("context", "flag_key", "message", "problem")

    def __init__(self, message: Any, context: Mapping[str, Any], problem: InvalidArgument | None) -> None:
        self.message = message
        self.context = context
        self.problem = problem
        self.flag_key: str = getattr(message, "flag_key", "")
        """For the metrics, which read the flag key off the request."""

    def checked_context(self) -> Mapping[str, Any]:
        """The context, or its limit error raised."""
        if self.problem is not None:
            raise self.problem
        return self.context


_EMPTY: Mapping[str, Any] = {}


def decoded(message: Any, raw: bytes | None) -> Decoded:
    """`message` (without its context) with the context encoded in `raw` (None: none sent)."""
    if raw is None:
        return Decoded(message, _EMPTY, None)
    try:
        return Decoded(message, ContextView(parse_context(raw)), None)
    except InvalidArgument as problem:
        return Decoded(message, _EMPTY, problem)


def from_message(message: Any) -> Decoded:
    """A request decoded as a whole (unusual bytes, or a handler called directly)."""
    if not message.HasField("context"):
        return decoded(message, None)
    return decoded(message, message.context.SerializeToString())


def as_decoded(request: Any) -> Decoded:
    """A handler's request as `request_decoder` hands it over, also when the handler is called
    directly with a message."""
    return request if request.__class__ is Decoded else from_message(request)


def request_decoder(message_type: Any, context_field: int) -> Any:
    """A gRPC request deserializer for a request type with a `context` Struct field: the context
    bytes are parsed once, as a Struct under the depth check, and never converted as a whole."""
    parse = message_type.FromString

    def decode(data: bytes) -> Decoded:
        if _shallow(data):  # the common small request: parsed whole, in one call
            message = parse(data)
            if not message.HasField("context"):
                return Decoded(message, _EMPTY, None)
            return Decoded(message, ContextView(message.context), None)
        split = split_field(data, context_field)
        if split is not None:
            rest, raw = split
            message = parse(rest)
            if not message.HasField("context"):  # else the context was sent twice: merge it
                return decoded(message, raw)
        return from_message(parse(data))

    return decode
