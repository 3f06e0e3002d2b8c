"""Comparison: `==`, `!=`, `===`, `!==`, `<`, `<=`, `>`, `>=` (the last four also in the
three-argument "between" form, `{"<": [low, x, high]}`).

`==` coerces as JavaScript does (`1 == true`); `===` does not: true and false are never 1 and 0
(`coercion.strict_equals`, as flagd Go and the JavaScript core; the Python core's `===` is
Python's `==`, where `1 == True`).

The usual shape is a context attribute compared with a literal; those get closures that test the
common type inline and fall back to the full coercion rules (`coercion.py`) otherwise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from vexil.engine.coercion import (
    greater,
    greater_or_equal,
    less,
    less_or_equal,
    loose_equals,
    strict_equals,
)
from vexil.engine.expr import Expr, Operator, Site, as_fn, dynamic, eager, fixed_arity


def _not_loose_equals(a: Any, b: Any) -> bool:
    return not loose_equals(a, b)


def _strict_not_equals(a: Any, b: Any) -> bool:
    return not strict_equals(a, b)


def _equality(site: Site, loose: Callable[[Any, Any], bool], negate: bool, strict: bool) -> Expr:
    args = site.compile_args()
    if len(args) == 2 and args[0].const != args[1].const:
        # An attribute against a literal (either side: these four operators are symmetric).
        subject, other = (args[0], args[1]) if args[1].const else (args[1], args[0])
        literal = other.value
        if strict:
            return _strict_fast(subject, literal, negate)
        literal_type = literal.__class__
        if literal_type is str or literal_type is int or literal_type is float:
            return _loose_fast(subject, literal, negate)
    return eager(fixed_arity(loose, 2, len(args)), args, boolean=True)


def _strict_fast(subject: Expr, literal: Any, negate: bool) -> Expr:
    """`===` against a literal.  A boolean literal is matched by identity (Python's bools are
    singletons), so 1 and 0 never match it; a number literal also refuses a boolean subject, a
    test made only when the values are equal; other literals cannot equal a boolean."""
    k, fn = subject.key, as_fn(subject)
    kind = literal.__class__
    if kind is bool:
        if negate:
            if k is not None:
                return dynamic(lambda data: data.get(k) is not literal, boolean=True)
            return dynamic(lambda data: fn(data) is not literal, boolean=True)
        if k is not None:
            return dynamic(lambda data: data.get(k) is literal, boolean=True)
        return dynamic(lambda data: fn(data) is literal, boolean=True)
    if kind is int or kind is float:
        if negate:
            if k is not None:
                return dynamic(
                    lambda data: (v := data.get(k)) != literal or v.__class__ is bool, boolean=True
                )
            return dynamic(lambda data: (v := fn(data)) != literal or v.__class__ is bool, boolean=True)
        if k is not None:
            return dynamic(
                lambda data: (v := data.get(k)) == literal and v.__class__ is not bool, boolean=True
            )
        return dynamic(lambda data: (v := fn(data)) == literal and v.__class__ is not bool, boolean=True)
    if negate:
        if k is not None:
            return dynamic(lambda data: data.get(k) != literal, boolean=True)
        return dynamic(lambda data: fn(data) != literal, boolean=True)
    if k is not None:
        return dynamic(lambda data: data.get(k) == literal, boolean=True)
    return dynamic(lambda data: fn(data) == literal, boolean=True)


def _loose_fast(subject: Expr, literal: Any, negate: bool) -> Expr:
    """Same type on both sides: a plain comparison; anything else takes the coercion path."""
    k, fn, kind = subject.key, as_fn(subject), literal.__class__
    if negate:
        if k is not None:
            return dynamic(
                lambda data: (
                    v != literal if (v := data.get(k)).__class__ is kind else not loose_equals(v, literal)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: v != literal if (v := fn(data)).__class__ is kind else not loose_equals(v, literal),
            boolean=True,
        )
    if k is not None:
        return dynamic(
            lambda data: v == literal if (v := data.get(k)).__class__ is kind else loose_equals(v, literal),
            boolean=True,
        )
    return dynamic(
        lambda data: v == literal if (v := fn(data)).__class__ is kind else loose_equals(v, literal),
        boolean=True,
    )


def build_equals(site: Site) -> Expr:
    return _equality(site, loose_equals, negate=False, strict=False)


def build_not_equals(site: Site) -> Expr:
    return _equality(site, _not_loose_equals, negate=True, strict=False)


def build_strict_equals(site: Site) -> Expr:
    return _equality(site, strict_equals, negate=False, strict=True)


def build_strict_not_equals(site: Site) -> Expr:
    return _equality(site, _strict_not_equals, negate=True, strict=True)


_INLINE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _number_right(op: str, subject: Expr, literal: Any, pairwise: Callable[[Any, Any], bool]) -> Expr:
    """`{"<": [x, 18]}`: a number on the right; ints and floats on the left compare directly."""
    k, fn = subject.key, as_fn(subject)
    if k is not None:
        fn = None  # type: ignore[assignment]
    if op == "<":
        if fn is None:
            return dynamic(
                lambda data: (
                    v < literal
                    if (c := (v := data.get(k)).__class__) is int or c is float
                    else pairwise(v, literal)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: (
                v < literal if (c := (v := fn(data)).__class__) is int or c is float else pairwise(v, literal)
            ),
            boolean=True,
        )
    if op == "<=":
        if fn is None:
            return dynamic(
                lambda data: (
                    v <= literal
                    if (c := (v := data.get(k)).__class__) is int or c is float
                    else pairwise(v, literal)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: (
                v <= literal
                if (c := (v := fn(data)).__class__) is int or c is float
                else pairwise(v, literal)
            ),
            boolean=True,
        )
    if op == ">":
        if fn is None:
            return dynamic(
                lambda data: (
                    v > literal
                    if (c := (v := data.get(k)).__class__) is int or c is float
                    else pairwise(v, literal)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: (
                v > literal if (c := (v := fn(data)).__class__) is int or c is float else pairwise(v, literal)
            ),
            boolean=True,
        )
    if fn is None:
        return dynamic(
            lambda data: (
                v >= literal
                if (c := (v := data.get(k)).__class__) is int or c is float
                else pairwise(v, literal)
            ),
            boolean=True,
        )
    return dynamic(
        lambda data: (
            v >= literal if (c := (v := fn(data)).__class__) is int or c is float else pairwise(v, literal)
        ),
        boolean=True,
    )


def _between_numbers(
    op: str, subject: Expr, low: Any, high: Any, pairwise: Callable[[Any, Any], bool]
) -> Expr:
    """`{"<": [18, x, 65]}` with number bounds: a chained comparison for int/float `x`."""
    k, fn = subject.key, as_fn(subject)
    test = _INLINE[op]

    def slow(v: Any) -> bool:
        return pairwise(low, v) and pairwise(v, high)

    if op == "<":
        if k is not None:
            return dynamic(
                lambda data: (
                    low < v < high if (c := (v := data.get(k)).__class__) is int or c is float else slow(v)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: low < v < high if (c := (v := fn(data)).__class__) is int or c is float else slow(v),
            boolean=True,
        )
    if op == "<=":
        if k is not None:
            return dynamic(
                lambda data: (
                    low <= v <= high if (c := (v := data.get(k)).__class__) is int or c is float else slow(v)
                ),
                boolean=True,
            )
        return dynamic(
            lambda data: (
                low <= v <= high if (c := (v := fn(data)).__class__) is int or c is float else slow(v)
            ),
            boolean=True,
        )
    return dynamic(
        lambda data: (
            test(low, v) and test(v, high)
            if (c := (v := fn(data)).__class__) is int or c is float
            else slow(v)
        ),
        boolean=True,
    )


def _ordering(site: Site, pairwise: Callable[[Any, Any], bool]) -> Expr:
    """`<`-like operators: two arguments, or three for "between" (a third argument that
    evaluates to null means the two-argument form, as in the reference)."""
    args = site.compile_args()

    def between(x: Any, y: Any, z: Any) -> bool:
        if z is None:
            return pairwise(x, y)
        return pairwise(x, y) and pairwise(y, z)

    if len(args) in (2, 3) and (len(args) == 2 or args[2].const) and not (args[0].const and args[1].const):
        a, b = args[0], args[1]
        high = args[2].value if len(args) == 3 else None
        if high is None:
            if b.const and b.value.__class__ in _NUMBERS:
                return _number_right(site.op, a, b.value, pairwise)
            fa, fb = as_fn(a), as_fn(b)
            return dynamic(lambda data: pairwise(fa(data), fb(data)), boolean=True)
        if a.const and a.value.__class__ in _NUMBERS and high.__class__ in _NUMBERS:
            return _between_numbers(site.op, b, a.value, high, pairwise)
        fa, fb = as_fn(a), as_fn(b)
        return dynamic(lambda data: pairwise(fa(data), y := fb(data)) and pairwise(y, high), boolean=True)
    return eager(fixed_arity(between, 3, len(args)), args, boolean=True)


_NUMBERS = (int, float)


def build_less(site: Site) -> Expr:
    return _ordering(site, less)


def build_less_or_equal(site: Site) -> Expr:
    return _ordering(site, less_or_equal)


def build_greater(site: Site) -> Expr:
    return _ordering(site, greater)


def build_greater_or_equal(site: Site) -> Expr:
    return _ordering(site, greater_or_equal)


OPERATORS: dict[str, Operator] = {
    "==": Operator(build_equals, 2, 2),
    "!=": Operator(build_not_equals, 2, 2),
    "===": Operator(build_strict_equals, 2, 2),
    "!==": Operator(build_strict_not_equals, 2, 2),
    "<": Operator(build_less, 2, 3),
    "<=": Operator(build_less_or_equal, 2, 3),
    ">": Operator(build_greater, 2, 3),
    ">=": Operator(build_greater_or_equal, 2, 3),
}
