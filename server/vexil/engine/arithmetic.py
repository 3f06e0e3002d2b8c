"""Arithmetic: `+`, `-`, `*`, `/`, `%`, `min`, `max`.

Operands are coerced with JavaScript's `Number()` rules (`coercion.to_number`), and the result is
Python arithmetic on the coerced values, as in the Python core: integers stay integers, `/`
always gives a float, and dividing by zero fails the evaluation (GENERAL error) instead of
producing JavaScript's Infinity.  `%` is JavaScript's remainder (flagd Go's `math.Mod`): it takes
the sign of the dividend, `-7 % 3` is -1 (Python's `%`, which the Python core uses, gives 2).
"""

from __future__ import annotations

from math import fmod
from typing import Any

from vexil.engine.budget import MAX_INT_BITS, BudgetExceeded
from vexil.engine.coercion import NAN, to_number
from vexil.engine.errors import RuleFailure
from vexil.engine.expr import Expr, Operator, Site, eager, fixed_arity


def add(*values: Any) -> int | float:
    total: int | float = 0
    for value in values:
        total += to_number(value)
    return total


def multiply(*values: Any) -> int | float:
    """Refuses integers beyond `MAX_INT_BITS` before computing them: a `reduce` squaring its
    accumulator would otherwise spend seconds and gigabytes on one product."""
    product: int | float = 1
    for value in values:
        number = to_number(value)
        if (
            number.__class__ is int
            and product.__class__ is int
            and product.bit_length() + number.bit_length() > MAX_INT_BITS  # type: ignore[union-attr]
        ):
            raise BudgetExceeded(f"evaluation budget exceeded (a product beyond {MAX_INT_BITS} bits)")
        product *= number
    return product


def subtract(a: Any, b: Any) -> int | float:
    """Binary minus, or negation when the second operand is null (or absent)."""
    if b is None:
        return -to_number(a)
    return to_number(a) - to_number(b)


def divide(a: Any, b: Any) -> float:
    return to_number(a) / to_number(b)


def remainder(x: int | float, y: int | float) -> int | float:
    """JavaScript's `x % y` on two numbers (C's `fmod`): the sign of `x`, and `x` itself for an
    infinite `y`.  Integers stay integers; `y == 0` raises ZeroDivisionError."""
    if isinstance(x, int) and isinstance(y, int):  # bools too, as 1 and 0
        r = x % y
        return r - y if r and (r < 0) != (x < 0) else r
    if not y:
        raise ZeroDivisionError("modulo by zero")
    try:
        return fmod(x, y)
    except ValueError:  # an infinite dividend: NaN in JavaScript
        return NAN


def modulo(a: Any, b: Any) -> int | float:
    return remainder(to_number(a), to_number(b))


def _by_zero_at(impl: Any, path: str) -> Any:
    """`divide` or `modulo` for one place in a rule, naming that place when the divisor is zero.
    The arithmetic is inlined (no extra call per evaluation) and an exception handler costs
    nothing until it runs, so this is as fast as `impl` itself."""
    message = f"division by zero in targeting at {path}"
    if impl is divide:

        def checked(a: Any, b: Any) -> int | float:
            try:
                return to_number(a) / to_number(b)
            except ZeroDivisionError:
                raise RuleFailure(message) from None

    else:

        def checked(a: Any, b: Any) -> int | float:
            try:
                return remainder(to_number(a), to_number(b))
            except ZeroDivisionError:
                raise RuleFailure(message) from None

    return checked


def minimum(*values: Any) -> int | float:
    if not values:
        return NAN
    return min([to_number(v) for v in values])


def maximum(*values: Any) -> int | float:
    if not values:
        return NAN
    return max([to_number(v) for v in values])


def _variadic(site: Site, impl: Any) -> Expr:
    return eager(impl, site.compile_args())


def _binary(site: Site, impl: Any) -> Expr:
    args = site.compile_args()
    return eager(fixed_arity(impl, 2, len(args)), args)


def _dividing(site: Site, impl: Any) -> Expr:
    return _binary(site, _by_zero_at(impl, site.path))


OPERATORS: dict[str, Operator] = {
    "+": Operator(lambda site: _variadic(site, add), 1, None),
    "*": Operator(lambda site: _variadic(site, multiply), 1, None),
    "-": Operator(lambda site: _binary(site, subtract), 1, 2),
    "/": Operator(lambda site: _dividing(site, divide), 2, 2),
    "%": Operator(lambda site: _dividing(site, modulo), 2, 2),
    "min": Operator(lambda site: _variadic(site, minimum), 1, None),
    "max": Operator(lambda site: _variadic(site, maximum), 1, None),
}
