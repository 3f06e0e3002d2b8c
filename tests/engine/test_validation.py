"""Compile-time validation: every refused definition names the offending path."""

from __future__ import annotations

from typing import Any

import pytest

from vexil.engine import FlagValidationError, compile_flag
from vexil.model import Flag

BOOLS = {"on": True, "off": False}
COLORS = {"red": "#f00", "blue": "#00f"}


def make(
    targeting: Any = None,
    variants: Any = None,
    default: Any = "red",
    **fields: Any,
) -> Flag:
    return Flag(
        key=fields.pop("key", "f"),
        environment="test",
        variants=COLORS if variants is None else variants,
        default_variant=default,
        targeting=targeting,
        **fields,
    )


def refused(flag: Flag, evaluators: dict[str, Any] | None = None) -> FlagValidationError:
    with pytest.raises(FlagValidationError) as info:
        compile_flag(flag, evaluators)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.path and error.message
    assert str(error) == f"{error.path}: {error.message}"
    return error


# -- the flag itself --------------------------------------------------------------------------


@pytest.mark.parametrize("variants", [{}, None, [], "red"])
def test_variants_are_required(variants: Any) -> None:
    flag = Flag(key="f", environment="t", variants=variants, default_variant=None)  # type: ignore[arg-type]
    assert refused(flag).path == "variants"


def test_variant_names_are_non_empty() -> None:
    error = refused(make(variants={"": 1, "a": 2}, default="a"))
    assert error.path == "variants"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(None, "null"), (float("nan"), "finite"), (float("inf"), "finite"), ((1, 2), "tuple")],
)
def test_variant_values_are_json(value: Any, fragment: str) -> None:
    error = refused(make(variants={"red": "#f00", "blue": value}))
    assert error.path == "variants.blue"
    assert fragment in error.message


@pytest.mark.parametrize(
    "variants",
    [
        {"red": "#f00", "blue": 1},
        {"red": True, "blue": "yes"},
        {"red": 1, "blue": False},
        {"red": {"x": 1}, "blue": "x"},
    ],
)
def test_variant_types_mixed(variants: dict[str, Any]) -> None:
    error = refused(make(variants=variants))
    assert error.path == "variants.blue"
    assert "mixed" in error.message and "'red'" in error.message


def test_ints_and_floats_are_one_number_type() -> None:
    assert compile_flag(make(variants={"red": 1, "blue": 2.5})).value_type == "FLOAT"


def test_default_variant_must_exist() -> None:
    error = refused(make(default="purple"))
    assert error.path == "defaultVariant"
    assert "purple" in error.message and "blue" in error.message


def test_state_must_be_known() -> None:
    assert refused(make(state="PAUSED")).path == "state"  # type: ignore[arg-type]


def test_metadata_must_be_an_object() -> None:
    assert refused(make(metadata=["x"])).path == "metadata"  # type: ignore[arg-type]


def test_key_must_be_a_string() -> None:
    assert refused(make(key=5)).path == "key"


@pytest.mark.parametrize("targeting", ["red", ["if"], 5, True])
def test_targeting_must_be_an_object(targeting: Any) -> None:
    assert refused(make(targeting=targeting)).path == "targeting"


# -- rules --------------------------------------------------------------------------------------


def test_unknown_operator() -> None:
    error = refused(make(targeting={"if": [{"regex": [{"var": "email"}, ".*"]}, "blue", "red"]}))
    assert error.path == "targeting.if[0].regex"
    assert "unknown operator 'regex'" in error.message


@pytest.mark.parametrize(
    ("rule", "path", "wanted"),
    [
        ({"==": [1]}, "targeting.==", "2 arguments, got 1"),
        ({"if": [{"!": [1, 2]}, "red"]}, "targeting.if[0].!", "1 argument, got 2"),
        ({"if": [{"and": [True, {"<": [1]}]}, "red"]}, "targeting.if[0].and[1].<", "2 to 3 arguments"),
        ({"if": ["red"]}, "targeting.if", "at least 2"),
        ({"if": [{"var": ["a", 1, 2]}, "red"]}, "targeting.if[0].var", "0 to 2"),
        ({"if": [{"sem_ver": ["1.0.0", "="]}, "red"]}, "targeting.if[0].sem_ver", "3 arguments"),
        ({"if": [{"starts_with": [{"var": "a"}]}, "red"]}, "targeting.if[0].starts_with", "2 arguments"),
        ({"if": [{"map": [[1]]}, "red"]}, "targeting.if[0].map", "2 arguments"),
        ({"if": [{"missing_some": [1]}, "red"]}, "targeting.if[0].missing_some", "2 arguments"),
        ({"if": [{"/": [1, 2, 3]}, "red"]}, "targeting.if[0]./", "2 arguments"),
        ({"if": [{"or": []}, "red"]}, "targeting.if[0].or", "at least 1"),
    ],
)
def test_wrong_arity(rule: Any, path: str, wanted: str) -> None:
    error = refused(make(targeting=rule))
    assert error.path == path
    assert wanted in error.message


