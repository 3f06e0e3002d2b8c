"""Compiled expressions and the vocabulary operator builders share.

A targeting rule is compiled once into a tree of Python closures; evaluating a flag is one call
of the root closure with the context, never a walk over JSON.  Each compiled node is an `Expr`:
either a constant (folded at compile time) or a function of the *data* (the evaluation context
at the top level, the current item inside `map`/`filter`/...).  Builders look at their
arguments' `Expr`s to pick a specialised closure, so that the common shapes (a `var` compared with
a literal, an `if` choosing between two variant names) cost one or two Python calls.

Every operator of JSONLogic evaluates all its arguments before it runs (except the lazy ones:
`if`, `and`, `or` and the array iterators), and an argument that fails makes the whole rule fail
even when its value would not be used.  The closures keep that order, so errors surface exactly
where the reference's would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vexil.engine.coercion import truthy

if TYPE_CHECKING:
    from vexil.engine.rules import RuleCompiler

Fn = Callable[[Any], Any]
"""A compiled expression: data in, JSON value out."""


class Expr:
    """One compiled node: a constant, or a function of the data.

    `plain_truth` is true when Python's truthiness of every value the node can produce equals
    JSONLogic's (that is, it can never produce NaN or an object), so conditions can test the
    value directly instead of calling `truthy`.  `boolean` is true when the node only ever
    produces true, false or null (comparisons, `!`, `in`, `sem_ver`...).  `key` is set when the
    node is a plain read of one top-level context attribute (`{"var": "country"}`): builders then
    read `data.get(key)` inline instead of calling the node, saving a call per evaluation.
    """

    __slots__ = ("boolean", "const", "fn", "key", "plain_truth", "value")

    def __init__(
        self,
        fn: Fn | None,
        value: Any = None,
        *,
        plain_truth: bool = False,
        boolean: bool = False,
        key: str | None = None,
    ) -> None:
        self.fn = fn
        self.value = value
        self.key = key
        self.const = fn is None
        if fn is None:
            plain_truth = truthy(value) == bool(value)
            boolean = value is None or value is True or value is False
        self.plain_truth = plain_truth or boolean
        self.boolean = boolean

    def __repr__(self) -> str:
        return f"Const({self.value!r})" if self.const else f"Expr({self.fn!r})"


def const(value: Any) -> Expr:
    return Expr(None, value)


def dynamic(fn: Fn, *, plain_truth: bool = False, boolean: bool = False, key: str | None = None) -> Expr:
    return Expr(fn, plain_truth=plain_truth, boolean=boolean, key=key)


NULL = const(None)


def as_fn(expr: Expr) -> Fn:
    """The node as a callable (constants become a function returning the constant)."""
    if expr.fn is not None:
        return expr.fn
    value = expr.value
    return lambda _data: value


def truth_fn(expr: Expr) -> Fn:
    """A callable whose Python truthiness is the node's JSONLogic truthiness."""
    fn = as_fn(expr)
    if expr.plain_truth:
        return fn
    return lambda data: truthy(fn(data))


def all_const(exprs: Sequence[Expr]) -> bool:
    return all(e.const for e in exprs)


def evaluate_all(exprs: Sequence[Expr]) -> Fn | None:
    """A callable that evaluates every dynamic node for its side effect (a possible error), or
    None when there is nothing to evaluate.  Used for arguments an operator ignores."""
    fns = [e.fn for e in exprs if e.fn is not None]
    if not fns:
        return None

    def run(data: Any) -> None:
        for fn in fns:
            fn(data)

    return run


def fixed_arity(impl: Callable[..., Any], count: int, given: int | None = None) -> Callable[..., Any]:
    """`impl` called the way the reference calls a Python function with `count` optional
    parameters and `*_ignored`: missing arguments are null, extra ones are dropped (after having
    been evaluated like every argument).  `impl` itself when `given` arguments fit exactly."""
    if given == count:
        return impl

    def call(*values: Any) -> Any:
        if len(values) != count:
            values = (*values[:count], *([None] * (count - len(values))))
        return impl(*values)

    return call


def eager(
    impl: Callable[..., Any],
    args: Sequence[Expr],
    *,
    plain_truth: bool = False,
    boolean: bool = False,
    fold: bool = True,
) -> Expr:
    """A node applying `impl` to the values of all `args` (evaluated left to right).

    With constant arguments the result is computed now (constant folding); if that raises, the
    node raises at evaluation time instead, exactly where the reference would.
    """
    if fold and all_const(args):
        try:
            return const(impl(*[a.value for a in args]))
        except Exception:  # the same failure is reported when the rule is evaluated
            pass
    fns = [as_fn(a) for a in args]
    fn: Fn
    if len(fns) == 0:

        def fn(_data: Any) -> Any:
            return impl()

    elif len(fns) == 1:
        (f0,) = fns

        def fn(data: Any) -> Any:
            return impl(f0(data))

    elif len(fns) == 2:
        f0, f1 = fns
        if args[1].const:
            c1 = args[1].value

            def fn(data: Any) -> Any:
                return impl(f0(data), c1)

        else:

            def fn(data: Any) -> Any:
                return impl(f0(data), f1(data))

    elif len(fns) == 3:
        f0, f1, f2 = fns

        def fn(data: Any) -> Any:
            return impl(f0(data), f1(data), f2(data))

    else:

        def fn(data: Any) -> Any:
            return impl(*[f(data) for f in fns])

    return dynamic(fn, plain_truth=plain_truth, boolean=boolean)


@dataclass(frozen=True, slots=True)
class Site:
    """Where an operator occurs in the rule: what its builder needs to compile it.

    `args` are the raw JSON arguments (a lone non-array argument already wrapped in a list, as
    JSONLogic does), `arg_paths` their paths for error messages, `path` the operator's own path
    (`targeting.if[0].fractional`).  `item` is true inside the sub-rule of an array operator,
    where the data is the current item instead of the context.  `result` is true where the value
    produced is the rule's result (a variant name), which lets the compiler check literal
    variant names against the flag's variants.
    """

    compiler: RuleCompiler
    op: str
    args: list[Any]
    arg_paths: list[str]
    path: str
    item: bool
    result: bool

    def compile_arg(self, index: int, *, result: bool = False, item: bool | None = None) -> Expr:
        return self.compiler.compile(
            self.args[index],
            self.arg_paths[index],
            item=self.item if item is None else item,
            result=result and self.result,
        )

    def compile_args(self) -> list[Expr]:
        return [self.compile_arg(i) for i in range(len(self.args))]

    def invalid(self, message: str, path: str | None = None) -> None:
        """Report a definition mistake (raises in strict mode; ignored otherwise, because the
        reference accepts the rule and only misbehaves when evaluating it)."""
        self.compiler.invalid(message, self.path if path is None else path)


Builder = Callable[[Site], Expr]


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator family entry: how to build it and how many arguments it takes when strict."""

    build: Builder
    min_args: int = 0
    max_args: int | None = None
    eager: bool = True
    """True for operators the reference looks up in its operations table (all arguments are
    evaluated first); false for its special forms (`if`, `and`, `map`, ...)."""
