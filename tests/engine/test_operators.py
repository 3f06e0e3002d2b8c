"""Unit tests per operator family: what each operator answers, written out.

Every expectation is also checked against the reference (`check`: the Python core, with flagd's
coercions where it differs, see tests/support/reference.py), so these double as readable
documentation of flagd's JSONLogic semantics, quirks included.
"""

from __future__ import annotations

import math
from typing import Any

import cbor2
import mmh3
import pytest
import semver as semver_package
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.rules import check
from tests.support.strategies import json_values
from vexil.engine import ValueType, compile_flag, evaluate
from vexil.engine.fractional import CBOR, encode_bucket_value
from vexil.engine.rules import compile_rule
from vexil.engine.semver import parse_version
from vexil.model import Flag

pytestmark = pytest.mark.usefixtures("flagd_reference")

CONTEXT = {
    "email": "bob@example.com",
    "country": "US",
    "age": 30,
    "user": {"name": "bob", "tags": ["a", "b"], "plan": None},
    "tags": ["beta", "x"],
    "items": [{"id": 1}, {"id": 5}],
    "version": "2.3.1",
    "targetingKey": "user-1",
}


def run(rule: Any, context: dict[str, Any] | None = None, key: str = "flag") -> Any:
    """The rule's value under vexil, after asserting the reference gives the same."""
    context = CONTEXT if context is None else context
    check(rule, context, key)
    expr, full = compile_rule(rule, key, variants=frozenset(), strict=False, fractional_hashing=CBOR)
    data: Any = context
    if full:
        data = {
            **context,
            "$flagd": {"flagKey": key, "timestamp": 0},
            "targetingKey": context.get("targetingKey"),
        }
    return expr.value if expr.const else expr.fn(data)  # type: ignore[misc]


# -- data access ----------------------------------------------------------------------------------


def test_var() -> None:
    assert run({"var": "email"}) == "bob@example.com"
    assert run({"var": ["user.name"]}) == "bob"
    assert run({"var": "user.tags.1"}) == "b"
    assert run({"var": "user.tags.length"}) == 2
    assert run({"var": "email.length"}) == 15
    assert run({"var": ["nope", "fallback"]}) == "fallback"
    assert run({"var": ["user.plan", "free"]}) == "free"  # null takes the default
    assert run({"var": "tags.01"}) is None  # not a canonical index
    assert run({"var": "targetingKey"}) == "user-1"
    assert run({"var": "$flagd.flagKey"}, key="launch") == "launch"
    assert run({"var": ""})["email"] == "bob@example.com"
    assert run({"map": [{"var": "items"}, {"var": "id"}]}) == [1, 5]


def test_missing() -> None:
    assert run({"missing": ["email", "nope", "user.plan"]}) == ["nope", "user.plan"]
    assert run({"missing": [["nope", "age"]]}) == ["nope"]
    assert run({"missing_some": [1, ["email", "nope"]]}) == []
    assert run({"missing_some": [2, ["email", "nope", "other"]]}) == ["nope", "other"]


# -- logic ------------------------------------------------------------------------------------------


def test_if_chains() -> None:
    assert run({"if": [{"var": "nope"}, "a", {"var": "age"}, "b", "c"]}) == "b"
    assert run({"if": [False, "a"]}) is None
    assert run({"if": ["only"]}) == "only"
    assert run({"?:": [True, "a", "b"]}) == "a"


def test_and_or_return_operands() -> None:
    assert run({"and": [1, "x", [1]]}) == [1]
    assert run({"and": [1, "", "x"]}) == ""
    assert run({"or": [0, [], {"var": "email"}]}) == "bob@example.com"
    assert run({"or": [0, ""]}) == ""


def test_truthiness() -> None:
    assert run({"!!": [[]]}) is False
    assert run({"!!": ["0"]}) is True
    assert run({"!!": [{"+": ["nan"]}]}) is False  # NaN is false
    assert run({"!!": [{"var": "user"}]}) is True  # every object is true, even {}
    assert run({"!": {"var": "nope"}}) is True


# -- comparison -------------------------------------------------------------------------------------


def test_loose_equality() -> None:
    assert run({"==": [1, "1"]}) is True
    assert run({"==": [1, True]}) is True
    assert run({"==": [0, None]}) is True  # the Python and JavaScript cores (flagd Go says false)
    assert run({"==": ["", 0]}) is True  # blank is 0, as JavaScript and flagd Go
    assert run({"==": ["1_000", 1000]}) is False  # not a number in JavaScript or flagd Go
    assert run({"==": [False, None]}) is True
    assert run({"==": ["a,b", ["a", "b"]]}) is True
    assert run({"==": [[1], [1]]}) is False  # arrays compare by identity
    assert run({"==": [{"var": "tags"}, {"var": "tags"}]}) is True
    assert run({"!=": ["US", {"var": "country"}]}) is False