def test_object_with_several_keys_is_not_a_rule() -> None:
    error = refused(make(targeting={"if": [{"var": "a", "==": 1}, "red"]}))
    assert error.path == "targeting.if[0]"
    assert "exactly one key" in error.message


def test_lone_argument_paths_name_the_operator() -> None:
    error = refused(make(targeting={"if": [{"!": {"nope": 1}}, "red"]}))
    assert error.path == "targeting.if[0].!.nope"


def test_literal_results_must_be_variants() -> None:
    error = refused(make(targeting={"if": [{"var": "beta"}, "blue", "purple"]}))
    assert error.path == "targeting.if[2]"
    assert "'purple' is not a variant" in error.message
    assert refused(make(targeting={"if": [{"var": "b"}, "blue", {"if": [{"var": "c"}, 7]}]})).path == (
        "targeting.if[2].if[1]"
    )
    assert refused(make(targeting={"var": ["color", "pink"]})).path == "targeting.var[1]"
    assert refused(make(targeting={"or": [{"var": "color"}, "pink"]})).path == "targeting.or[1]"


def test_literal_booleans_select_true_and_false_variants() -> None:
    assert refused(make(targeting={"if": [{"var": "b"}, True, "red"]})).path == "targeting.if[1]"
    compile_flag(
        make(variants={"true": 1, "false": 0}, default="false", targeting={"if": [{"var": "b"}, True, False]})
    )


def test_bare_condition_needs_true_and_false_variants() -> None:
    error = refused(make(variants=BOOLS, default="off", targeting={"in": [{"var": "email"}, ["a@x.com"]]}))
    assert error.path == "targeting"
    assert "'true'" in error.message and "'false'" in error.message
    compile_flag(
        make(variants={"true": 1, "false": 0}, default="false", targeting={"in": [{"var": "e"}, ["a"]]})
    )


def test_null_results_are_allowed() -> None:
    compile_flag(make(targeting={"if": [{"var": "beta"}, "blue", None]}))


# -- fractional ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fractional", "path", "fragment"),
    [
        ([["red", 50], ["blue", 50.5]], "targeting.if[0].fractional[1][1]", "integers, got 50.5"),
        ([["red", 50], ["blue", 50.0]], "targeting.if[0].fractional[1][1]", "integers, got 50.0"),
        ([["red", "50"], ["blue", 50]], "targeting.if[0].fractional[0][1]", "integers"),
        ([["red", True], ["blue", 50]], "targeting.if[0].fractional[0][1]", "integers"),
        ([{"var": "email"}, ["red", 50], "blue"], "targeting.if[0].fractional[2]", "is an array"),
        ([["red", 50, 1]], "targeting.if[0].fractional[0]", "got 3 items"),
        ([["red", 50], []], "targeting.if[0].fractional[1]", "got 0 items"),
        ([{"var": "email"}], "targeting.if[0].fractional", "at least one"),
        ([["red", 0], ["blue", 0]], "targeting.if[0].fractional", "add up to 0"),
        ([["red", 2**31], ["blue", 1]], "targeting.if[0].fractional", "above the maximum"),
    ],
)
def test_fractional_buckets(fractional: list[Any], path: str, fragment: str) -> None:
    error = refused(make(targeting={"if": [fractional and {"fractional": fractional}, "red"]}))
    assert error.path == path
    assert fragment in error.message


def test_fractional_needs_arguments() -> None:
    assert refused(make(targeting={"fractional": []})).path == "targeting.fractional"


def test_fractional_as_the_rule() -> None:
    error = refused(make(targeting={"fractional": [["red", 50], ["purple", 50]]}))
    assert error.path == "targeting.fractional[1][0]"
    compile_flag(make(targeting={"fractional": [["red", 50], ["blue", 50], [None, 1]]}))
    compile_flag(make(targeting={"fractional": [["red"], ["blue", -3], ["blue", 1]]}))


def test_fractional_bucket_variants_are_not_checked_when_not_a_result() -> None:
    compile_flag(make(targeting={"if": [{"==": [{"fractional": [["x", 1], ["y", 1]]}, "x"]}, "blue", "red"]}))


# -- sem_ver, strings, arrays -----------------------------------------------------------------------


def test_sem_ver_operator() -> None:
    error = refused(make(targeting={"if": [{"sem_ver": [{"var": "v"}, "=>", "1.0.0"]}, "blue", "red"]}))
    assert error.path == "targeting.if[0].sem_ver[1]"
    assert "'=>'" in error.message


@pytest.mark.parametrize("version", ["1.x", "", "01.2.3", "1.2.3.4", 1.2e30])
def test_sem_ver_literal_versions(version: Any) -> None:
    error = refused(make(targeting={"if": [{"sem_ver": [{"var": "v"}, ">=", version]}, "blue", "red"]}))
    assert error.path == "targeting.if[0].sem_ver[2]"
    assert "not a semantic version" in error.message


@pytest.mark.parametrize("version", ["1", "v1.2", "1.2.3-rc.1+b", 2, 1.5])
def test_sem_ver_partial_versions_are_fine(version: Any) -> None:
    compile_flag(make(targeting={"if": [{"sem_ver": [{"var": "v"}, "^", version]}, "blue", "red"]}))


