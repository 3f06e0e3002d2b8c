"""Resolution rules: which reason, variant, value and error code each situation produces.

Each rule is asserted on vexil and, where the reference has the same notion, on the reference
too (`ReferenceFlag`), so a test documents flagd's behaviour rather than just ours.
"""

from __future__ import annotations

from functools import partial
from types import MappingProxyType
from typing import Any

import pytest

from tests.support.flags import flag_model
from tests.support.reference import NOW, ReferenceFlag, definition, outcome
from vexil.engine import (
    CompiledFlag,
    ErrorCode,
    Reason,
    Resolution,
    ValueType,
    compile_flag,
    evaluate,
    not_found,
)
from vexil.model import Flag, FlagState

COLORS = {"red": "#f00", "blue": "#00f"}


flag = partial(flag_model, key="color", variants=COLORS, default="red", environment="test")
"""The flag these tests vary: a static color flag serving `red` unless told otherwise."""


def resolve(
    f: Flag, context: dict[str, Any] | None = None, value_type: ValueType = ValueType.ANY, **kw: Any
) -> Resolution:
    return evaluate(compile_flag(f), {} if context is None else context, value_type, **kw)


def agrees_with_reference(f: Flag, context: dict[str, Any], value_type: ValueType) -> None:
    ref = ReferenceFlag(f.key, definition(f.variants, f.default_variant, f.targeting, str(f.state))).outcome(
        context, value_type
    )
    ours = outcome(evaluate(compile_flag(f, strict=False), context, value_type, now=NOW))
    assert ours == ref


# -- reasons ----------------------------------------------------------------------------------


def test_static_flag_serves_default_variant() -> None:
    r = resolve(flag(), value_type=ValueType.STRING)
    assert (r.value, r.variant, r.reason, r.error_code, r.error_message) == (
        "#f00",
        "red",
        Reason.STATIC,
        None,
        "",
    )
    agrees_with_reference(flag(), {}, ValueType.STRING)


@pytest.mark.parametrize("targeting", [None, {}])
def test_no_targeting_means_static(targeting: Any) -> None:
    assert resolve(flag(targeting=targeting)).reason is Reason.STATIC


def test_static_flag_without_default_variant_is_default_with_callers_value() -> None:
    r = resolve(flag(default=None), value_type=ValueType.STRING)
    assert (r.value, r.variant, r.reason, r.error_code) == (None, None, Reason.DEFAULT, None)
    agrees_with_reference(flag(default=None), {}, ValueType.STRING)


def test_empty_default_variant_means_none() -> None:
    assert resolve(flag(default="")).reason is Reason.DEFAULT


def test_targeting_match() -> None:
    f = flag(targeting={"if": [{"==": [{"var": "tier"}, "gold"]}, "blue", None]})
    r = resolve(f, {"tier": "gold"}, ValueType.STRING)
    assert (r.value, r.variant, r.reason) == ("#00f", "blue", Reason.TARGETING_MATCH)
    agrees_with_reference(f, {"tier": "gold"}, ValueType.STRING)


def test_rule_yielding_null_serves_default_variant_with_reason_default() -> None:
    f = flag(targeting={"if": [{"==": [{"var": "tier"}, "gold"]}, "blue", None]})
    r = resolve(f, {"tier": "silver"}, ValueType.STRING)
    assert (r.value, r.variant, r.reason) == ("#f00", "red", Reason.DEFAULT)
    agrees_with_reference(f, {"tier": "silver"}, ValueType.STRING)


def test_rule_yielding_null_without_default_variant_leaves_callers_default() -> None:
    f = flag(default=None, targeting={"if": [{"var": "beta"}, "blue"]})
    r = resolve(f, {})
    assert (r.value, r.variant, r.reason, r.error_code) == (None, None, Reason.DEFAULT, None)
    agrees_with_reference(f, {}, ValueType.STRING)


def test_rule_matching_the_default_variant_is_still_a_targeting_match() -> None:
    f = flag(targeting={"if": [True, "red"]})
    assert resolve(f).reason is Reason.TARGETING_MATCH
    agrees_with_reference(f, {}, ValueType.STRING)