def test_strict_equality() -> None:
    assert run({"===": [1, 1.0]}) is True
    assert run({"===": [1, True]}) is False  # JavaScript and flagd Go: a boolean is no number
    assert run({"!==": [{"var": "age"}, True]}, {"age": 1}) is True
    assert run({"===": [[1], [1]]}) is True  # by content, as the Python core
    assert run({"===": [1, "1"]}) is False
    assert run({"!==": [None, 0]}) is True


def test_ordering() -> None:
    assert run({"<": [{"var": "age"}, 31]}) is True
    assert run({"<": ["10", "9"]}) is True  # two strings: string order
    assert run({"<": ["10", 9]}) is False  # a number: numeric order
    assert run({">=": [{"var": "age"}, "30"]}) is True
    assert run({"<": [1, {"var": "age"}, 40]}) is True
    assert run({"<=": [30, {"var": "age"}, 30]}) is True
    assert run({"<": [1, 2, None]}) is True  # a null third argument means two arguments
    assert run({">": ["abc", None]}) is False
    assert run({"<": [{"var": "nope"}, "silver"]}) is False  # null meets a string as 0 meets NaN
    assert run({"<": [{"var": "nope"}, "5"]}) is True  # ... and as 0 meets 5


# -- arithmetic -------------------------------------------------------------------------------------


def test_arithmetic() -> None:
    assert run({"+": [1, "2", True]}) == 4.0
    assert run({"+": [1, 2]}) == 3 and isinstance(run({"+": [1, 2]}), int)
    assert run({"-": [5]}) == -5
    assert run({"*": [{"var": "age"}, 2]}) == 60
    assert run({"/": [7, 2]}) == 3.5
    assert run({"%": [-7, 3]}) == -1  # JavaScript's remainder: the dividend's sign
    assert run({"%": [7, -3]}) == 1
    assert run({"min": [3, "1", 2]}) == 1.0
    assert run({"max": [3, [5], 2]}) == 5
    assert math.isnan(run({"+": ["abc"]}))
    assert math.isnan(run({"max": []}))


def test_division_by_zero_fails_the_evaluation() -> None:
    flag = Flag("f", "t", {"a": 1}, "a", targeting={"if": [{"/": [1, {"var": "n"}]}, "a"]})
    r = evaluate(compile_flag(flag), {"n": 0}, ValueType.INT)
    assert r.error_code == "GENERAL"
    check({"/": [1, {"var": "n"}]}, {"n": 0})
    check({"%": [1, {"var": "n"}]}, {"n": 0.0})


# -- arrays -----------------------------------------------------------------------------------------


def test_array_operators() -> None:
    assert run({"in": ["beta", {"var": "tags"}]}) is True
    assert run({"in": [1, [1.0, 2]]}) is True
    assert run({"in": [True, [1, 2, 3]]}) is False  # a boolean is not the number 1
    assert run({"in": ["ob", {"var": "email"}]}) is True
    assert run({"in": [{"var": "country"}, ["a", "b", "c", "d", "US", "e"]]}) is True
    assert run({"merge": [[1], 2, [[3]]]}) == [1, 2, [3]]
    assert run({"filter": [{"var": "items"}, {">": [{"var": "id"}, 2]}]}) == [{"id": 5}]
    assert run({"reduce": [{"var": "items"}, {"+": [{"var": "accumulator"}, {"var": "current.id"}]}, 0]}) == 6
    assert run({"all": [[], {"var": ""}]}) is False  # all of nothing is false in JSONLogic
    assert run({"all": [{"var": "tags"}, {"!!": {"var": ""}}]}) is True
    assert run({"some": [{"var": "tags"}, {"==": [{"var": ""}, "x"]}]}) is True
    assert run({"none": ["not an array", True]}) is True


# -- strings ----------------------------------------------------------------------------------------


def test_strings() -> None:
    assert run({"cat": ["a", 1, 1.5, None, True, [1, [2]], {}]}) == "a11.5nulltrue1,2[object Object]"
    assert run({"cat": [{"var": "$flagd.flagKey"}, "-", {"var": "email"}]}, key="k") == "k-bob@example.com"
    assert run({"substr": ["abcdef", 2]}) == "cdef"
    assert run({"substr": ["abcdef", -2]}) == "ef"
    assert run({"substr": ["abcdef", 1, -2]}) == "bcd"
    assert run({"substr": ["abcdef", 1, 2]}) == "bc"
    assert run({"starts_with": [{"var": "email"}, "bob"]}) is True
    assert run({"ends_with": [{"var": "email"}, "@example.com"]}) is True
    assert run({"starts_with": [{"var": "age"}, "3"]}) is None  # not a string: no match
    assert run({"ends_with": ["a", "a", "a"]}) is None


