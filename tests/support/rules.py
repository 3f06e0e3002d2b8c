"""A rule's raw value, vexil against the reference (`openfeature-flagd-core`'s `targeting()`).

Flag-level comparisons only see which variant a rule selects; a wrong intermediate value often
selects the same one.  `check` compares the rule's own result: vexil's compiled closure against
the JSONLogic evaluator the reference uses inside `FlagdCore`, on the same rule and context.
Errors are compared by kind: PARSE (unknown operator) or GENERAL (anything else).  The reference
runs with flagd's coercions where the Python core's differ (`reference.flagd_coercions`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from tests.support.reference import NOW, RULES, coercions, fixed_clock, typed_json
from vexil.engine.errors import RuleParseError
from vexil.engine.fractional import CBOR
from vexil.engine.rules import compile_rule

_reference_targeting = importlib.import_module("openfeature.contrib.tools.flagd.core.targeting").targeting
_evaluation_context = importlib.import_module("openfeature.evaluation_context").EvaluationContext

FLAG_KEY = "my-flag"


def reference_value(
    rule: Any, context: Mapping[str, Any], key: str = FLAG_KEY, *, python_core: bool = False
) -> tuple[Any, ...]:
    """The rule's value; with flagd's coercions unless `python_core`."""
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    ctx = _evaluation_context(targeting_key=context.get("targetingKey"), attributes=attributes)
    patched = coercions(python_core=python_core)  # outside `try`: asking wrongly must raise
    try:
        with patched, fixed_clock():
            return ("value", typed_json(_reference_targeting(key, rule, ctx)))
    except ReferenceError:
        return ("error", "PARSE")
    except Exception:
        return ("error", "GENERAL")


def vexil_value(rule: Any, context: Mapping[str, Any], key: str = FLAG_KEY) -> tuple[Any, ...]:
    expr, full = compile_rule(rule, key, variants=frozenset(), strict=False, fractional_hashing=CBOR)
    data: Any = context
    if full:
        data = dict(context)
        data["$flagd"] = {"flagKey": key, "timestamp": NOW}
        data["targetingKey"] = context.get("targetingKey")
    try:
        return ("value", typed_json(expr.value if expr.const else expr.fn(data)))  # type: ignore[misc]
    except RuleParseError:
        return ("error", "PARSE")
    except Exception:
        return ("error", "GENERAL")


def check(rule: Any, context: Mapping[str, Any], key: str = FLAG_KEY) -> None:
    RULES["cases"] += 1
    expected = reference_value(rule, context, key)
    actual = vexil_value(rule, context, key)
    assert actual == expected, (
        f"\nrule: {rule!r}\ncontext: {context!r}\nreference: {expected}\nvexil: {actual}"
    )
