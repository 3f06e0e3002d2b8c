"""Where vexil deliberately answers differently from the reference, and why.

Each test shows both answers.  Everything not listed here is identical (test_differential.py,
test_expressions.py and test_corpus.py compare the two on generated and enumerated inputs).

Not listed because they are interface choices rather than different answers:
- where the reference returns the caller's default value (DISABLED, DEFAULT without a default
  variant, ERROR), vexil returns value None and the caller substitutes its own default;
- strict compilation (the default) refuses definitions the reference accepts and then fails on
  at evaluation time, or silently never matches (test_validation.py); `compile_flag(...,
  strict=False)` accepts them and reproduces the reference's run-time behaviour exactly.
"""

from __future__ import annotations

from typing import Any

from tests.support.reference import Outcome, ReferenceFlag, definition, vexil_outcome
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
        ReferenceFlag("f", flag, evaluators).outcome(context, value_type),
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
