"""Exhaustive differential corpus: every pair of edge values through every operator.

Random generation rarely makes two interesting values meet (two equal strings, a version with
the same major but another minor, "1" next to true).  For the finite domains that matter the
cases are enumerated instead: each edge value against each other for every comparison and
arithmetic operator, every version against every version for every `sem_ver` operator, and so on.
Each rule is checked in three compiled forms, because vexil compiles them differently: all
literals (folded at compile time), context attribute vs literal (the specialised closures), and
attribute vs attribute (the general path).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.rules import check
from tests.support.strategies import EDGE_VALUES, PATHS

pytestmark = pytest.mark.usefixtures("flagd_reference")

# Literal forms of the edge values (an object literal would be read as an operator).
LITERALS = [v for v in EDGE_VALUES if not (isinstance(v, dict) and len(v) == 1)]


def _forms(op: str, a: Any, b: Any, *, literal_left: bool = True) -> list[tuple[Any, dict[str, Any]]]:
    forms = [
        ({op: [a, b]}, {}),
        ({op: [{"var": "a"}, b]}, {"a": a}),
        ({op: [{"var": "a"}, {"var": "b"}]}, {"a": a, "b": b}),
    ]
    if literal_left:
        forms.append(({op: [a, {"var": "b"}]}, {"b": b}))
    return forms


def _literal_ok(value: Any) -> bool:
    return not (isinstance(value, dict) and len(value) == 1)


@pytest.mark.parametrize("op", ["==", "!=", "===", "!==", "<", "<=", ">", ">=", "in"])
def test_comparisons_of_every_pair(op: str) -> None:
    for a, b in itertools.product(EDGE_VALUES, repeat=2):
        for rule, context in _forms(op, a, b):
            if context or (_literal_ok(a) and _literal_ok(b)):
                check(rule, context)


@pytest.mark.parametrize(
    "op", ["+", "-", "*", "/", "%", "min", "max", "cat", "merge", "starts_with", "ends_with"]
)
def test_binary_operators_on_every_pair(op: str) -> None:
    for a, b in itertools.product(EDGE_VALUES, repeat=2):
        for rule, context in _forms(op, a, b, literal_left=False):
            if context or (_literal_ok(a) and _literal_ok(b)):
                check(rule, context)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_between_form(op: str) -> None:
    bounds = [None, 0, 1, 18, 1.5, "1", "abc", "", True, [1], [], "b"]
    for low, high in itertools.product(bounds, repeat=2):
        for x in EDGE_VALUES:
            check({op: [low, {"var": "x"}, high]}, {"x": x})
    check({op: [1, 2, 3, 4]}, {})


@pytest.mark.parametrize("op", ["!", "!!", "if", "?:", "and", "or", "log"])
def test_truthiness_of_every_value(op: str) -> None:
    for value in EDGE_VALUES:
        for tail in ([], ["yes"], ["yes", "no"], [{"var": "b"}, "no"]):
            check({op: [{"var": "a"}, *tail]}, {"a": value, "b": value})
            if _literal_ok(value):
                check({op: [value, *tail]}, {})
        check({op: {"var": "a"}}, {"a": value})


def test_nan_and_infinity_coercions() -> None:
    strings = [
        "nan",
        "NaN",
        "inf",
        "-inf",
        "+inf",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        " inf ",
        "1_0",
    ]
    for a, b in itertools.product([*strings, 0, 1.5, None, True], repeat=2):
        for op in ("==", "<", ">=", "+", "-", "min", "max", "!", "in", "%"):
            check({op: [{"+": [{"var": "a"}]}, {"var": "b"}]}, {"a": a, "b": b})
            check({op: [{"var": "a"}, {"*": [{"var": "b"}, 1]}]}, {"a": a, "b": b})


def test_integers_too_long_to_print() -> None:
    """Python refuses str() of integers over 4,300 digits: every operator that prints one fails
    (GENERAL) or treats it as not-a-version, as in the reference."""
    huge = 10**5000
    for rule in (
        {"cat": [{"var": "n"}]},
        {"==": [{"var": "n"}, "1"]},
        {"<": [{"var": "n"}, "abc"]},
        {"in": [{"var": "n"}, "abc"]},
        {"+": [{"var": "n"}, 1]},
        {"/": [{"var": "n"}, 3]},
        {"substr": ["abc", {"var": "n"}]},
        {"sem_ver": [{"var": "n"}, ">", "1.0.0"]},
        {"fractional": [{"var": "n"}, ["a", 1], ["b", 1]]},
        {"var": "n"},
        {"var": {"var": "n"}},
        {"missing": [{"var": "n"}]},
    ):
        check(rule, {"n": huge})


def test_substr_every_index_and_length() -> None:
    indexes = [None, -10, -3, -1, 0, 1, 2, 3, 10, 1.5, -1.5, "2", "x", True, [], [2], 1e400]
    for text in ["", "a", "abcdef", "ünïcødé", "😀x😀", 12345, 1.5, None, True, ["a", "b"]]:
        for index, length in itertools.product(indexes, repeat=2):
            check({"substr": [{"var": "s"}, index, length]}, {"s": text})
            check({"substr": [{"var": "s"}, index]}, {"s": text})


CONTEXT = {
    "email": "a@example.com",
    "user": {"country": "US", "age": 30, "tags": ["a", "b"], "null": None, "empty": ""},
    "tags": ["a", "beta", 1],
    "name": "ünï",
    "zero": 0,
    "false": False,
    "none": None,
    "empty": "",
    "items": [{"id": 1}, {"id": 2}],
    "nested": {"list": [[1, 2], {"x": "y"}]},
    "targetingKey": "user-1",
    "$flagd": {"flagKey": "user-supplied", "timestamp": 1},
    "a.b": "dotted key",
    "": "empty key",
}

ACCESS_KEYS = [
    *PATHS, "user.null", "user.empty", "zero", "false", "none", "empty", "nested.list.0.1",
    "nested.list.1.x", "nested.list.2", "nested.list.-1", "tags.01", "tags.+1", "tags. 1", "items.length",
    "name.0", "name.length.x", "email.3", "a.b", ".", "..", "targetingKey.length", 0, 1, -1, 1.0, 1.5, True,
    None, "", [], ["email"], ["user", "country"], [1], {}, "$flagd.timestamp.length",
]  # fmt: skip


def test_var_every_path() -> None:
    for key in ACCESS_KEYS:
        for default in (None, "dflt", 0, {"var": "email"}):
            check({"var": [key, default]}, CONTEXT)
        check({"var": key}, CONTEXT)
        check({"var": [key]}, CONTEXT)
        check({"var": [{"cat": [key]}]}, CONTEXT)
        check({"missing": [key, "email", "nope"]}, CONTEXT)
        check({"missing": [[key, "nope"]]}, CONTEXT)
        check({"missing_some": [1, [key, "nope"]]}, CONTEXT)
        check({"missing_some": [2, [key, "email", "nope"]]}, CONTEXT)
        check({"map": [{"var": "items"}, {"var": key}]}, CONTEXT)
        check({"map": [{"var": "tags"}, {"var": key}]}, CONTEXT)
        check({"missing": {"var": "k"}}, {**CONTEXT, "k": key})
        check({"var": {"var": "k"}}, {**CONTEXT, "k": key})
    check({"var": []}, CONTEXT)
    check({"var": ["email", 1, 2]}, CONTEXT)


VERSION_CORPUS = [
    "1.2.3", "v1.2.3", "V1.2.3", "1.2", "1", "v1", "2", "1.3", "1.2.4", "1.10.0", "1.2.3-rc.1", "1.2.3-rc.2",
    "1.2.3-rc.10", "1.2.3-alpha", "1.2.3-alpha.1", "1.2.3-alpha.beta", "1.2.3-beta", "1.2.3-1", "1.2.3-2",
    "1.2.3-0", "1.2.3-x-y", "1.2.3+build", "1.2.3-rc.1+build", "1.2-rc.1", "1-rc.1", "1+b", "0.0.0",
    "2.0.0", "10.0.0", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-", "1.2.3+", "v", "",
    " 1.2.3", "1.2.3 ", "x.y.z", "1..2", "99999999999999999999.0.0", "1" * 5000 + ".0.0", 1, 1.5, 2.0, True,
    None, [1], 10**5000,
]  # fmt: skip


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">=", "^", "~", "==", "", None, 1])
def test_sem_ver_every_pair(op: Any) -> None:
    for a, b in itertools.product(VERSION_CORPUS, repeat=2):
        check({"sem_ver": [{"var": "v"}, op, b]}, {"v": a})
        if op == "^":
            check({"sem_ver": [a, op, {"var": "v"}]}, {"v": b})
            check({"sem_ver": [{"var": "a"}, {"var": "op"}, {"var": "b"}]}, {"a": a, "b": b, "op": op})


def test_sem_ver_wrong_arity() -> None:
    for args in ([], ["1.2.3"], ["1.2.3", "="], ["1.2.3", "=", "1.2.3", "x"]):
        check({"sem_ver": args}, {})
        check({"sem_ver": [{"var": "v"}, *args[1:]]}, {"v": "1.2.3"})


FLAG_KEYS = ["my-flag", "a", "", "flag-ü", "😀", "x" * 30, "new-checkout-flow"]
TARGETING_KEYS = ["user-1", "user-2", "", "😀", "ü" * 30, "x" * 300, None, 5, 5.0, True, ["user-1"], {"k": 1}]
BUCKET_SETS = [
    [["a", 50], ["b", 50]],
    [["a", 1], ["b", 1], ["c", 1]],
    [["a"], ["b"]],
    [["a", 0], ["b", 100]],
    [["a", 10], ["b", 0], ["c", 90]],
    [["a", -5], ["b", 10]],
    [["a", 2**31 - 1]],
    [["a", 2**31 - 1], ["b", 1]],
    [["a", 50.0], ["b", 50]],
    [["a", "50"], ["b", 50]],
    [["a", True], ["b", 50]],
    [["a", 0]],
    [[True, 1], [False, 1]],
    [[None, 1], ["b", 1]],
    [[1, 1], [2.5, 1]],
    [["a", 1, 2]],
    [[]],
    ["a"],
    [],
]
BUCKET_BY = [
    None, "", "user-1", "ü", "x" * 300, 0, 1, -1, 23, 255, 256, 65536, 2**32, 2**63, 2**64 - 1, 2**64,
    -(2**64), -(2**64) - 1, 1.0, 1.5, -0.0, 1e300, 2.0**64, True, False, [], ["a"],
    ["a", 1, None, True, [2.0]], {}, {"b": 1, "a": [1.0]}, {"var": "email"},
    {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
]  # fmt: skip


def test_fractional_shorthand_every_key() -> None:
    for flag_key, targeting_key, buckets in itertools.product(FLAG_KEYS, TARGETING_KEYS, BUCKET_SETS):
        check({"fractional": buckets}, {"targetingKey": targeting_key, "email": "a@example.com"}, flag_key)


def test_fractional_bucket_by_every_value() -> None:
    for bucket_by, buckets in itertools.product(BUCKET_BY, BUCKET_SETS):
        for targeting_key in ("user-1", None):
            context = {"targetingKey": targeting_key, "email": "bob@corp.io", "b": bucket_by}
            check({"fractional": [bucket_by, *buckets]}, context)
            check({"fractional": [{"var": "b"}, *buckets]}, context)


def test_fractional_distribution_over_many_keys() -> None:
    """Thousands of targeting keys through a realistic split: every assignment must agree."""
    for i in range(3000):
        check({"fractional": [["a", 10], ["b", 20], ["c", 70]]}, {"targetingKey": f"user-{i}"})
    for i in range(1000):
        check({"fractional": [{"var": "email"}, ["on", 5], ["off", 95]]}, {"email": f"{i}@example.com"})


def test_fractional_inside_array_operators() -> None:
    items = [
        {"targetingKey": "user-1"},
        {"targetingKey": "u2", "$flagd": {"flagKey": "k"}},
        {},
        "x",
        5,
        None,
        [],
    ]
    for item in items:
        check({"map": [{"var": "items"}, {"fractional": [["a", 1], ["b", 1]]}]}, {"items": [item]})
        check(
            {"map": [{"var": "items"}, {"fractional": [{"var": ""}, ["a", 1], ["b", 1]]}]}, {"items": [item]}
        )
