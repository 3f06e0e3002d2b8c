"""Operator-level differential tests: the raw value of a rule, vexil against the reference.

Flag-level comparisons (test_differential.py) only see which variant a rule selects; a wrong
intermediate value often selects the same one.  Here the rule's own result is compared: vexil's
compiled closure against the reference's `targeting()` function (the JSONLogic evaluator it
uses inside `FlagdCore`, exported by its `targeting` package), on the same rule and context.
Errors are compared by kind: PARSE (unknown operator) or GENERAL (anything else).

One test per operator family, each with a strategy that concentrates on where that family's
coercions are subtle, plus one over arbitrary nested rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.rules import check
from tests.support.strategies import (
    PATHS,
    SEMVER_OPS,
    STRINGS,
    VERSIONS,
    contexts,
    edge_values,
    json_values,
    light_contexts,
    numbers,
    rules,
    scalars,
    targeting_keys,
    var_nodes,
)

pytestmark = pytest.mark.usefixtures("flagd_reference")

family = settings(
    max_examples=450,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

operands = st.one_of(
    edge_values, edge_values, edge_values, json_values, var_nodes(), st.sampled_from(STRINGS), numbers
)


@settings(family, max_examples=700)
@given(rule=rules(["on", "off", "true", "false"]).filter(lambda r: isinstance(r, dict)), context=contexts)
def test_nested_rules(rule: Any, context: dict[str, Any]) -> None:
    check(rule, context)


@family
@given(
    op=st.sampled_from(["==", "!=", "===", "!==", "<", "<=", ">", ">=", "in"]),
    args=st.lists(operands, min_size=0, max_size=4),
    context=light_contexts,
)
def test_comparison(op: str, args: list[Any], context: dict[str, Any]) -> None:
    check({op: args}, context)


@family
@given(
    op=st.sampled_from(["+", "-", "*", "/", "%", "min", "max"]),
    args=st.lists(
        st.one_of(operands, st.sampled_from([0, 0.0, "0", [], [0], None, True])), min_size=0, max_size=4
    ),
    context=light_contexts,
)
def test_arithmetic(op: str, args: list[Any], context: dict[str, Any]) -> None:
    check({op: args}, context)


@family
@given(
    op=st.sampled_from(["!", "!!", "and", "or", "if", "?:"]),
    args=st.lists(st.one_of(operands, st.sampled_from([{}, [], "", 0, 0.0, float("nan"), "0"])), max_size=5),
    lone=st.booleans(),
    context=light_contexts,
)
def test_logic(op: str, args: list[Any], lone: bool, context: dict[str, Any]) -> None:
    check({op: args[0] if lone and args else args}, context)


@family
@given(
    op=st.sampled_from(["cat", "substr", "starts_with", "ends_with", "merge"]),
    args=st.lists(
        st.one_of(
            operands, st.integers(-12, 12), st.sampled_from([-0.5, 2.7, "2", None, float("nan"), 1e400])
        ),
        max_size=4,
    ),
    context=light_contexts,
)
def test_strings(op: str, args: list[Any], context: dict[str, Any]) -> None:
    check({op: args}, context)


@family
@given(
    key=st.one_of(st.sampled_from(PATHS), scalars, st.lists(st.sampled_from(PATHS), max_size=2)),
    default=st.one_of(st.none(), json_values, var_nodes()),
    arity=st.integers(0, 3),
    op=st.sampled_from(["var", "var", "var", "missing", "missing_some"]),
    context=light_contexts,
)
def test_data_access(key: Any, default: Any, arity: int, op: str, context: dict[str, Any]) -> None:
    if op == "var":
        args = [key, default, default][:arity]
        check({"var": args if arity != 1 or isinstance(key, list) else key}, context)
    elif op == "missing":
        check({"missing": [key, default][:arity]}, context)
    else:
        check({"missing_some": [default, [key, "email", "user.country"]][: max(arity, 1)]}, context)


@family
@given(
    op=st.sampled_from(["map", "filter", "reduce", "all", "some", "none"]),
    items=st.one_of(st.just({"var": "tags"}), st.just({"var": "items"}), json_values),
    sub=st.one_of(
        st.sampled_from(
            [
                {"var": ""},
                {"==": [{"var": ""}, "beta"]},
                {">": [{"var": ""}, 1]},
                {"var": "id"},
                {"+": [{"var": "accumulator"}, {"var": "current"}]},
                {"cat": [{"var": "accumulator"}, {"var": "current"}]},
                {"fractional": [["a", 1], ["b", 1]]},
                {"fractional": [{"var": ""}, ["a", 1], ["b", 1]]},
                {"var": "$flagd.flagKey"},
                {"missing": ["id"]},
            ]
        ),
        json_values,
    ),
    extra=st.lists(json_values, max_size=2),
    context=light_contexts,
)
def test_arrays(op: str, items: Any, sub: Any, extra: list[Any], context: dict[str, Any]) -> None:
    check({op: [items, sub, *extra]}, context)


@st.composite
def near_versions(draw: st.DrawFn) -> str:
    """Versions from few components, so that equal majors/minors and prereleases meet often."""
    parts = [
        draw(st.sampled_from(["0", "1", "2", "10", "01"]))
        for _ in range(draw(st.sampled_from([1, 2, 3, 3, 3, 4])))
    ]
    text = ".".join(parts)
    if draw(st.integers(0, 2)) == 0:
        text += "-" + draw(
            st.sampled_from(
                ["rc.1", "rc.2", "rc.10", "alpha", "alpha.1", "beta", "1", "0", "x-y", "01", "", "rc..1"]
            )
        )
    if draw(st.integers(0, 4)) == 0:
        text += "+" + draw(st.sampled_from(["build", "b.1", "001", ""]))
    prefix = draw(st.sampled_from(["", "", "", "v", "V", " "]))
    return prefix + text


version_strings = st.one_of(
    near_versions(),
    near_versions(),
    near_versions(),
    st.sampled_from(VERSIONS),
    st.text(alphabet="0123456789.-+vVabrc", max_size=10),
    st.sampled_from([1, 2, 1.5, 1.0, True, None, [1], {}]),
)


@family
@given(
    left=st.one_of(version_strings, st.just({"var": "version"})),
    op=st.one_of(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"]), st.sampled_from(SEMVER_OPS)),
    right=version_strings,
    arity=st.sampled_from([3, 3, 3, 3, 2, 4]),
    context=light_contexts,
)
def test_sem_ver(left: Any, op: Any, right: Any, arity: int, context: dict[str, Any]) -> None:
    args = [left, op, right, "extra"][:arity]
    check({"sem_ver": args}, context)
    check({"sem_ver": [right, op, left]}, context)


weights = st.one_of(
    st.integers(0, 100), st.integers(-3, 3), st.sampled_from([2**31 - 1, 2**31, 1.5, 50.0, "5", None])
)
buckets = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["a", "b", "c", None, True, 7]), weights).map(list),
        st.tuples(st.sampled_from(["a", "b"])).map(list),
        st.sampled_from([[], ["a", 1, 2], "a", {"var": "bucket"}]),
    ),
    max_size=4,
)


@family
@given(
    key=st.one_of(st.sampled_from(["my-flag", "flag-ü", ""]), st.text(max_size=30)),
    bucket_by=st.one_of(
        st.none(),
        json_values,
        st.text(max_size=40),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.sampled_from(
            [{"var": "email"}, {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, {"var": "tags"}]
        ),
    ),
    shorthand=st.booleans(),
    fractions=buckets,
    targeting_key=targeting_keys,
    context=light_contexts,
)
def test_fractional(
    key: str,
    bucket_by: Any,
    shorthand: bool,
    fractions: list[Any],
    targeting_key: Any,
    context: dict[str, Any],
) -> None:
    context = {**context, "targetingKey": targeting_key}
    rule = {"fractional": fractions if shorthand else [bucket_by, *fractions]}
    check(rule, context, key)