@pytest.mark.parametrize("state", [FlagState.DISABLED, "DISABLED"])
def test_disabled_flag(state: Any) -> None:
    f = flag(targeting={"if": [True, "blue"]}, state=state)
    for value_type in ValueType:
        r = resolve(f, {}, value_type)
        assert (r.value, r.variant, r.reason, r.error_code) == (None, None, Reason.DISABLED, None)
    agrees_with_reference(
        flag(targeting={"if": [True, "blue"]}, state=FlagState.DISABLED), {}, ValueType.STRING
    )


def test_environment_kill_switch_resolves_disabled() -> None:
    for f in (flag(), flag(targeting={"if": [True, "blue"]}), flag(targeting={"in": 1})):
        compiled = compile_flag(f, strict=False)
        r = evaluate(compiled, {}, ValueType.STRING, environment_killed=True)
        assert (r.value, r.variant, r.reason, r.error_code) == (None, None, Reason.DISABLED, None)


@pytest.mark.parametrize(
    ("result", "variant", "value"),
    [(True, "true", "on!"), (False, "false", "off!")],
)
def test_boolean_rule_results_select_variants_true_and_false(result: bool, variant: str, value: str) -> None:
    f = flag(variants={"true": "on!", "false": "off!"}, default="false", targeting={"==": [{"var": "x"}, 1]})
    r = resolve(f, {"x": 1 if result else 2})
    assert (r.variant, r.value, r.reason) == (variant, value, Reason.TARGETING_MATCH)
    agrees_with_reference(f, {"x": 1 if result else 2}, ValueType.STRING)


def test_number_rule_results_select_variants_by_their_string_form() -> None:
    f = flag(variants={"1": "one", "2.5": "two and a half"}, default="1", targeting={"var": "n"})
    assert resolve(f, {"n": 1}).variant == "1"
    assert resolve(f, {"n": 2.5}).variant == "2.5"
    for n in (1, 2.5, 1.0):
        agrees_with_reference(f, {"n": n}, ValueType.STRING)


# -- errors -------------------------------------------------------------------------------------


def test_unknown_variant_is_general_error() -> None:
    f = flag(targeting={"var": "color"})
    r = resolve(f, {"color": "purple"}, ValueType.STRING)
    assert (r.value, r.variant, r.reason, r.error_code) == (None, None, Reason.ERROR, ErrorCode.GENERAL)
    assert "purple" in r.error_message
    agrees_with_reference(f, {"color": "purple"}, ValueType.STRING)


def test_failing_rule_is_general_error() -> None:
    f = flag(targeting={"if": [{"/": [1, {"var": "zero"}]}, "blue"]})
    r = resolve(f, {"zero": 0})
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.GENERAL)
    # What failed and where, in the rule's terms: no Python exception names.
    assert r.error_message == "flag 'color': division by zero in targeting at targeting.if[0]./"
    agrees_with_reference(f, {"zero": 0}, ValueType.STRING)


def test_unknown_operator_is_parse_error_when_compiled_leniently() -> None:
    f = flag(targeting={"if": [{"var": "x"}, {"regex": ["a", "b"]}, "red"]})
    compiled = compile_flag(f, strict=False)
    r = evaluate(compiled, {"x": True})
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert "regex" in r.error_message
    # Only when reached, as in the reference.
    assert evaluate(compiled, {"x": False}).variant == "red"
    agrees_with_reference(f, {"x": True}, ValueType.STRING)
    agrees_with_reference(f, {"x": False}, ValueType.STRING)


@pytest.mark.parametrize("targeting", ["rule", ["if"], 1, True])
def test_non_object_targeting_is_parse_error_when_compiled_leniently(targeting: Any) -> None:
    r = evaluate(compile_flag(flag(targeting=targeting), strict=False), {})
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.PARSE_ERROR)
    agrees_with_reference(flag(targeting=targeting), {}, ValueType.STRING)


def test_default_variant_missing_is_general_error_when_compiled_leniently() -> None:
    compiled = compile_flag(flag(default="purple"), strict=False)
    r = evaluate(compiled, {}, ValueType.STRING)
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.GENERAL)


