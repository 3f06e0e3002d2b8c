"""JSONLogic's value semantics: truthiness, number and string coercion, loose comparison.

JSONLogic was born in JavaScript and keeps JavaScript's coercions; flagd's reference evaluator
(`openfeature-flagd-core`, through `panzi-json-logic`) implements them in Python with a few
Python-specific twists (for example `true` prints as `True` inside `cat`, `null == 0` is true,
and Python's `float()` parses `"1_000"`).  vexil must give the same answers, so these functions
reproduce that behaviour exactly, quirks included; the tests compare them with the reference on
generated values.  Everything here is a pure function of JSON values.
"""

from __future__ import annotations

from math import isnan
from typing import Any

from vexil.engine.budget import build, spend

NAN = float("nan")
"""The one NaN the coercions produce (identity matters to Python's `in` on lists)."""

NUMERIC = (int, float)
"""Python numbers, bool included (bool is an int: JSONLogic treats true as 1)."""

_INFINITY_SPELLINGS = frozenset(("inf", "-inf", "+inf"))
_SHORT = 64
"""Strings up to this long are parsed as numbers without charging the evaluation's budget."""


def truthy(value: Any) -> bool:
    """JSONLogic truthiness: like Python's, except NaN is false and every object is true."""
    if value is None:
        return False
    if value.__class__ is bool:
        return value
    if isinstance(value, float):
        return not isnan(value) and value != 0.0
    if isinstance(value, str | int | list):
        return bool(value)
    return True


def to_number(value: Any) -> int | float:
    """JavaScript's `Number(value)` as the reference computes it (bools stay bools: they are ints)."""
    if isinstance(value, NUMERIC):
        return value
    if value is None:
        return 0
    if isinstance(value, list):
        if not value:
            return 0
        if len(value) > 1:
            return NAN
        return to_number(value[0])
    if isinstance(value, dict):
        return NAN
    if isinstance(value, str) and len(value) > _SHORT:
        build(len(value))  # parsing is linear in the length: a long string costs its length
    if isinstance(value, str) and value.strip().lower() in _INFINITY_SPELLINGS:
        return NAN
    try:
        return float(value)
    except ValueError:
        # A failed parse (an exception) costs what ten cheap nodes do: a loop comparing numbers
        # with a word would otherwise be the costliest thing a budgeted evaluation can do.
        spend(10)
        return NAN


def to_string(value: Any) -> str:
    """JavaScript's `String(value)` as the reference computes it.

    Floats print with 15 significant digits; booleans go through `str()` of an int subclass and
    so print as `True`/`False` (a reference quirk kept for identical `cat` results); `null` is
    `null`; arrays join their items with commas; objects are `[object Object]`.  The string of an
    array is charged to the evaluation's budget before it is built (ten operations an element,
    about what printing one costs) and after (its length): comparing each element of a loop with
    a string would otherwise print a whole context-sized array per element, unbudgeted.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        spend(10 * len(value))
        text = ",".join([to_string(item) for item in value])
        build(len(text))
        return text
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def loose_equals(a: Any, b: Any) -> bool:
    """JSONLogic `==`: same-type values compare directly (arrays and objects by identity), mixed
    types coerce towards numbers, and strings meet arrays/objects through their string form."""
    a_type = type(a)
    if a_type is type(b):
        if a_type is list or a_type is dict:
            return a is b
        return bool(a == b)
    if isinstance(a, NUMERIC):
        if isinstance(b, NUMERIC):
            return bool(a == b)
        return bool(a == to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) == b)
    if a is None or b is None:
        return False
    if isinstance(a, str):
        if isinstance(b, list | dict):
            return a == to_string(b)
        raise TypeError(f"cannot compare {a_type.__name__} with {type(b).__name__}")
    if isinstance(a, list | dict):
        if isinstance(b, list | dict):
            return False
        if isinstance(b, str):
            return to_string(a) == b
    raise TypeError(f"cannot compare {a_type.__name__} with {type(b).__name__}")


def less(a: Any, b: Any) -> bool:
    """JSONLogic `<` between two values: numeric if either side is a number, else string order."""
    if isinstance(a, NUMERIC):
        return bool(a < to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) < b)
    if isinstance(a, str):
        return a < to_string(b)
    if isinstance(b, str):
        return to_string(a) < b
    return bool(to_number(a) < to_number(b))


def less_or_equal(a: Any, b: Any) -> bool:
    """JSONLogic `<=` between two values (same coercion rules as `less`)."""
    if isinstance(a, NUMERIC):
        return bool(a <= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) <= b)
    if isinstance(a, str):
        return a <= to_string(b)
    if isinstance(b, str):
        return to_string(a) <= b
    return bool(to_number(a) <= to_number(b))


def greater(a: Any, b: Any) -> bool:
    """JSONLogic `>` between two values.  Not `less(b, a)`: with NaN and with mixed
    string/number operands the coercion depends on which side is which."""
    if isinstance(a, NUMERIC):
        return bool(a > to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) > b)
    if isinstance(a, str):
        return a > to_string(b)
    if isinstance(b, str):
        return to_string(a) > b
    return bool(to_number(a) > to_number(b))


def greater_or_equal(a: Any, b: Any) -> bool:
    """JSONLogic `>=` between two values (same coercion rules as `greater`)."""
    if isinstance(a, NUMERIC):
        return bool(a >= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) >= b)
    if isinstance(a, str):
        return a >= to_string(b)
    if isinstance(b, str):
        return to_string(a) >= b
    return bool(to_number(a) >= to_number(b))