def test_string_comparison_needs_a_string() -> None:
    error = refused(make(targeting={"if": [{"ends_with": [{"var": "email"}, 5]}, "blue", "red"]}))
    assert error.path == "targeting.if[0].ends_with[1]"


def test_reduce_initial_value_is_not_evaluated() -> None:
    rule = {"if": [{"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, 1]}, {"var": "x"}]}, "blue", "red"]}
    assert refused(make(targeting=rule)).path == "targeting.if[0].reduce[2]"


def test_depth_limit() -> None:
    rule: Any = {"var": "x"}
    for _ in range(150):
        rule = {"!": [rule]}
    error = refused(make(variants={"true": 1, "false": 0}, default="false", targeting=rule))
    assert "nests deeper" in error.message


# -- $ref -------------------------------------------------------------------------------------------


def test_ref_to_unknown_evaluator() -> None:
    error = refused(make(targeting={"if": [{"$ref": "isUS"}, "blue", "red"]}), {"isEU": True})
    assert error.path == "targeting.if[0]"
    assert "'isUS'" in error.message and "isEU" in error.message
    assert "there are none" in refused(make(targeting={"if": [{"$ref": "isUS"}, "blue", "red"]})).message


def test_ref_needs_a_name() -> None:
    assert refused(make(targeting={"if": [{"$ref": ["isUS"]}, "blue", "red"]})).path == "targeting.if[0].$ref"


def test_ref_cycle() -> None:
    evaluators = {"a": {"and": [True, {"$ref": "b"}]}, "b": {"or": [False, {"$ref": "a"}]}}
    error = refused(make(targeting={"if": [{"$ref": "a"}, "blue", "red"]}), evaluators)
    assert "cycle" in error.message and "a -> b -> a" in error.message


def test_error_inside_an_evaluator_names_it_and_the_reference() -> None:
    evaluators = {"isUS": {"==": [{"var": "country"}]}}
    error = refused(make(targeting={"if": [{"$ref": "isUS"}, "blue", "red"]}), evaluators)
    assert error.path == "$evaluators.isUS.=="
    assert "targeting.if[0]" in error.message


def test_result_literal_inside_an_evaluator_is_checked_against_the_flag() -> None:
    evaluators = {"pick": {"if": [{"var": "x"}, "blue", "green"]}}
    error = refused(make(targeting={"$ref": "pick"}), evaluators)
    assert error.path == "$evaluators.pick.if[2]"


def test_evaluators_must_be_an_object() -> None:
    error = refused(make(targeting={"if": [{"$ref": "a"}, "blue", "red"]}), ["a"])  # type: ignore[arg-type]
    assert error.path == "$evaluators"


@pytest.mark.parametrize(
    "targeting",
    [
        {"if": [(1, 2), "blue", "red"]},
        {"if": [{1: 2}, "blue", "red"]},
        {"if": [{"in": [{"var": "x"}, {1, 2}]}, "blue", "red"]},
        {"if": [{"==": [{"var": "x"}, b"bytes"]}, "blue", "red"]},
        {"if": [{"var": object()}, "blue", "red"]},
        {"fractional": [{"var": "x"}, ("red", 1), ["blue", 1]]},
        {"if": [{"var": "x"}, 10**5000, "red"]},
        {"if": [{"var": "x", 1: 2}, "blue", "red"]},
        {"if": [{"sem_ver": [{"var": "v"}, ">", 10**5000]}, "blue", "red"]},
    ],
)
def test_non_json_values_never_crash_the_compiler(targeting: Any) -> None:
    for strict in (True, False):
        try:
            compile_flag(make(targeting=targeting), strict=strict)
        except FlagValidationError:
            assert strict


def test_refs_compile() -> None:
    evaluators = {
        "isUS": {"==": [{"var": "country"}, "US"]},
        "adultUS": {"and": [{"$ref": "isUS"}, {">=": [{"var": "age"}, 18]}]},
    }
    compile_flag(make(targeting={"if": [{"$ref": "adultUS"}, "blue", "red"]}), evaluators)


# -- realistic definitions compile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "targeting",
    [
        {"if": [{"in": [{"var": "email"}, ["a@x.com"]]}, "blue", "red"]},
        {"if": [{"ends_with": [{"var": "email"}, "@faas.com"]}, "blue", None]},
        {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["red", 50], ["blue", 50]]},
        {"fractional": [["red", 25], ["blue", 75]]},
        {"if": [{"sem_ver": [{"var": "version"}, "~", "1.2"]}, "blue", "red"]},
        {"if": [{">": [{"var": "$flagd.timestamp"}, 1700000000]}, "blue", "red"]},
        {"if": [{"<=": [18, {"var": "age"}, 65]}, "blue", "red"]},
        {"if": [{"some": [{"var": "tags"}, {"==": [{"var": ""}, "beta"]}]}, "blue", "red"]},
        {"if": [{"missing": ["email"]}, "red", "blue"]},
        {"?:": [{"!": {"var": "beta"}}, "red", "blue"]},
    ],
)
def test_realistic_rules_compile(targeting: Any) -> None:
    compile_flag(make(targeting=targeting))
