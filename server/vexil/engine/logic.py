"""Logic: `if` (and its alias `?:`), `and`, `or`, `!`, `!!`, and `log`.

`if`, `and` and `or` are lazy: only the branches taken are evaluated.  `and`/`or` return one of
their operands (not a boolean), as in JavaScript.  When every operand is `plain_truth` (Python
truthiness agrees with JSONLogic's), Python's own `and`/`or`/conditional expressions have exactly
these semantics, so the closures use them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vexil.engine.coercion import truthy
from vexil.engine.expr import NULL, Expr, Fn, Operator, Site, as_fn, const, dynamic, eager, truth_fn


def _branch_fn(cond: Fn, then: Expr, other: Expr) -> Fn:
    """`then if cond else other`, specialised on which branches are constants."""
    if then.const and other.const:
        tv, ov = then.value, other.value
        return lambda data: tv if cond(data) else ov
    if then.const:
        tv, of = then.value, as_fn(other)
        return lambda data: tv if cond(data) else of(data)
    if other.const:
        tf, ov = as_fn(then), other.value
        return lambda data: tf(data) if cond(data) else ov
    tf, of = as_fn(then), as_fn(other)
    return lambda data: tf(data) if cond(data) else of(data)


def build_if(site: Site) -> Expr:
    """`{"if": [c1, v1, c2, v2, ..., else]}`: the value after the first true condition, else
    the last argument when the count is odd, else null."""
    argc = len(site.args)
    # Compile everything first, so that a mistake in a branch folded away is still reported.
    compiled = [site.compile_arg(i, result=i % 2 == 1 or i == argc - 1) for i in range(argc)]
    pairs: list[tuple[Expr, Expr]] = []
    otherwise = NULL
    for i in range(0, argc - 1, 2):
        cond, then = compiled[i], compiled[i + 1]
        if cond.const:
            if not truthy(cond.value):
                continue  # never taken
            otherwise = then  # always taken: later branches are dead
            break
        pairs.append((cond, then))
    else:
        if argc % 2 == 1:
            otherwise = compiled[argc - 1]
    branches = [then for _, then in pairs] + [otherwise]
    plain = all(b.plain_truth for b in branches)
    boolean = all(b.boolean for b in branches)
    if not pairs:
        return otherwise
    if len(pairs) == 1 and pairs[0][0].plain_truth:
        cond, then = pairs[0]
        return dynamic(_branch_fn(truth_fn(cond), then, otherwise), plain_truth=plain, boolean=boolean)
    # (condition, its truth is plain, the branch is a constant, the constant or the branch's fn)
    table: tuple[tuple[Callable[[Any], Any], bool, bool, Any], ...] = tuple(
        (as_fn(c), c.plain_truth, t.const, t.value if t.const else t.fn) for c, t in pairs
    )
    o_const = otherwise.const
    o_value: Any = otherwise.value if o_const else otherwise.fn

    def chain(data: Any) -> Any:
        for cond, plain_cond, is_const, then in table:
            taken = cond(data)
            if taken if plain_cond or taken.__class__ is bool else truthy(taken):
                return then if is_const else then(data)
        return o_value if o_const else o_value(data)

    return dynamic(chain, plain_truth=plain, boolean=boolean)


def _fold_operands(exprs: list[Expr], stop_when: bool) -> tuple[list[Expr], Expr | None]:
    """Drop constant operands that cannot stop the chain; a constant that stops it ends it."""
    kept: list[Expr] = []
    for index, expr in enumerate(exprs):
        if expr.const:
            if truthy(expr.value) == stop_when:
                if not kept:
                    return [], expr
                kept.append(expr)
                return kept, None
            if index == len(exprs) - 1:
                kept.append(expr)
            continue
        kept.append(expr)
    return kept, None


def _build_chain(site: Site, stop_when: bool) -> Expr:
    """`and` (stops at the first falsy operand) or `or` (stops at the first truthy one);
    returns the operand it stopped at, or the last one, or null when there are none."""
    exprs = [site.compile_arg(i, result=True) for i in range(len(site.args))]
    if not exprs:
        return NULL
    kept, folded = _fold_operands(exprs, stop_when)
    if folded is not None:
        return folded
    if len(kept) == 1:
        return kept[0]
    # The last operand is returned as it is: only the others' truthiness matters.
    plain = all(e.plain_truth for e in kept)
    boolean = all(e.boolean for e in kept)
    fns = [as_fn(e) for e in kept]
    if all(e.plain_truth for e in kept[:-1]):
        # Python's own `and` / `or` have exactly these semantics for such operands.
        if len(fns) == 2:
            f0, f1 = fns
            if stop_when:
                return dynamic(lambda data: f0(data) or f1(data), plain_truth=plain, boolean=boolean)
            return dynamic(lambda data: f0(data) and f1(data), plain_truth=plain, boolean=boolean)
        if len(fns) == 3:
            f0, f1, f2 = fns
            if stop_when:
                return dynamic(
                    lambda data: f0(data) or f1(data) or f2(data), plain_truth=plain, boolean=boolean
                )
            return dynamic(
                lambda data: f0(data) and f1(data) and f2(data), plain_truth=plain, boolean=boolean
            )
    steps = tuple((fn, e.plain_truth) for fn, e in zip(fns[:-1], kept[:-1], strict=True))
    last = fns[-1]

    def chain(data: Any) -> Any:
        for fn, plain_value in steps:
            value = fn(data)
            if (bool(value) if plain_value else truthy(value)) == stop_when:
                return value
        return last(data)

    return dynamic(chain, plain_truth=plain, boolean=boolean)


def build_and(site: Site) -> Expr:
    return _build_chain(site, stop_when=False)


def build_or(site: Site) -> Expr:
    return _build_chain(site, stop_when=True)


def build_not(site: Site) -> Expr:
    args = site.compile_args()
    if not args:
        return const(True)
    operand = args[0]
    if operand.const and all(a.const for a in args):
        return const(not truthy(operand.value))
    extras = [a.fn for a in args[1:] if a.fn is not None]
    fn = as_fn(operand)
    if not extras:
        if operand.plain_truth:
            return dynamic(lambda data: not fn(data), boolean=True)
        k = operand.key
        if k is not None:
            return dynamic(
                lambda data: not v if (v := data.get(k)).__class__ is bool else not truthy(v), boolean=True
            )
        return dynamic(lambda data: not truthy(fn(data)), boolean=True)
    return eager(lambda a, *_: not truthy(a), args, boolean=True)


def build_double_not(site: Site) -> Expr:
    args = site.compile_args()
    if not args:
        return const(False)
    operand = args[0]
    if len(args) == 1 and not operand.const:
        fn = as_fn(operand)
        if operand.plain_truth:
            return dynamic(lambda data: bool(fn(data)), boolean=True)
        return dynamic(lambda data: truthy(fn(data)), boolean=True)
    return eager(lambda a, *_: truthy(a), args, boolean=True)


def build_log(site: Site) -> Expr:
    """`log` returns its first argument.  The reference also prints it to standard output; the
    engine is pure and does not (a server must not write to stdout per evaluation)."""
    args = site.compile_args()
    if not args:
        return NULL
    if len(args) == 1:
        return args[0]
    first = args[0]
    return eager(lambda a, *_: a, args, plain_truth=first.plain_truth, boolean=first.boolean)


OPERATORS: dict[str, Operator] = {
    "if": Operator(build_if, 2, None, eager=False),
    "?:": Operator(build_if, 2, None, eager=False),
    "and": Operator(build_and, 1, None, eager=False),
    "or": Operator(build_or, 1, None, eager=False),
    "!": Operator(build_not, 1, 1),
    "!!": Operator(build_double_not, 1, 1),
    "log": Operator(build_log, 1, 1),
}
