"""Comparison: `==`, `!=`, `===`, `!==`, `<`, `<=`, `>`, `>=` (the last four also in the
three-argument "between" form, `{"<": [low, x, high]}`).

The usual shape is a context attribute compared with a literal; those get closures that test the
common type inline and fall back to the full coercion rules (`coercion.py`) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vexil.engine.coercion import greater, greater_or_equal, less, less_or_equal, loose_equals
from vexil.engine.expr import Expr, Operator, Site, as_fn, dynamic, eager, fixed_arity


def _not_loose_equals(a: Any, b: Any) -> bool:
    return not loose_equals(a, b)


def _strict_equals(a: Any, b: Any) -> bool:
    # The reference's `===` is Python's `==`: 1 === 1.0 and 1 === true hold, arrays compare
    # by content.  Matched as is.
    return bool(a == b)


def _strict_not_equals(a: Any, b: Any) -> bool:
    return bool(a != b)


def _equality(site: Site, loose: Callable[[Any, Any], bool], negate: bool, strict: bool) -> Expr:
    args = site.compile_args()
    if len(args) == 2 and args[1].const and not args[0].const:
        left, right = args
        fn = as_fn(left)
        literal = right.value
        if strict:
            if negate:
                return dynamic(lambda data: fn(data) != literal, boolean=True)
            return dynamic(lambda data: fn(data) == literal, boolean=True)
        literal_type = literal.__class__
        if literal_type is str or literal_type is int or literal_type is float:
            # Same type on both sides: a plain comparison; anything else takes the slow path.
            if negate:
                return dynamic(
                    lambda data: (
                        v != literal if (v := fn(data)).__class__ is literal_type else not loose_equals(v, literal)
                    ),
                    boolean=True,
                )
            return dynamic(
                lambda data: (
                    v == literal if (v := fn(data)).__class__ is literal_type else loose_equals(v, literal)
                ),
                boolean=True,
            )
    return eager(fixed_arity(loose, 2), args, boolean=True)


def build_equals(site: Site) -> Expr:
    return _equality(site, loose_equals, negate=False, strict=False)


def build_not_equals(site: Site) -> Expr:
    return _equality(site, _not_loose_equals, negate=True, strict=False)


def build_strict_equals(site: Site) -> Expr:
    return _equality(site, _strict_equals, negate=False, strict=True)


def build_strict_not_equals(site: Site) -> Expr:
    return _equality(site, _strict_not_equals, negate=True, strict=True)


def _number_fast(op: str, fn: Callable[[Any], Any], literal: Any, pairwise: Callable[[Any, Any], bool]) -> Expr:
    """`{"<": [x, 18]}`: a number on the right; numbers on the left compare directly."""
    if op == "<":
        return dynamic(
            lambda data: v < literal if (v := fn(data)).__class__ in _NUMBERS else pairwise(v, literal),
            boolean=True,
        )
    if op == "<=":
        return dynamic(
            lambda data: v <= literal if (v := fn(data)).__class__ in _NUMBERS else pairwise(v, literal),
            boolean=True,
        )
    if op == ">":
        return dynamic(
            lambda data: v > literal if (v := fn(data)).__class__ in _NUMBERS else pairwise(v, literal),
            boolean=True,
        )
    return dynamic(
        lambda data: v >= literal if (v := fn(data)).__class__ in _NUMBERS else pairwise(v, literal),
        boolean=True,
    )


_NUMBERS = (int, float)


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
        fa, fb = as_fn(a), as_fn(b)
        if high is None:
            if b.const and b.value.__class__ in _NUMBERS:
                return _number_fast(site.op, fa, b.value, pairwise)
            return dynamic(lambda data: pairwise(fa(data), fb(data)), boolean=True)
        return dynamic(lambda data: pairwise(fa(data), y := fb(data)) and pairwise(y, high), boolean=True)
    return eager(fixed_arity(between, 3), args, boolean=True)


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