@pytest.mark.parametrize(
    ("variants", "value_type"),
    [
        ({"a": "x"}, ValueType.BOOL),
        ({"a": True}, ValueType.STRING),
        ({"a": True}, ValueType.INT),
        ({"a": 1.5}, ValueType.INT),
        ({"a": "1"}, ValueType.INT),
        ({"a": "1.5"}, ValueType.FLOAT),
        ({"a": 1}, ValueType.OBJECT),
        ({"a": {"x": 1}}, ValueType.STRING),
        ({"a": 1}, ValueType.BOOL),
    ],
)
def test_type_mismatch(variants: dict[str, Any], value_type: ValueType) -> None:
    for targeting in (None, {"if": [True, "a"]}):
        f = flag(variants=variants, default="a", targeting=targeting)
        r = resolve(f, {}, value_type)
        assert (r.value, r.variant, r.reason, r.error_code) == (
            None,
            None,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
        )
        assert str(value_type).lower() in r.error_message
        agrees_with_reference(f, {}, value_type)


def test_type_is_not_checked_when_no_variant_is_served() -> None:
    f = flag(variants={"a": "x"}, default=None, targeting={"if": [{"var": "go"}, "a"]})
    assert resolve(f, {}, ValueType.BOOL).reason is Reason.DEFAULT
    assert resolve(flag(state=FlagState.DISABLED), {}, ValueType.BOOL).reason is Reason.DISABLED
    agrees_with_reference(f, {}, ValueType.BOOL)


def test_not_found() -> None:
    r = not_found("nope")
    assert (r.value, r.variant, r.reason, r.error_code) == (
        None,
        None,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    assert "nope" in r.error_message
    assert dict(r.flag_metadata) == {}


def test_unknown_value_type_is_general_error() -> None:
    for f in (flag(), flag(targeting={"if": [True, "blue"]}), flag(targeting={"var": "c"})):
        r = evaluate(compile_flag(f), {"c": "red"}, "NUMBER")  # type: ignore[arg-type]
        assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.GENERAL)
        assert "NUMBER" in r.error_message


