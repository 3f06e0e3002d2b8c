"""Evaluation contexts built as protobuf messages, for tests of how deep a context may nest."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import struct_pb2


def nested_struct(
    kinds: Iterable[str], *, attribute: str, key: str, leaf: struct_pb2.Value
) -> struct_pb2.Struct:
    """A context whose `attribute` nests lists ("l") and objects (any other letter, under `key`),
    outermost first, around `leaf`.  Built from messages: protobuf's own conversion of a dict
    refuses nesting this deep on the client, before a server could."""
    value = leaf
    for kind in reversed(list(kinds)):
        outer = struct_pb2.Value()
        if kind == "l":
            outer.list_value.values.add().CopyFrom(value)
        else:
            outer.struct_value.fields[key].CopyFrom(value)
        value = outer
    context = struct_pb2.Struct()
    context.fields[attribute].CopyFrom(value)
    return context
