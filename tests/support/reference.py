"""The reference evaluator (`openfeature-flagd-core`) behind the same call shape as vexil's.

Both are driven with the same flag definition, `$evaluators`, context and requested type, and
their answers are reduced to the same comparable `Outcome`.  The reference is used only through
its public API: a flag-set JSON goes into `FlagdCore.set_flags`, a context into
`resolve_<type>_value`.  Exceptions it raises are mapped as the OpenFeature SDK maps them
(an `OpenFeatureError` carries its code; anything else is GENERAL).
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple
from unittest import mock

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

from tests.support.flags import definition_fields, flag_model
from vexil.engine import Resolution, ValueType, compile_flag, evaluate

logging.getLogger("openfeature.contrib").setLevel(logging.CRITICAL + 1)
"""The reference logs every malformed rule it meets at ERROR; the tests generate thousands."""

_TARGETING_MODULE = importlib.import_module("openfeature.contrib.tools.flagd.core.targeting.targeting")
"""The module whose `time.time()` supplies the reference's `$flagd.timestamp` (patched to NOW)."""

CASES = {"count": 0}
"""Flag x context x type comparisons made in this run (reported in pytest's summary)."""
RULES = {"cases": 0}
"""Rule evaluations compared (`tests.support.rules.check`) in this run."""
FRACTIONAL = {"js": 0, "python": 0}
"""Resolutions compared with the JavaScript core and (CBOR mode) with the Python core."""

NOW = 1_767_225_600
"""A fixed `$flagd.timestamp` for both engines (2026-01-01T00:00:00Z)."""

CBOR = {"fractionalHashing": "cbor"}
"""Flag-set metadata choosing the Python core's `fractional` hashing: every comparison with that
core compiles vexil's side in this mode (flagd's own string hashing is compared with the
JavaScript core in test_fractional_flagd.py)."""

TYPED = (ValueType.BOOL, ValueType.STRING, ValueType.INT, ValueType.FLOAT, ValueType.OBJECT)

_METHODS = {
    ValueType.BOOL: "resolve_boolean_value",
    ValueType.STRING: "resolve_string_value",
    ValueType.INT: "resolve_integer_value",
    ValueType.FLOAT: "resolve_float_value",
    ValueType.OBJECT: "resolve_object_value",
}

_CALLER_DEFAULT = object()
"""Passed as the caller's default to the reference, to tell 'the caller's default' apart."""


class Outcome(NamedTuple):
    """What both engines are compared on."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None

    def comparable(self) -> tuple[Any, ...]:
        return (typed_json(self.value), self.variant, self.reason, self.error_code)


def typed_json(value: Any) -> Any:
    """A value with its JSON types made explicit (1, 1.0 and true are different answers)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    if isinstance(value, list | tuple):
        return ("list", tuple(typed_json(v) for v in value))
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((k, typed_json(v)) for k, v in value.items())))
    return ("other", repr(value))


def definition(
    variants: Mapping[str, Any],
    default_variant: str | None,
    targeting: Any,
    state: str = "ENABLED",
) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state, "variants": dict(variants)}
    if default_variant is not None:
        out["defaultVariant"] = default_variant
    if targeting is not None:
        out["targeting"] = targeting
    return out


class ReferenceFlag:
    """One flag loaded into a fresh reference evaluator, ready to resolve contexts."""

    def __init__(
        self, key: str, flag_definition: Mapping[str, Any], evaluators: Mapping[str, Any] | None = None
    ) -> None:
        self.key = key
        self.core = FlagdCore()
        flag_set: dict[str, Any] = {"flags": {key: copy.deepcopy(dict(flag_definition))}}
        if evaluators:
            flag_set["$evaluators"] = copy.deepcopy(dict(evaluators))
        self.core.set_flags(flag_set)

    def outcome(self, context: Mapping[str, Any], value_type: ValueType) -> Outcome:
        attributes = {k: copy.deepcopy(v) for k, v in context.items() if k != "targetingKey"}
        ctx = EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)
        clock = SimpleNamespace(time=lambda: float(NOW))
        try:
            with mock.patch.object(_TARGETING_MODULE, "time", clock):
                details = getattr(self.core, _METHODS[value_type])(self.key, _CALLER_DEFAULT, ctx)
        except OpenFeatureError as exc:
            return Outcome(None, None, "ERROR", str(exc.error_code))
        except Exception:
            return Outcome(None, None, "ERROR", "GENERAL")
        value = None if details.value is _CALLER_DEFAULT else details.value
        return Outcome(value, details.variant, str(details.reason), None)


def reference_outcome(
    key: str,
    flag_definition: Mapping[str, Any],
    context: Mapping[str, Any],
    value_type: ValueType,
    evaluators: Mapping[str, Any] | None = None,
) -> Outcome:
    return ReferenceFlag(key, flag_definition, evaluators).outcome(context, value_type)


def outcome(resolution: Resolution) -> Outcome:
    return Outcome(
        resolution.value,
        resolution.variant,
        str(resolution.reason),
        None if resolution.error_code is None else str(resolution.error_code),
    )


def vexil_outcome(
    key: str,
    flag_definition: Mapping[str, Any],
    context: Mapping[str, Any],
    value_type: ValueType,
    evaluators: Mapping[str, Any] | None = None,
    *,
    strict: bool = False,
) -> Outcome:
    compiled = compile_flag(
        flag_model(key, **definition_fields(flag_definition), environment="test"),
        evaluators,
        flag_set_metadata=CBOR,
        strict=strict,
    )
    return outcome(evaluate(compiled, context, value_type, now=NOW))
