"""Where vexil deliberately answers differently from the reference, and why.

Each test shows both answers.  Everything not listed here is identical (test_differential.py,
test_expressions.py and test_corpus.py compare the two on generated and enumerated inputs).

"The reference" is the Python core (`openfeature-flagd-core`).  Where its JSONLogic coerces as
Python does and flagd does not, vexil answers as flagd Go (diegoholiveira/jsonlogic v3) and the
JavaScript core (`@openfeature/flagd-core`) do; the generated comparisons run the Python core with
exactly those coercions replaced (`tests.support.reference.flagd_coercions`), and the tests at
the end of this file show each one with the Python core's answer, vexil's, the JavaScript core's
(run here) and flagd Go's (a table read from its source).

Not listed because they are interface choices rather than different answers:
- where the reference returns the caller's default value (DISABLED, DEFAULT without a default
  variant, ERROR), vexil returns value None and the caller substitutes its own default;
- strict compilation (the default) refuses definitions the reference accepts and then fails on
  at evaluation time, or silently never matches (test_validation.py); `compile_flag(...,
  strict=False)` accepts them and reproduces the reference's run-time behaviour exactly.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.reference import (
    Outcome,
    ReferenceFlag,
    definition,
    flagd_coercions,
    typed_json,
    vexil_outcome,
)
from tests.support.rules import reference_value, vexil_value
from tests.support.strategies import EDGE_VALUES
from vexil.engine import ValueType

BOOLS = {"on": True, "off": False}


def both(
    variants: dict[str, Any],
    default: str | None,
    targeting: Any,
    context: dict[str, Any],
    value_type: ValueType,
    evaluators: dict[str, Any] | None = None,
) -> tuple[Outcome, Outcome]:
    flag = definition(variants, default, targeting)
    return (
        ReferenceFlag("f", flag, evaluators).outcome(context, value_type, python_core=True),
        vexil_outcome("f", flag, context, value_type, evaluators),
    )


def test_integer_request_of_an_integral_float_variant() -> None:
    """Reference: TYPE_MISMATCH.  vexil: the int.

    Flag definitions reach vexil through JSON and protobuf Structs, where every number is a
    double: a variant written `5` can arrive as `5.0`.  Refusing it would make an integer flag
    unusable depending on which door it came in by, so an integral float is served as the int
    it represents; a non-integral float is still a TYPE_MISMATCH."""
    ref, ours = both({"five": 5.0}, "five", None, {}, ValueType.INT)
    assert (ref.reason, ref.error_code) == ("ERROR", "TYPE_MISMATCH")
    assert (ours.value, type(ours.value), ours.variant, ours.reason) == (5, int, "five", "STATIC")
    ref, ours = both({"half": 0.5}, "half", None, {}, ValueType.INT)
    assert ref.error_code == ours.error_code == "TYPE_MISMATCH"
    # Only within int64: no integer field of any door carries 1e20 (flagd's ResolveInt answered
    # "does not fit in int64", vexil.v1 a double), so it is the float flag it looks like.
    for beyond in (1e20, 2.0**63, -(2.0**64)):
        ref, ours = both({"big": beyond}, "big", None, {}, ValueType.INT)
        assert ref.error_code == ours.error_code == "TYPE_MISMATCH", beyond
    ref, ours = both({"low": -(2.0**63)}, "low", None, {}, ValueType.INT)
    assert (ours.value, type(ours.value)) == (-(2**63), int)


def test_float_request_of_a_boolean_variant() -> None:
    """Reference: 1.0 (its float check accepts Python's bool, an int subclass, and then
    converts it).  vexil: TYPE_MISMATCH, as OpenFeature specifies and as the reference itself
    answers for an integer request of a boolean."""
    ref, ours = both(BOOLS, "on", None, {}, ValueType.FLOAT)
    assert (ref.value, ref.variant, ref.error_code) == (1.0, "on", None)
    assert (ours.reason, ours.error_code) == ("ERROR", "TYPE_MISMATCH")
    ref, ours = both(BOOLS, "on", None, {}, ValueType.INT)
    assert ref.error_code == ours.error_code == "TYPE_MISMATCH"


def test_log_does_not_print(capsys: Any) -> None:
    """Reference: `log` writes its argument to standard output.  vexil: returns it silently
    (the engine is pure; a server must not write to stdout once per evaluation)."""
    ref, ours = both(BOOLS, "off", {"if": [{"log": {"var": "x"}}, "on", "off"]}, {"x": 1}, ValueType.BOOL)
    assert ref == ours
    printed = capsys.readouterr().out
    assert printed == "1\n"  # the reference's print, and only the reference's


def test_ref_names_are_matched_by_name_not_by_json_text() -> None:
    """Reference: `$ref` is replaced with a regular expression over the flags' JSON text, which
    escapes non-ASCII characters, so a name like "éu" is never found (PARSE_ERROR).  vexil
    resolves references structurally, whatever the name."""
    rule = {"if": [{"$ref": "éu"}, "on", "off"]}
    ref, ours = both(BOOLS, "off", rule, {}, ValueType.BOOL, {"éu": True})
    assert ref.error_code == "PARSE_ERROR"
    assert (ours.variant, ours.reason) == ("on", "TARGETING_MATCH")


def test_ref_bodies_are_not_spliced_as_text() -> None:
    """Reference: the evaluator is spliced into the JSON text as an `re.sub` replacement, so a
    backslash in it is taken as an escape (the string changes) and non-ASCII text fails the
    whole flag set ("bad escape \\u").  vexil uses the evaluator as written."""
    rule = {"if": [{"$ref": "isX"}, "on", "off"]}
    evaluators = {"isX": {"==": [{"var": "s"}, "a\\b"]}}
    ref, ours = both(BOOLS, "off", rule, {"s": "a\\b"}, ValueType.BOOL, evaluators)
    assert ref.variant == "off"
    assert ours.variant == "on"
    evaluators = {"isX": {"==": [{"var": "s"}, "España"]}}
    try:
        ReferenceFlag("f", definition(BOOLS, "off", rule), evaluators)
        raise AssertionError("the reference accepted it")
    except Exception as exc:  # re.error: bad escape \u
        assert "escape" in str(exc)
    assert (
        vexil_outcome(
            "f", definition(BOOLS, "off", rule), {"s": "España"}, ValueType.BOOL, evaluators
        ).variant
        == "on"
    )


def test_refs_inside_evaluators_resolve_in_any_order() -> None:
    """Reference: one substitution pass per evaluator in definition order, so an evaluator may
    refer only to evaluators defined after it; otherwise the `$ref` is left in place and fails
    as an unknown operator.  vexil resolves references recursively (refusing cycles)."""
    rule = {"if": [{"$ref": "b"}, "on", "off"]}
    earlier = {"a": {"==": [{"var": "country"}, "US"]}, "b": {"$ref": "a"}}
    later = {"b": {"$ref": "a"}, "a": {"==": [{"var": "country"}, "US"]}}
    ref_earlier, ours_earlier = both(BOOLS, "off", rule, {"country": "US"}, ValueType.BOOL, earlier)
    ref_later, ours_later = both(BOOLS, "off", rule, {"country": "US"}, ValueType.BOOL, later)
    assert ref_earlier.error_code == "PARSE_ERROR"
    assert ref_later.variant == ours_later.variant == ours_earlier.variant == "on"


def test_refs_only_apply_to_targeting() -> None:
    """Reference: the text substitution also rewrites variant values (and metadata) that happen
    to look like `{"$ref": name}`.  vexil treats variants as data: `$evaluators` are rule
    fragments, and an object variant is served exactly as written."""
    variants = {"on": {"$ref": "a"}, "off": {}}
    ref, ours = both(variants, "on", None, {}, ValueType.OBJECT, {"a": {"x": 1}})
    assert ref.value == {"x": 1}
    assert ours.value == {"$ref": "a"}


def test_a_ref_to_a_missing_evaluator_makes_the_flag_a_parse_error(js_core: Any) -> None:
    """Python core: PARSE_ERROR only when evaluation reaches the `$ref`.  vexil, as flagd and
    its JavaScript core (which substitute `$ref`s when a flag is loaded): that flag answers
    PARSE_ERROR whatever the context; the other flags of the file are not affected."""
    targeting = {"if": [{"var": "beta"}, {"$ref": "nope"}, "off"]}
    words = {"on": "yes", "off": "no"}
    ref, ours = both(words, "on", targeting, {"beta": False}, ValueType.STRING)
    assert (ref.variant, ref.reason) == ("off", "TARGETING_MATCH")
    assert (ours.reason, ours.error_code) == ("ERROR", "PARSE_ERROR")
    flags = {"flags": {"f": definition(words, "on", targeting), "g": definition(words, "on", None)}}
    (js, other) = js_core.resolve([(flags, [("f", {"beta": False})]), (flags, [("g", {})])])
    assert (js[0]["reason"], js[0]["errorCode"]) == ("ERROR", "PARSE_ERROR")
    assert other[0]["reason"] == "STATIC"


# -- coercions: where vexil answers as flagd, not as the Python core ---------------------------------

NAN_ERROR = ("error", "NaN")
"""The JavaScript core's JSONLogic engine (json-logic-engine) throws where a value is NaN, so a
rule reading a string that is no number fails there (the flag is an ERROR); flagd Go reads NaN."""


def plain(answer: tuple[Any, ...]) -> Any:
    """A rule value from `reference_value` / `vexil_value` as a plain value."""
    if answer[0] == "error":
        return answer
    return _untyped(answer[1])


def _untyped(typed: Any) -> Any:
    kind = typed[0]
    if kind == "null":
        return None
    if kind == "list":
        return [_untyped(item) for item in typed[1]]
    return typed[1]


def coercion_cases(js_core: Any, rows: list[tuple[Any, dict[str, Any], Any, Any, Any]]) -> None:
    """Each row: rule, context, the Python core's value, flagd Go's value (= vexil's), the
    JavaScript core's.  All but flagd Go's are computed here."""
    js = js_core.rule_values([(rule, context) for rule, context, *_ in rows])
    for (rule, context, python, go, javascript), js_answer in zip(rows, js, strict=True):
        where = f"{rule} with {context}"
        assert plain(reference_value(rule, context, python_core=True)) == python, where
        ours = plain(vexil_value(rule, context))
        assert ours == go and type(ours) is type(go), where
        assert plain(reference_value(rule, context)) == ours, where  # what the comparisons expect
        expected_js = javascript if javascript == NAN_ERROR else ("value", javascript)
        assert js_answer == expected_js, where


TESTER = {"beta": 1, "optout": 0, "flag": True}


def test_strict_equality_keeps_booleans_and_numbers_apart(js_core: Any) -> None:
    """Python core: `===` is Python's `==`, where `1 == True`.  vexil: true and false are never 1
    and 0, as JavaScript's `===` and flagd Go's `hardEquals` (which compares kinds first).
    Loose `==` still coerces, as in JavaScript (`1 == true`)."""
    coercion_cases(
        js_core,
        [
            ({"===": [{"var": "beta"}, True]}, TESTER, True, False, False),
            ({"===": [{"var": "optout"}, False]}, TESTER, True, False, False),
            ({"!==": [{"var": "beta"}, True]}, TESTER, False, True, True),
            ({"===": [{"var": "beta"}, {"var": "flag"}]}, TESTER, True, False, False),
            ({"===": [{"var": "beta"}, 1.0]}, TESTER, True, True, True),
            ({"==": [{"var": "beta"}, True]}, TESTER, True, True, True),
            ({"!=": [{"var": "optout"}, False]}, TESTER, False, False, False),
        ],
    )
    rule = {"if": [{"===": [{"var": "beta"}, True]}, "on", "off"]}
    ref, ours = both(BOOLS, "off", rule, TESTER, ValueType.BOOL)
    assert (ref.variant, ours.variant) == ("on", "off")
    flags = {"flags": {"f": definition({"on": "on", "off": "off"}, "off", rule)}}
    ((js,),) = js_core.resolve([(flags, [("f", TESTER)])])
    assert js["variant"] == "off"


def test_in_does_not_find_a_boolean_among_numbers(js_core: Any) -> None:
    """Python core: `in` is Python's `in`, so true is found where 1 is (and 0 where false is).
    vexil: not found, as JavaScript's `includes` and flagd Go's `in` (which compares a
    non-number needle with `==` on Go values; a number against a boolean element panics there:
    an error, not a match)."""
    coercion_cases(
        js_core,
        [
            ({"in": [{"var": "flag"}, [1, 2, 3]]}, TESTER, True, False, False),
            ({"in": [{"var": "flag"}, [1, 2, 3, 4, 5, 6]]}, TESTER, True, False, False),
            ({"in": [{"var": "optout"}, [False, "x"]]}, TESTER, True, False, False),
            ({"in": [{"var": "beta"}, [1.0, 2]]}, TESTER, True, True, True),
            ({"in": [{"var": "flag"}, "true story"]}, TESTER, False, True, True),
        ],
    )


def test_null_against_a_string_compares_numbers(js_core: Any) -> None:
    """Python core: `null` meets a string in `<`, `<=`, `>`, `>=` as the text "null", so a
    missing attribute is "less than" "silver".  vexil: as JavaScript and flagd Go (`less`
    compares strings only when both are strings, else `ToNumber` both): null is 0, the string its
    number (NaN for a word, so neither less nor greater)."""
    coercion_cases(
        js_core,
        [
            ({"<": [{"var": "missing"}, "silver"]}, {}, True, False, False),
            ({">": [{"var": "missing"}, ""]}, {}, True, False, False),
            ({"<": [{"var": "missing"}, "5"]}, {}, False, True, True),
            ({">=": ["1", {"var": "missing"}]}, {}, False, True, True),
            ({"<=": [{"var": "missing"}, "0"]}, {}, False, True, True),
        ],
    )


def test_modulo_takes_the_sign_of_the_dividend(js_core: Any) -> None:
    """Python core: Python's `%`, the sign of the divisor (-7 % 3 is 2).  vexil: JavaScript's
    remainder and flagd Go's `math.Mod`, the sign of the dividend (-1).  Integers stay integers
    (as in the Python core); JSON cannot tell the JavaScript core's -1 from -1.0."""
    coercion_cases(
        js_core,
        [
            ({"%": [-7, 3]}, {}, 2, -1, -1),
            ({"%": [{"var": "a"}, -3]}, {"a": 7}, -2, 1, 1),
            ({"%": [{"var": "a"}, 2]}, {"a": -7.5}, 0.5, -1.5, -1.5),
            ({"%": [{"var": "a"}, 3]}, {"a": -6}, 0, 0, 0),
        ],
    )


def test_a_blank_string_is_zero(js_core: Any) -> None:
    """Python core: `float("")` fails, so "" is NaN and `"" == 0` is false.  vexil: JavaScript's
    `Number("")` and `Number("  ")` are 0, and so is flagd Go's `ToNumber` of a blank string."""
    coercion_cases(
        js_core,
        [
            ({"==": ["", 0]}, {}, False, True, True),
            ({"==": [{"var": "a"}, 0]}, {"a": "  "}, False, True, True),
            ({"<": [{"var": "a"}, 1]}, {"a": ""}, False, True, True),
            ({"==": [{"var": "a"}, False]}, {"a": ""}, False, True, True),
        ],
    )


def test_only_javascript_number_spellings_are_numbers(js_core: Any) -> None:
    """Python core: `float()` reads "1_000" as 1000 and non-ASCII digits ("١٢") as 12.  vexil:
    NaN, as flagd Go (`strconv.ParseFloat` refuses both) and JavaScript (`Number` too; the
    JavaScript core then fails the rule, as it does for any NaN)."""
    coercion_cases(
        js_core,
        [
            ({"==": [{"var": "a"}, 1000]}, {"a": "1_000"}, True, False, NAN_ERROR),
            ({"==": [{"var": "a"}, 12]}, {"a": "١٢"}, True, False, NAN_ERROR),
            ({"==": [{"var": "a"}, 1000]}, {"a": " 1e3 "}, True, True, True),
        ],
    )


def test_booleans_print_as_javascript_prints_them(js_core: Any) -> None:
    """Python core: `cat` of true is "True" (Python's `str` of an int subclass).  vexil: "true",
    as JavaScript's `String(true)` and flagd Go's `cat`; arrays print their booleans alike."""
    coercion_cases(
        js_core,
        [
            ({"cat": [True]}, {}, "True", "true", "true"),
            ({"cat": ["is-", {"var": "flag"}]}, TESTER, "is-True", "is-true", "is-true"),
            ({"cat": [{"var": "a"}]}, {"a": [True, False]}, "True,False", "true,false", "true,false"),
        ],
    )


COERCING_OPS = ["===", "!==", "in", "<", "<=", ">", ">=", "%", "==", "!=", "+", "cat"]


def _same_in_javascript(value: Any) -> bool:
    """Values JavaScript holds and prints as the Python core does: not -0 (`String(-0)` is "0" in
    JavaScript, "-0" in Python and flagd Go), no float that 15 significant digits without an
    exponent do not print exactly (the Python core's `%.15g`; JavaScript prints the shortest
    exact form, `1e16` as "10000000000000000"), and no integer beyond 2**53 (a double there, an
    exact integer here), and no array holding null (`String([null])` is "" in JavaScript, "null"
    in the Python core).  Those differences are not among the ones shown above."""
    if isinstance(value, float):
        text = f"{value:.15g}"
        if value != value or value in (float("inf"), float("-inf")):
            return True
        return not (value == 0 and text.startswith("-")) and "e" not in text and float(text) == value
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= 2**53
    if isinstance(value, list):
        return all(item is not None and _same_in_javascript(item) for item in value)
    if isinstance(value, dict):
        return all(_same_in_javascript(item) for item in value.values())
    return True


JS_EDGE_VALUES = [value for value in EDGE_VALUES if _same_in_javascript(value)]


@pytest.mark.parametrize("op", COERCING_OPS)
def test_flagd_coercions_agree_with_the_javascript_core(js_core: Any, op: str) -> None:
    """Every pair of edge values where the generated comparisons' reference answers otherwise than
    the Python core (`flagd_coercions`) gives what the JavaScript core gives, wherever that core
    gives a value.  So the comparisons allow exactly the differences shown above."""
    cases = []
    for a, b in itertools.product(JS_EDGE_VALUES, repeat=2):
        rule, context = {op: [{"var": "a"}, {"var": "b"}]}, {"a": a, "b": b}
        flagd = reference_value(rule, context)
        if flagd != reference_value(rule, context, python_core=True):
            cases.append((rule, context, flagd))
    js = js_core.rule_values([(rule, context) for rule, context, _ in cases])
    compared = 0
    for (rule, context, flagd), js_answer in zip(cases, js, strict=True):
        if js_answer[0] == "value":
            compared += 1
            expected = flagd[1]
            assert js_answer[1] == _untyped(expected) or _same_number(js_answer[1], expected), (
                f"{rule} with {context}: flagd coercions {flagd}, JavaScript core {js_answer}"
            )
    assert compared or not cases
    with flagd_coercions():  # leaves the Python core as it was
        pass
    assert reference_value({"%": [-7, 3]}, {}, python_core=True) == ("value", typed_json(2))


def _same_number(js: Any, typed: Any) -> bool:
    return isinstance(js, int | float) and typed[0] in ("int", "float") and float(js) == float(typed[1])
