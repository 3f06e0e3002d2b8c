"""JSONLogic's value semantics: truthiness, number and string coercion, loose comparison.

JSONLogic was born in JavaScript and keeps JavaScript's coercions.  vexil follows flagd: where
flagd's own JSONLogic (flagd Go, through diegoholiveira/jsonlogic v3) and flagd's JavaScript core
(`@openfeature/flagd-core`) agree, that is the answer, even where the Python core
(`openfeature-flagd-core`, through `panzi-json-logic`) answers with a Python-ism.  So, unlike the
Python core: `true` prints as `true` (not `True`), `""` and blank strings are the number 0, a
string is a number only in JavaScript's decimal spelling (no `1_000`, no non-ASCII digits), and
`null` meets a string in `<`-like comparisons as the number 0 (not as the text "null").
Elsewhere vexil still answers as the Python core does (for example `null == 0` is true there and
in the JavaScript core, false in flagd Go); the tests compare these functions with the Python
core on generated values, with exactly these differences (tests/engine/test_deviations.py).
Everything here is a pure function of JSON values.
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
_JS_WHITESPACE = (
    " \t\n\v\f\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""What JavaScript's `Number()` trims (WhiteSpace and LineTerminator); Python's `float()` also
trims the ASCII separators \\x1c-\\x1f and \\x85, which JavaScript does not."""
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
    """JavaScript's `Number(value)` (bools stay bools: they are ints, and compare as 1 and 0).

    A string is trimmed of JavaScript's whitespace; nothing left is 0 (as in JavaScript and flagd
    Go), and the rest must be a decimal number as both spell it: Python's `float()` also takes
    `1_000` and non-ASCII digits, which are NaN here."""
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
    text = value.strip(_JS_WHITESPACE)
    if not text:
        return 0
    if text.lower() in _INFINITY_SPELLINGS:
        return NAN
    if text.isascii() and "_" not in text and text[0] > " " and text[-1] > " ":
        try:
            return float(text)
        except ValueError:
            pass
    # A failed parse (an exception) costs what ten cheap nodes do: a loop comparing numbers
    # with a word would otherwise be the costliest thing a budgeted evaluation can do.
    spend(10)
    return NAN


def to_string(value: Any) -> str:
    """JavaScript's `String(value)` as the reference computes it.

    Floats print with 15 significant digits; booleans print as `true`/`false` (the Python core's
    `True`/`False` is a Python-ism flagd Go and the JavaScript core do not share); `null` is
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
        if value.__class__ is bool:
            return "true" if value else "false"
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


def strict_equals(a: Any, b: Any) -> bool:
    """JSONLogic `===`: true and false are not 1 and 0 (JavaScript's strict equality, flagd Go's
    `hardEquals`); otherwise Python's `==` (1 === 1.0, arrays by content) as in the Python core."""
    if a.__class__ is bool or b.__class__ is bool:
        return a is b
    return bool(a == b)


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
    """JSONLogic `<` between two values: numeric if either side is a number or null, else string
    order (null against a string is 0 against its number, as in JavaScript and flagd Go; the
    Python core compares the text "null")."""
    if isinstance(a, NUMERIC):
        return bool(a < to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) < b)
    if isinstance(a, str):
        return a < to_string(b) if b is not None else bool(to_number(a) < 0)
    if isinstance(b, str):
        return to_string(a) < b if a is not None else bool(to_number(b) > 0)
    return bool(to_number(a) < to_number(b))


def less_or_equal(a: Any, b: Any) -> bool:
    """JSONLogic `<=` between two values (same coercion rules as `less`)."""
    if isinstance(a, NUMERIC):
        return bool(a <= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) <= b)
    if isinstance(a, str):
        return a <= to_string(b) if b is not None else bool(to_number(a) <= 0)
    if isinstance(b, str):
        return to_string(a) <= b if a is not None else bool(to_number(b) >= 0)
    return bool(to_number(a) <= to_number(b))


def greater(a: Any, b: Any) -> bool:
    """JSONLogic `>` between two values.  Not `less(b, a)`: with NaN and with mixed
    string/number operands the coercion depends on which side is which."""
    if isinstance(a, NUMERIC):
        return bool(a > to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) > b)
    if isinstance(a, str):
        return a > to_string(b) if b is not None else bool(to_number(a) > 0)
    if isinstance(b, str):
        return to_string(a) > b if a is not None else bool(to_number(b) < 0)
    return bool(to_number(a) > to_number(b))


def greater_or_equal(a: Any, b: Any) -> bool:
    """JSONLogic `>=` between two values (same coercion rules as `greater`)."""
    if isinstance(a, NUMERIC):
        return bool(a >= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) >= b)
    if isinstance(a, str):
        return a >= to_string(b) if b is not None else bool(to_number(a) >= 0)
    if isinstance(b, str):
        return to_string(a) >= b if a is not None else bool(to_number(b) <= 0)
    return bool(to_number(a) >= to_number(b))
