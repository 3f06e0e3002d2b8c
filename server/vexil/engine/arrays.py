"""Arrays: `map`, `filter`, `reduce`, `all`, `some`, `none`, `merge`, and `in`.

The iterators compile their sub-rule in *item scope*: there the data is the current element (for
`reduce`, an object holding `current` and `accumulator`), not the evaluation context, exactly as
in the reference.  Their first argument is evaluated in the enclosing scope; anything but an
array counts as no elements.  `all`, `some` and `none` stop at the first element that decides.

Each run of an iterator spends its element count times its sub-rule's weight from the
evaluation's budget before it starts (`budget`), and `merge` and `in` over a computed array
spend their length, so a large context array cannot make one evaluation run for long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vexil.engine.budget import build, spend
from vexil.engine.coercion import to_string
from vexil.engine.expr import NULL, Expr, Operator, Site, as_fn, const, dynamic, eager, fixed_arity, truth_fn


def _iteration(site: Site) -> tuple[Callable[[Any], Sequence[Any]], Expr]:
    """An iterator's elements and its sub-rule (compiled in item scope).

    `elements(data)` is the array the first argument evaluates to, after spending its length
    times the sub-rule's weight (every run of every iterator pays by this one rule); anything but
    an array is no elements."""
    items = as_fn(site.compile_arg(0))
    body, weight = site.compiler.loop_body(site, 1)

    def elements(data: Any) -> Sequence[Any]:
        values = items(data)
        if not isinstance(values, list):
            return ()
        spend(len(values) * weight)
        return values

    return elements, body


def build_map(site: Site) -> Expr:
    if not site.args:
        return const([])
    elements, body = _iteration(site)
    sub = as_fn(body)

    def mapped(data: Any) -> list[Any]:
        return [sub(value) for value in elements(data)]

    return dynamic(mapped, plain_truth=True)


def build_filter(site: Site) -> Expr:
    if len(site.args) < 2:
        return const([])
    elements, body = _iteration(site)
    keep = truth_fn(body)

    def filtered(data: Any) -> list[Any]:
        return [value for value in elements(data) if keep(value)]

    return dynamic(filtered, plain_truth=True)


def build_reduce(site: Site) -> Expr:
    """`{"reduce": [items, rule, initial]}`.  The reference does not evaluate `initial`: it is
    taken as a literal (an operation there is returned as an object); matched, and refused when
    strict because it is surely a mistake."""
    if not site.args:
        return NULL
    elements, body = _iteration(site)
    sub = as_fn(body)
    initial = site.args[2] if len(site.args) > 2 else None
    if isinstance(initial, dict) and len(initial) == 1:
        site.invalid("reduce does not evaluate its initial value; give a literal", site.arg_paths[2])

    def reduced(data: Any) -> Any:
        scope: dict[str, Any] = {"accumulator": initial}
        for value in elements(data):
            scope["current"] = value
            scope["accumulator"] = sub(scope)
        return scope["accumulator"]

    return dynamic(reduced)


def _quantifier(site: Site, kind: str) -> Expr:
    if len(site.args) < 2:
        return const(kind == "none")
    elements, body = _iteration(site)
    test = truth_fn(body)
    if kind == "all":

        def every(data: Any) -> bool:
            values = elements(data)
            return len(values) > 0 and all(test(value) for value in values)

        return dynamic(every, boolean=True)

    if kind == "some":

        def some(data: Any) -> bool:
            return any(test(value) for value in elements(data))

        return dynamic(some, boolean=True)

    def none(data: Any) -> bool:
        return not any(test(value) for value in elements(data))

    return dynamic(none, boolean=True)


def merge(*values: Any) -> list[Any]:
    """Concatenate arrays one level deep; other values are appended as elements."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out


def merged(*values: Any) -> list[Any]:
    """`merge` evaluated per call: spends the length of the array it builds."""
    out = merge(*values)
    build(len(out))
    return out


def build_merge(site: Site) -> Expr:
    args = site.compile_args()
    if all(a.const for a in args):
        return eager(merge, args, plain_truth=True)
    site.compiler.meter()
    return eager(merged, args, plain_truth=True)