def test_a_types_answers_are_built_when_first_asked_for_and_then_shared() -> None:
    compiled = compile_flag(flag(targeting={"if": [{"==": [{"var": "team"}, "blue"]}, "blue", None]}))
    assert not compiled.matches and not compiled.defaults  # built for no type yet
    first = evaluate(compiled, {"team": "blue"}, ValueType.STRING)
    assert (first.value, first.variant, first.reason) == ("#00f", "blue", Reason.TARGETING_MATCH)
    assert evaluate(compiled, {"team": "blue"}, ValueType.STRING) is first
    assert set(compiled.matches) == {ValueType.STRING}
    wrong = evaluate(compiled, {"team": "blue"}, ValueType.BOOL)
    assert (wrong.reason, wrong.error_code) == (Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert set(compiled.matches) == {ValueType.STRING, ValueType.BOOL}
    default = evaluate(compiled, {}, "STRING")  # type: ignore[arg-type]
    assert (default.value, default.variant, default.reason) == ("#f00", "red", Reason.DEFAULT)
    assert evaluate(compiled, {}, ValueType.STRING) is default
    assert set(compiled.defaults) == {ValueType.STRING}


def test_value_type_accepts_plain_strings() -> None:
    assert resolve(flag(), {}, "STRING").value == "#f00"  # type: ignore[arg-type]


# -- types and numbers -------------------------------------------------------------------------


def test_int_flag_stays_int() -> None:
    f = flag(variants={"small": 1, "big": 2**62}, default="big")
    r = resolve(f, {}, ValueType.INT)
    assert r.value == 2**62 and type(r.value) is int
    agrees_with_reference(f, {}, ValueType.INT)


def test_int_request_of_integral_float_variant_is_served_as_int() -> None:
    r = resolve(flag(variants={"a": 5.0}, default="a"), {}, ValueType.INT)
    assert r.value == 5 and type(r.value) is int and r.error_code is None


def test_float_request_of_int_variant_is_served_as_float() -> None:
    f = flag(variants={"a": 5}, default="a")
    r = resolve(f, {}, ValueType.FLOAT)
    assert r.value == 5.0 and type(r.value) is float
    agrees_with_reference(f, {}, ValueType.FLOAT)


def test_float_request_of_enormous_int_is_general_error() -> None:
    r = resolve(flag(variants={"a": 10**400}, default="a"), {}, ValueType.FLOAT)
    assert r.error_code is ErrorCode.GENERAL


def test_object_variants_may_be_arrays() -> None:
    f = flag(variants={"a": [1, 2], "b": {"x": 1}}, default="a")
    assert resolve(f, {}, ValueType.OBJECT).value == [1, 2]
    agrees_with_reference(f, {}, ValueType.OBJECT)


def test_any_returns_the_variant_value_unchecked() -> None:
    assert resolve(flag(variants={"a": 5.0}, default="a")).value == 5.0
    assert type(resolve(flag(variants={"a": 5.0}, default="a")).value) is float


@pytest.mark.parametrize(
    ("variants", "value_type"),
    [
        ({"on": True, "off": False}, ValueType.BOOL),
        ({"a": "x", "b": ""}, ValueType.STRING),
        ({"a": 1, "b": -2}, ValueType.INT),
        ({"a": 1, "b": 2.5}, ValueType.FLOAT),
        ({"a": 1.0}, ValueType.FLOAT),
        ({"a": {"x": 1}, "b": [1]}, ValueType.OBJECT),
    ],
)
def test_compiled_value_type(variants: dict[str, Any], value_type: ValueType) -> None:
    compiled = compile_flag(flag(variants=variants, default=None))
    assert isinstance(compiled, CompiledFlag)
    assert compiled.value_type is value_type
    assert compiled.key == "color"
    assert compiled.flag.variants == variants


def test_mixed_variants_have_type_any_when_compiled_leniently() -> None:
    compiled = compile_flag(flag(variants={"a": 1, "b": "x"}, default="a"), strict=False)
    assert compiled.value_type is ValueType.ANY


# -- metadata ----------------------------------------------------------------------------------


def test_flag_metadata_in_every_resolution() -> None:
    f = flag(metadata={"team": "growth", "ticket": 42}, targeting={"if": [{"var": "x"}, "blue", "nope"]})
    compiled = compile_flag(f, strict=False)
    for context in ({"x": True}, {"x": False}, {"x": 0}):
        assert dict(evaluate(compiled, context).flag_metadata) == {"team": "growth", "ticket": 42}
    assert dict(evaluate(compiled, {}, environment_killed=True).flag_metadata) == {
        "team": "growth",
        "ticket": 42,
    }


def test_flag_set_metadata_is_merged_under_the_flags() -> None:
    f = flag(metadata={"team": "growth"})
    compiled = compile_flag(f, flag_set_metadata={"team": "platform", "env": "prod"})
    assert dict(evaluate(compiled, {}).flag_metadata) == {"team": "growth", "env": "prod"}


def test_resolutions_are_immutable_and_shared() -> None:
    compiled = compile_flag(flag(metadata={"a": 1}))
    first, second = evaluate(compiled, {}), evaluate(compiled, {})
    assert first is second
    assert isinstance(first.flag_metadata, MappingProxyType)
    with pytest.raises(AttributeError):
        first.value = "x"  # type: ignore[misc]


# -- context -----------------------------------------------------------------------------------


def test_targeting_key_comes_from_the_context() -> None:
    f = flag(targeting={"if": [{"==": [{"var": "targetingKey"}, "user-1"]}, "blue", "red"]})
    assert resolve(f, {"targetingKey": "user-1"}).variant == "blue"
    assert resolve(f, {}).variant == "red"


def test_flagd_flag_key_and_timestamp() -> None:
    f = flag(
        key="launch",
        targeting={
            "if": [
                {
                    "and": [
                        {"==": [{"var": "$flagd.flagKey"}, "launch"]},
                        {">=": [{"var": "$flagd.timestamp"}, 1000]},
                    ]
                },
                "blue",
                "red",
            ]
        },
    )
    compiled = compile_flag(f)
    assert evaluate(compiled, {}, now=1000).variant == "blue"
    assert evaluate(compiled, {}, now=999).variant == "red"
    assert evaluate(compiled, {}).variant == "blue"  # the current time is well past 1000


def test_caller_cannot_override_flagd_properties() -> None:
    f = flag(key="launch", targeting={"if": [{"==": [{"var": "$flagd.flagKey"}, "launch"]}, "blue", "red"]})
    assert resolve(f, {"$flagd": {"flagKey": "other"}}).variant == "blue"
    f2 = flag(targeting={"if": [{"==": [{"var": "$flagd.timestamp"}, 7]}, "blue", "red"]})
    assert resolve(f2, {"$flagd": {"timestamp": 7}}, now=8).variant == "red"


def test_whole_context_includes_enrichment() -> None:
    f = flag(
        variants={"yes": 1, "no": 0},
        default="no",
        targeting={"if": [{"==": [{"var": [""]}, {"var": ""}]}, "yes", "no"]},
    )
    assert resolve(f, {"a": 1}).variant == "yes"  # the same (enriched) object both times
    agrees_with_reference(f, {"a": 1}, ValueType.INT)
    f2 = flag(
        variants={"yes": 1, "no": 0},
        default="no",
        targeting={
            "if": [
                {
                    "some": [
                        {"map": [[{"var": ""}], {"var": "$flagd.flagKey"}]},
                        {"==": [{"var": ""}, "color"]},
                    ]
                },
                "yes",
                "no",
            ]
        },
    )
    assert resolve(f2, {}).variant == "yes"  # the item is the enriched context itself
    agrees_with_reference(f2, {}, ValueType.INT)


@pytest.mark.parametrize("context", [None, {}, MappingProxyType({"country": "US"})])
def test_context_may_be_none_or_any_mapping(context: Any) -> None:
    f = flag(targeting={"if": [{"==": [{"var": "country"}, "US"]}, "blue", "red"]})
    r = evaluate(compile_flag(f), context, ValueType.STRING)
    assert r.error_code is None
    assert r.variant == ("blue" if context else "red")


def test_integral_floats_in_context_compare_like_ints() -> None:
    f = flag(
        targeting={
            "if": [{"and": [{"==": [{"var": "age"}, 18]}, {"in": [{"var": "n"}, [1, 2, 3]]}]}, "blue", "red"]
        }
    )
    assert resolve(f, {"age": 18.0, "n": 2.0}).variant == "blue"
    frac = flag(
        variants={"a": 1, "b": 2}, default="a", targeting={"fractional": [{"var": "id"}, ["a", 1], ["b", 1]]}
    )
    assert resolve(frac, {"id": 12345.0}).variant == resolve(frac, {"id": 12345}).variant


class Weird:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    def __hash__(self) -> int:
        raise RuntimeError("no")

    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    "context",
    [
        {"x": Weird()},
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": 10**5000},
        {"x": "\ud800"},
        {"x": b"bytes"},
        {"x": object()},
        {"x": {1: 2}},
        {"x": (1, 2)},
        [("x", 1)],
        "x",
        42,
    ],
)
def test_evaluate_never_raises(context: Any) -> None:
    rules = [
        {"if": [{"==": [{"var": "x"}, 1]}, "blue", "red"]},
        {"in": [{"var": "x"}, ["a", "b", "c", "d", "e"]]},
        {"var": "x"},
        {"fractional": [{"var": "x"}, ["red", 1], ["blue", 1]]},
        {"sem_ver": [{"var": "x"}, ">", "1.0.0"]},
        {"cat": [{"var": "x"}, 1]},
        {"substr": ["abc", {"var": "x"}]},
        {"<": [{"var": "x"}, 1, {"var": "x"}]},
        {"missing": [{"var": "x"}]},
        {"var": [{"var": "x"}]},
    ]
    for rule in rules:
        compiled = compile_flag(flag(targeting=rule), strict=False)
        for value_type in (*ValueType, "bogus", None, ["unhashable"]):
            r = evaluate(compiled, context, value_type)  # type: ignore[arg-type]
            assert isinstance(r, Resolution)


def test_evaluate_never_raises_on_garbage_compiled_flag() -> None:
    r = evaluate(object(), {})  # type: ignore[arg-type]
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.GENERAL)
