"""The lazily decoded evaluation context: same values, same limits, only what the rules read.

Expected values are written here as plain JSON (protobuf Struct carries numbers as doubles and
vexil reads integral ones as int, as flagd does); requests are built with protobuf itself.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from tests.support.contexts import nested_struct
from tests.support.flags import flag_model
from vexil.engine import Reason, compile_flag, evaluate
from vexil.errors import InvalidArgument
from vexil.v1 import evaluation_pb2
from vexil.wire import struct_to_dict
from vexil.wire_context import (
    BULK_DICT_FIELDS,
    COUNTED_BYTES,
    LIST_WRAPPERS,
    STRUCT_WRAPPERS,
    ContextView,
    Decoded,
    for_bulk,
    padded_bytes,
    parse_context,
    request_decoder,
    split_field,
)

CONTEXTS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    # (what the caller sends, what a rule reads)
    ({}, {}),
    ({"n": 5.0, "x": 2.5, "big": 1e300}, {"n": 5, "x": 2.5, "big": 1e300}),
    ({"s": "DE", "t": True, "f": False, "z": None}, {"s": "DE", "t": True, "f": False, "z": None}),
    ({"o": {"a": {"b": 1.0}}, "l": [1.0, "a", [], {}]}, {"o": {"a": {"b": 1}}, "l": [1, "a", [], {}]}),
    ({"targetingKey": "user-1", "": "empty key"}, {"targetingKey": "user-1", "": "empty key"}),
    # int64's ends (README, JSON values: integral and within int64 reads back as an integer)
    (
        {"lo": -(2.0**63), "hi": 2.0**63, "below": -(2.0**64)},
        {"lo": -(2**63), "hi": 2.0**63, "below": -(2.0**64)},
    ),
]


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


@pytest.mark.parametrize(("sent", "read"), CONTEXTS)
def test_view_reads_what_the_caller_sent(sent: dict[str, Any], read: dict[str, Any]) -> None:
    view = ContextView(parse_context(struct(sent).SerializeToString()))
    assert dict(view) == read
    assert len(view) == len(read) and set(view) == set(read)
    for key, value in read.items():
        assert key in view and view[key] == value and view.get(key) == value
        assert type(view[key]) is type(value)
    assert view.get("absent") is None and view.get("absent", 7) == 7 and "absent" not in view
    assert view.get(1) is None and 1 not in view  # a rule may look up a non-string key
    with pytest.raises(KeyError):
        view["absent"]


@pytest.mark.parametrize(("sent", "read"), CONTEXTS)
def test_a_bulk_evaluation_reads_a_small_context_as_a_dict(
    sent: dict[str, Any], read: dict[str, Any]
) -> None:
    plain = for_bulk(ContextView(parse_context(struct(sent).SerializeToString())))
    assert plain.__class__ is dict and plain == read
    assert all(type(plain[key]) is type(value) for key, value in read.items())


def test_a_bulk_evaluation_keeps_a_wide_context_a_view() -> None:
    wide = {f"attr{i:04d}": i for i in range(BULK_DICT_FIELDS + 1)}
    view = ContextView(parse_context(struct(wide).SerializeToString()))
    assert for_bulk(view) is view and view.converted == 0
    assert for_bulk(wide) is wide  # a context already plain is left as it is


def test_a_rule_reading_one_attribute_converts_one() -> None:
    wide = {f"attr{i:04d}": f"v{i:010d}" for i in range(2000)} | {"country": "DE"}
    view = ContextView(parse_context(struct(wide).SerializeToString()))
    rule = {"if": [{"==": [{"var": "country"}, "DE"]}, "on", "off"]}
    compiled = compile_flag(flag_model("f", targeting=rule), {})
    resolution = evaluate(compiled, view)
    assert (resolution.value, resolution.reason) == (True, Reason.TARGETING_MATCH)
    assert view.converted == 1
    # A rule reading the whole context still sees all of it.
    whole = compile_flag(flag_model("g", targeting={"if": [{"var": ""}, "on", "off"]}), {})
    assert evaluate(whole, view).value is True
    assert view.converted == len(wide)


def nested(levels: list[str]) -> dict[str, Any]:
    """A context whose attribute `a` nests objects ("s") and lists ("l") in the given order."""
    value: Any = "leaf"
    for kind in reversed(levels):
        value = {"k": value} if kind == "s" else [value]
    return {"a": value}


def encoded_nested(levels: list[str], filler: str = "") -> bytes:
    """Built with protobuf messages, not `update`, which refuses deep nesting itself; `filler`
    (when given) is a flat attribute `b` beside `a`."""
    top = nested_struct(levels, attribute="a", key="k", leaf=struct_pb2.Value(string_value="leaf"))
    if filler:
        top.fields["b"].string_value = filler
    return top.SerializeToString()


def test_depth_limit_holds_for_every_mix_of_objects_and_lists() -> None:
    """Whatever the mix, a context is accepted exactly when converting it whole (what every call
    did before) accepts it, whether or not a rule reads the deep attribute, and whether it is
    small or large enough to skip counting its nesting bytes (`COUNTED_BYTES`)."""
    rng = random.Random(20261206)
    mixes = [["s"] * n for n in range(20, 40)] + [["l"] * n for n in range(20, 52)]
    mixes += [[rng.choice("sl") for _ in range(rng.randint(20, 50))] for _ in range(400)]
    accepted = refused = 0
    for levels, filler in itertools.product(mixes, ("", "x" * (COUNTED_BYTES + 1))):
        raw = encoded_nested(levels, filler)
        try:
            reference = struct_pb2.Struct.FromString(raw)
            struct_to_dict(reference, field="context")
        except (InvalidArgument, DecodeError):
            within = False
        else:
            within = True
        if within:
            accepted += 1
            assert len(ContextView(parse_context(raw))) == 1 + bool(filler), levels
        else:
            refused += 1
            with pytest.raises((InvalidArgument, DecodeError)) as exc:
                parse_context(raw)
            if isinstance(exc.value, InvalidArgument):
                assert "32 levels" in exc.value.message
    assert accepted > 50 and refused > 50  # the mixes straddle the limit


@pytest.mark.parametrize("size", [0, 1, 100, 127, 128, 16_000, 16_383, 16_384, 60_000])
def test_padding_wraps_a_context_of_any_size(size: int) -> None:
    """The padded bytes parse (the fast path; a wrong length would send every context to the
    slow exact check) and hold the very context sent, `PADDING` message levels down."""
    sent = struct({"s": "x" * size}) if size else struct({})
    outer = struct_pb2.Struct.FromString(padded_bytes(sent.SerializeToString()))
    inner = outer
    for _ in range(STRUCT_WRAPPERS):
        assert list(inner.fields) == [""]
        inner = inner.fields[""].struct_value
    for _ in range(LIST_WRAPPERS):
        assert len(inner.fields[""].list_value.values) == 1
        inner = inner.fields[""].list_value.values[0].struct_value
    assert inner == sent


def test_size_limit_is_the_encoded_context() -> None:
    raw = struct({"blob": "z" * (64 * 1024)}).SerializeToString()
    with pytest.raises(InvalidArgument) as exc:
        parse_context(raw)
    assert exc.value.field == "context" and f"{len(raw)} bytes" in exc.value.message


def requests() -> list[bytes]:
    ctx = struct({"country": "DE", "n": 3.0})
    whole = evaluation_pb2.EvaluateRequest(flag_key="f", context=ctx, environment="e", value_type=2)
    twice = (
        evaluation_pb2.EvaluateRequest(context=struct({"a": 1.0})).SerializeToString()
        + evaluation_pb2.EvaluateRequest(flag_key="f", context=struct({"b": 2.0})).SerializeToString()
    )
    unknown = whole.SerializeToString() + b"\xa8\x06\x01" + b"\xb2\x06\x02hi"  # fields 101, 102
    return [
        whole.SerializeToString(),
        evaluation_pb2.EvaluateRequest(flag_key="f").SerializeToString(),
        evaluation_pb2.EvaluateRequest(flag_key="f", context=struct_pb2.Struct()).SerializeToString(),
        twice,  # protobuf merges a field sent twice: the decoder must too
        unknown,
        b"",
        # Past the size a request is parsed whole at: the context is split off and parsed alone.
        evaluation_pb2.EvaluateRequest(
            flag_key="f", context=struct({"s": "x" * COUNTED_BYTES})
        ).SerializeToString(),
    ]


@pytest.mark.parametrize("data", requests())
def test_decoder_agrees_with_protobuf(data: bytes) -> None:
    decode = request_decoder(evaluation_pb2.EvaluateRequest, 2)
    got = decode(data)
    assert isinstance(got, Decoded) and got.problem is None
    want = evaluation_pb2.EvaluateRequest.FromString(data)
    message = got.message
    assert (message.flag_key, message.environment, message.value_type) == (
        want.flag_key,
        want.environment,
        want.value_type,
    )
    assert got.flag_key == want.flag_key
    # The reference: converting the whole context, as every call did before.
    assert dict(got.context) == (struct_to_dict(want.context) if want.HasField("context") else {})


def test_split_field_leaves_the_rest_as_it_was() -> None:
    data = evaluation_pb2.EvaluateRequest(flag_key="f", context=struct({"a": "b"}), environment="e")
    encoded = data.SerializeToString()
    rest, raw = split_field(encoded, 2)
    assert raw == data.context.SerializeToString()
    assert evaluation_pb2.EvaluateRequest.FromString(rest) == evaluation_pb2.EvaluateRequest(
        flag_key="f", environment="e"
    )
    assert split_field(b"\x12\x05ab", 2) is None  # truncated: decoded as a whole (and refused)
    # The scan is bounded: a context after many other fields is left to protobuf.
    many = evaluation_pb2.EvaluateAllRequest(flag_keys=["k"] * 300_000).SerializeToString()
    late = many + evaluation_pb2.EvaluateAllRequest(context=struct({"a": "b"})).SerializeToString()
    assert split_field(late, 1) is None
    decoded = request_decoder(evaluation_pb2.EvaluateAllRequest, 1)(late)
    assert dict(decoded.context) == {"a": "b"} and len(decoded.message.flag_keys) == 300_000
    assert split_field(b"\x0b", 2) is None  # a group: not a plain run of fields


def test_garbage_is_still_refused_by_protobuf() -> None:
    decode = request_decoder(evaluation_pb2.EvaluateRequest, 2)
    with pytest.raises(DecodeError):
        decode(b"\xff\xfe not a protobuf \x00\x01")