# -- fractional -------------------------------------------------------------------------------------


def test_fractional_shorthand_hashes_flag_key_and_targeting_key() -> None:
    rule = {"fractional": [["a", 50], ["b", 50]]}
    encoded = cbor2.dumps(["my-flag", "user-1"], canonical=True)
    expected = "a" if (mmh3.hash(encoded, signed=False) * 100) >> 32 < 50 else "b"
    assert run(rule, {"targetingKey": "user-1"}, key="my-flag") == expected
    assert run(rule, {}) is None  # no targeting key: no bucket
    assert run(rule, {"targetingKey": ""}) is None


def test_fractional_explicit_bucket_by() -> None:
    rule = {"fractional": [{"var": "email"}, ["a", 1], ["b", 1], ["c", 2]]}
    point = (mmh3.hash(cbor2.dumps("bob@example.com", canonical=True), signed=False) * 4) >> 32
    assert run(rule) == ["a", "b", "c", "c"][point]
    assert run({"fractional": [{"var": "nope"}, ["a", 1]]}) is None


def test_fractional_spreads_evenly() -> None:
    rule = {"fractional": [["a", 25], ["b", 25], ["c", 50]]}
    compiled, _ = compile_rule(rule, "spread", variants=frozenset("abc"))
    counts = {"a": 0, "b": 0, "c": 0}
    for i in range(20000):
        counts[compiled.fn({"targetingKey": f"user-{i}"})] += 1  # type: ignore[misc]
    assert 4500 < counts["a"] < 5500 and 4500 < counts["b"] < 5500 and 9500 < counts["c"] < 10500


def test_fractional_weights() -> None:
    assert run({"fractional": [["a"], ["b"]]}, {"targetingKey": "x"}) in ("a", "b")  # default weight 1
    assert run({"fractional": [["a", 0], ["b", 5]]}, {"targetingKey": "x"}) == "b"
    assert run({"fractional": [["a", -10], ["b", 5]]}, {"targetingKey": "x"}) == "b"  # negative counts as 0
    assert run({"fractional": [["a", 1.5], ["b", 5]]}, {"targetingKey": "x"}) is None
    assert run({"fractional": [["a", 2**31 - 1], ["b", 1]]}, {"targetingKey": "x"}) is None  # above MaxInt32


def test_fractional_integral_floats_hash_as_integers() -> None:
    rule = {"fractional": [{"var": "n"}, ["a", 1], ["b", 1], ["c", 1], ["d", 1]]}
    for n in (0, 7, 255, 65536, 2**40, -3):
        assert run(rule, {"n": float(n)}) == run(rule, {"n": n})


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=json_values)
def test_fast_cbor_encoding_is_canonical_cbor(value: Any) -> None:
    from vexil.engine.fractional import _normalize

    assert encode_bucket_value(value) == cbor2.dumps(_normalize(value), canonical=True)


# -- sem_ver ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("1.2.3", "=", "1.2.3", True),
        ("v1.2.3", "=", "1.2.3", True),
        ("1.2.3+build", "=", "1.2.3", True),
        ("1.2", "=", "1.2.0", True),
        ("1", "<", "1.0.1", True),
        ("1.2.3-rc.1", "<", "1.2.3", True),
        ("1.2.3-rc.2", "<", "1.2.3-rc.10", True),
        ("1.2.3-alpha", "<", "1.2.3-alpha.1", True),
        ("1.2.3-1", "<", "1.2.3-alpha", True),
        ("2.0.0", ">", "1.99.99", True),
        ("1.5.0", "^", "1.0.0", True),
        ("2.0.0", "^", "1.0.0", False),
        ("1.2.9", "~", "1.2.0", True),
        ("1.3.0", "~", "1.2.0", False),
        ("1.2.3", "!=", "1.2.4", True),
        ("1.x", "=", "1.0.0", None),
        ("1.2.3", "=>", "1.2.3", None),
    ],
)
def test_sem_ver(left: str, op: str, right: str, expected: bool | None) -> None:
    assert run({"sem_ver": [{"var": "v"}, op, right]}, {"v": left}) is expected


version_texts = st.from_regex(
    r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]?)\.(0|[1-9])(-(0|[1-9][0-9]?|[a-z]{1,3})(\.(0|[1-9]|[a-z]{1,2})){0,2})?",
    fullmatch=True,
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(a=version_texts, b=version_texts)
def test_version_keys_order_like_semver(a: str, b: str) -> None:
    ka, kb = parse_version(a), parse_version(b)
    assert ka is not None and kb is not None
    va, vb = semver_package.Version.parse(a), semver_package.Version.parse(b)
    assert (ka < kb, ka == kb, ka > kb) == (va < vb, va == vb, va > vb)
