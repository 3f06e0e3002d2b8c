"""vexil against the reference evaluator on generated flags and contexts.

Every generated case is a flag definition (with `$evaluators`) and several contexts; each
context is resolved for every requested type by both engines, and value, variant, reason and
error code must be equal.  vexil compiles the flag non-strictly here (everything the reference
accepts, with the reference's run-time behaviour for mistakes); a strict compile of the same
flag must either be refused with a `FlagValidationError` or answer exactly like the non-strict
one.  The only differences allowed are the documented deviations in `allowed_deviation` (each
has a test with its reasoning in `test_deviations.py`).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.flags import definition_fields, flag_model
from tests.support.reference import CASES, CBOR, NOW, TYPED, Outcome, ReferenceFlag, outcome
from tests.support.strategies import (
    condition_evaluator_sets,
    contexts,
    evaluator_sets,
    flag_definitions,
    flag_keys,
    well_formed_flags,
)
from vexil.engine import FlagValidationError, ValueType, compile_flag, evaluate
from vexil.engine.compiler import missing_reference

pytestmark = pytest.mark.usefixtures("flagd_reference")


def allowed_deviation(
    variants: dict[str, Any],
    value_type: ValueType,
    ref: Outcome,
    ours: Outcome,
    missing_ref: str | None = None,
) -> bool:
    """The deliberate differences (see test_deviations.py).  `missing_ref`: the flag's rule has
    a `$ref` to an evaluator that does not exist."""
    if missing_ref is not None and ours.error_code == "PARSE_ERROR":
        # flagd: the whole flag is a PARSE_ERROR; the Python core: only where the rule reaches it.
        return True
    if value_type is ValueType.INT and ref.error_code == "TYPE_MISMATCH" and ours.error_code is None:
        # An integral float variant asked for as an integer: served as an int.
        raw = variants.get(ours.variant)
        return (
            isinstance(raw, float) and raw.is_integer() and ours.value == int(raw) and type(ours.value) is int
        )
    if value_type is ValueType.FLOAT and ours.error_code == "TYPE_MISMATCH" and ref.error_code is None:
        # A boolean variant asked for as a float: the reference serves 1.0/0.0.
        return isinstance(variants.get(ref.variant), bool)
    return False


def compare_flag(
    key: str, definition: dict[str, Any], evaluators: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    reference = ReferenceFlag(key, definition, evaluators)
    flag = flag_model(key, **definition_fields(definition), environment="test")
    lenient = compile_flag(flag, evaluators, flag_set_metadata=CBOR, strict=False)
    try:
        strict = compile_flag(flag, evaluators, flag_set_metadata=CBOR)
    except FlagValidationError as exc:
        assert exc.message and isinstance(exc.path, str)
        strict = None
    variants = definition["variants"]
    missing_ref = missing_reference(definition.get("targeting"), evaluators)
    for context in ctxs:
        typed: dict[ValueType, Outcome] = {}
        for value_type in TYPED:
            ref = reference.outcome(context, value_type)
            ours = outcome(evaluate(lenient, context, value_type, now=NOW))
            typed[value_type] = ours
            CASES["count"] += 1
            if ref.comparable() != ours.comparable():
                assert allowed_deviation(variants, value_type, ref, ours, missing_ref), (
                    f"\nflag {key!r}: {definition}\nevaluators: {evaluators}\ncontext: {context}\n"
                    f"type {value_type}: reference {ref} != vexil {ours}"
                )
            if strict is not None:
                assert outcome(evaluate(strict, context, value_type, now=NOW)) == ours
        _check_any(lenient, context, variants, typed)


def _check_any(
    compiled: Any, context: dict[str, Any], variants: dict[str, Any], typed: dict[ValueType, Outcome]
) -> None:
    """ANY (no type check) agrees with the typed answers on variant and reason."""
    ours = outcome(evaluate(compiled, context, ValueType.ANY, now=NOW))
    succeeded = [o for o in typed.values() if o.error_code is None]
    if succeeded:
        assert (ours.variant, ours.reason) == (succeeded[0].variant, succeeded[0].reason)
        if ours.variant is not None:
            expected = variants[ours.variant]
            assert ours.value == expected or (isinstance(expected, float) and math.isnan(expected))
    elif len({o.error_code for o in typed.values()}) == 1 and ours.error_code is not None:
        assert ours.error_code == typed[ValueType.BOOL].error_code


differential = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@differential
@given(
    key=flag_keys,
    definition=flag_definitions(),
    evaluators=evaluator_sets,
    ctxs=st.lists(contexts, min_size=1, max_size=3),
)
def test_generated_flags_match_reference(
    key: str, definition: dict[str, Any], evaluators: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    compare_flag(key, definition, evaluators, ctxs)


@differential
@given(
    key=flag_keys,
    definition=well_formed_flags(),
    evaluators=condition_evaluator_sets,
    ctxs=st.lists(contexts, min_size=1, max_size=3),
)
def test_well_formed_flags_match_reference(
    key: str, definition: dict[str, Any], evaluators: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    compare_flag(key, definition, evaluators, ctxs)