def is_member(needle: Any, values: list[Any]) -> bool:
    """`needle` is an element of `values` (Python equality, as the Python core), except that true
    and false are not 1 and 0: JavaScript's `includes` and flagd Go's `in` keep them apart."""
    kind = needle.__class__
    if kind is bool:
        return any(value is needle for value in values)
    if (kind is int or kind is float) and needle in values:
        return any(value == needle and value.__class__ is not bool for value in values)
    return needle in values


def contains(needle: Any, haystack: Any) -> bool:
    """`in`: membership in an array (`is_member`), or substring of a string."""
    if isinstance(haystack, list):
        return is_member(needle, haystack)
    if isinstance(haystack, str):
        return to_string(needle) in haystack
    return False


def contains_metered(needle: Any, haystack: Any) -> bool:
    """`in` over a computed array or string: spends its length (a scan per call)."""
    if isinstance(haystack, list | str):
        spend(len(haystack))
    return contains(needle, haystack)


def _hashable_members(values: list[Any]) -> frozenset[Any] | None:
    """The array as a set for O(1) membership, when every element is a hashable scalar.

    Python's `x in list` tests identity then `==`; a frozenset tests hash then identity/`==`.
    For str/int/float/bool/None, equal values hash equally (1, 1.0 and True included), so the
    answers are the same.  NaN elements are excluded (NaN is only found by identity).
    """
    members = []
    for value in values:
        if not isinstance(value, str | int | float) and value is not None:
            return None
        if isinstance(value, float) and value != value:
            return None
        members.append(value)
    return frozenset(members)


def build_in(site: Site) -> Expr:
    args = site.compile_args()
    if len(args) == 2 and args[1].const and not args[0].const:
        needle, haystack = args
        values = haystack.value
        if isinstance(values, list):
            return _member_of(needle, values)
        if isinstance(values, str):
            text, fn = values, as_fn(needle)
            return dynamic(
                lambda data: (v if (v := fn(data)).__class__ is str else to_string(v)) in text,
                boolean=True,
            )
        fn = as_fn(needle)
        return dynamic(lambda data: (fn(data), False)[1], boolean=True)
    if all(a.const for a in args):
        return eager(fixed_arity(contains, 2, len(args)), args, boolean=True)
    site.compiler.meter()
    return eager(fixed_arity(contains_metered, 2, len(args)), args, boolean=True)


def _member_of(needle: Expr, values: list[Any]) -> Expr:
    """`{"in": [x, [literal, ...]]}`: a set lookup when the array allows it, else a list scan.
    An array holding a boolean, or a number equal to one, takes `is_member` (a boolean must not
    find 1 there, nor 1 a boolean); any other array cannot confuse them."""
    k, fn = needle.key, as_fn(needle)
    if any(
        value.__class__ is bool or (value.__class__ in (int, float) and value in (0, 1)) for value in values
    ):
        if k is not None:
            return dynamic(lambda data: is_member(data.get(k), values), boolean=True)
        return dynamic(lambda data: is_member(fn(data), values), boolean=True)
    members = _hashable_members(values) if len(values) > 3 else None
    if members is None:
        if k is not None:
            return dynamic(lambda data: data.get(k) in values, boolean=True)
        return dynamic(lambda data: fn(data) in values, boolean=True)

    def member(data: Any) -> bool:
        value = data.get(k) if k is not None else fn(data)
        try:
            return value in members
        except TypeError:  # unhashable needle (array or object)
            return value in values

    return dynamic(member, boolean=True)


OPERATORS: dict[str, Operator] = {
    "map": Operator(build_map, 2, 2, eager=False),
    "filter": Operator(build_filter, 2, 2, eager=False),
    "reduce": Operator(build_reduce, 2, 3, eager=False),
    "all": Operator(lambda site: _quantifier(site, "all"), 2, 2, eager=False),
    "some": Operator(lambda site: _quantifier(site, "some"), 2, 2, eager=False),
    "none": Operator(lambda site: _quantifier(site, "none"), 2, 2, eager=False),
    "merge": Operator(build_merge, 0, None),
    "in": Operator(build_in, 2, 2),
}
