"""The reference evaluator (`openfeature-flagd-core`) behind the same call shape as vexil's.

Both are driven with the same flag definition, `$evaluators`, context and requested type, and
their answers are reduced to the same comparable `Outcome`.  The reference is used only through
its public API: a flag-set JSON goes into `FlagdCore.set_flags`, a context into
`resolve_<type>_value`.  Exceptions it raises are mapped as the OpenFeature SDK maps them
(an `OpenFeatureError` carries its code; anything else is GENERAL).

Where the Python core's JSONLogic coerces as Python does and flagd does not, vexil follows flagd
(flagd Go, whose JSONLogic is diegoholiveira/jsonlogic v3, and the JavaScript core).  Like
fractional's hashing (`CBOR` below), these few coercions are put on the same footing before
comparing: the reference runs with them replaced by their JavaScript definitions
(`flagd_coercions`), written here from JavaScript's rules, not from vexil's code, and checked
against the JavaScript core in test_deviations.py.  Everything else is the Python core's own.
`python_core=True` gives its unmodified answer.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple
from unittest import mock

from json_logic import builtins as json_logic_builtins
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

_PYTHON = SimpleNamespace(
    to_number=json_logic_builtins.to_number,
    to_string=json_logic_builtins.to_string,
    orderings={
        name: getattr(json_logic_builtins, name)
        for name in ("less_than", "less_than_or_equal", "greater_than", "greater_than_or_equal")
    },
    op_in=json_logic_builtins.op_in,
)
_JS_WHITESPACE = (
    " \t\n\v\f\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""ECMAScript's WhiteSpace and LineTerminator: what `Number()` trims."""
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""ECMAScript's StrDecimalLiteral without Infinity (ASCII digits; no `_` separators)."""
_PYTHON_WORDS = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
"""Words the Python core's `float()` reads; left to it (flagd Go's ParseFloat reads them too)."""


def _js_to_number(value: Any) -> Any:
    """`Number(value)` for strings as JavaScript and flagd Go agree: blank is 0, and only the
    decimal spelling parses (Python's `float()` also reads `1_000` and `١٢`)."""
    if not isinstance(value, str):
        return _PYTHON.to_number(value)
    text = value.strip(_JS_WHITESPACE)
    if not text:
        return 0
    if _JS_DECIMAL.fullmatch(text):
        return float(text)
    if _PYTHON_WORDS.fullmatch(text):
        return _PYTHON.to_number(text)
    return math.nan


def _js_to_string(value: Any) -> str:
    """`String(true)` is "true" (the Python core prints Python's `True`)."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(_PYTHON.to_string(value))


def _null_meets_string(python_ordering: Any) -> Any:
    """JavaScript's `<`: null against a string compares numbers (`null` is 0); the Python core
    compares the string "null"."""

    def ordering(a: Any, b: Any) -> bool:
        if (a is None and isinstance(b, str)) or (b is None and isinstance(a, str)):
            return bool(python_ordering(_js_to_number(a), _js_to_number(b)))
        return bool(python_ordering(a, b))

    return ordering


def _js_strict_equals(a: Any, b: Any) -> bool:
    """JavaScript's `===` (flagd Go's `hardEquals`) keeps booleans and numbers apart."""
    return (type(a) is bool) == (type(b) is bool) and bool(a == b)


def _js_in(data: Any = None, needle: Any = None, haystack: Any = None, *_ignored: Any) -> bool:
    """`includes` as JavaScript (and flagd Go's `in`): an array holding 1 does not hold true."""
    if isinstance(haystack, list):
        return any(item is needle or _js_strict_equals(item, needle) for item in haystack)
    return bool(_PYTHON.op_in(data, needle, haystack))


def _js_remainder(data: Any = None, a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    """JavaScript's `%` (flagd Go's `math.Mod`): the sign of the dividend; x % ±Infinity is x."""
    x, y = _js_to_number(a), _js_to_number(b)
    if isinstance(x, int) and isinstance(y, int):
        magnitude = abs(x) % abs(y)  # ZeroDivisionError for 0, as the Python core
        return -magnitude if x < 0 else magnitude
    if y == 0:
        raise ZeroDivisionError("float modulo")
    if math.isnan(x) or math.isnan(y) or math.isinf(x):
        return math.nan
    if math.isinf(y):
        return float(x)
    return math.fmod(x, y)


_ENTERED: set[str] = set()
"""The patches (`_once`) in force now."""


@contextlib.contextmanager
def _once(name: str, patch: Callable[[contextlib.ExitStack], None]) -> Iterator[None]:
    """`patch` in force while inside; entered again inside itself it patches nothing more, so a
    batch of checks can enter it once around them all (`flagd_reference`): patching it anew for
    every check took most of the checks' time."""
    if name in _ENTERED:
        yield
        return
    with contextlib.ExitStack() as stack:
        patch(stack)
        _ENTERED.add(name)
        try:
            yield
        finally:
            _ENTERED.discard(name)


def _patch_coercions(stack: contextlib.ExitStack) -> None:
    operators = _TARGETING_MODULE.OPERATORS
    stack.enter_context(mock.patch.object(json_logic_builtins, "to_number", _js_to_number))
    stack.enter_context(mock.patch.object(json_logic_builtins, "to_string", _js_to_string))
    for name, python_ordering in _PYTHON.orderings.items():
        stack.enter_context(mock.patch.object(json_logic_builtins, name, _null_meets_string(python_ordering)))
    stack.enter_context(
        mock.patch.dict(
            operators,
            {
                "===": lambda data=None, a=None, b=None, *_: _js_strict_equals(a, b),
                "!==": lambda data=None, a=None, b=None, *_: not _js_strict_equals(a, b),
                "in": _js_in,
                "%": _js_remainder,
            },
        )
    )


def flagd_coercions() -> contextlib.AbstractContextManager[None]:
    """The Python core with the coercions flagd and vexil answer differently replaced."""
    return _once("coercions", _patch_coercions)


def coercions(*, python_core: bool) -> contextlib.AbstractContextManager[None]:
    """flagd's coercions, or (`python_core`) the Python core's own, which cannot be had inside
    `flagd_coercions`."""
    if not python_core:
        return flagd_coercions()
    if "coercions" in _ENTERED:
        raise RuntimeError("the Python core's own answer was asked for inside flagd_coercions")
    return contextlib.nullcontext()


def fixed_clock() -> contextlib.AbstractContextManager[None]:
    """The reference's clock stopped at `NOW` (`$flagd.timestamp`)."""
    clock = SimpleNamespace(time=lambda: float(NOW))
    return _once(
        "clock", lambda stack: stack.enter_context(mock.patch.object(_TARGETING_MODULE, "time", clock))
    )


@contextlib.contextmanager
def flagd_reference() -> Iterator[None]:
    """flagd's coercions and the fixed clock, around a batch of comparisons (each comparison
    enters them itself too; inside this, at no cost)."""
    with flagd_coercions(), fixed_clock():
        yield


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

    def outcome(
        self, context: Mapping[str, Any], value_type: ValueType, *, python_core: bool = False
    ) -> Outcome:
        """The resolution; with flagd's coercions (`flagd_coercions`) unless `python_core`."""
        attributes = {k: copy.deepcopy(v) for k, v in context.items() if k != "targetingKey"}
        ctx = EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)
        patched = coercions(python_core=python_core)  # outside `try`: asking wrongly must raise
        try:
            with patched, fixed_clock():
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
