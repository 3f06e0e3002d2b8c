"""The rule compiler: JSONLogic (with flagd's extensions) -> a tree of Python closures.

It walks a targeting rule once, resolves `$ref`s to the environment's `$evaluators`, checks
every operator's arguments, folds constants, and asks each operator family (one module per
family) for a closure specialised to its arguments.  The result is an `Expr`; evaluating the
rule is calling its function with the context.

Strict mode (the default, used for every definition the service accepts) reports definition
mistakes as `FlagValidationError` with the path of the offending part.  Non-strict mode compiles
whatever the reference evaluator accepts, with the reference's run-time behaviour for mistakes
(an unknown operator raises `RuleParseError` when it is reached, wrong argument counts behave as
the reference's Python functions do); it exists so that the engine can be compared with the
reference on every input, and to serve definitions stored before a check existed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from vexil.engine import access, arithmetic, arrays, budget, comparison, fractional, logic, semver, strings
from vexil.engine.errors import FlagValidationError, RuleParseError
from vexil.engine.expr import Expr, Operator, Site, as_fn, const, dynamic
from vexil.model import shown

OPERATORS: dict[str, Operator] = {
    **access.OPERATORS,
    **logic.OPERATORS,
    **comparison.OPERATORS,
    **arithmetic.OPERATORS,
    **arrays.OPERATORS,
    **strings.OPERATORS,
    **fractional.OPERATORS,
    **semver.OPERATORS,
}
"""Every operator the engine knows, by name."""

_TABLE_OPERATORS = frozenset(name for name, op in OPERATORS.items() if op.eager)
"""Operators the reference dispatches through its operations table (the others are its special
forms).  Its lookup of a dotted unknown name like `var.x` finds `var` and then fails differently
(GENERAL instead of PARSE_ERROR); mirrored in non-strict mode."""

MAX_DEPTH = 100
"""Deeper rules are refused: no real rule nests this deep, and evaluation must not hit Python's
recursion limit."""

REF = "$ref"


def variant_name(value: Any) -> str | None:
    """The variant a rule result selects, as flagd maps it (null selects none)."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    return str(value)


def _describe(names: Collection[Any]) -> str:
    shown = ", ".join(sorted(str(name) for name in names)[:10])
    return shown + (", ..." if len(names) > 10 else "")


class RuleCompiler:
    """Compiles one flag's targeting; holds what the operators need to know about the flag."""

    def __init__(
        self,
        flag_key: str,
        *,
        variants: Collection[str],
        evaluators: Mapping[str, Any] | None,
        strict: bool,
        fractional_hashing: str = fractional.STRING,
    ) -> None:
        self.flag_key = flag_key
        self.fractional_hashing = fractional_hashing
        self.variants = variants
        self.evaluators: Mapping[str, Any] = evaluators or {}
        self.strict = strict
        self.full_context = False
        self.metered = False
        """The rule has a site that spends the run-time budget (see `budget`)."""
        self.nodes = 0
        self._depth = 0
        self._loops = 0
        self._refs: list[str] = []

    # -- services for the operator builders --------------------------------------------------

    def invalid(self, message: str, path: str) -> None:
        if self.strict:
            raise FlagValidationError(message, path)

    def need_full_context(self) -> None:
        """The rule reads the enriched context as a whole (or `$flagd.timestamp`): evaluation
        must materialise it instead of reading the caller's mapping directly."""
        self.full_context = True

    def meter(self) -> None:
        """The rule has a site that spends the evaluation's budget: its root resets the meter."""
        self.metered = True

    def loop_body(self, site: Site, index: int) -> tuple[Expr, int]:
        """Compile an iterator's sub-rule (in item scope): the expression and its weight, the
        operations one element costs (its node count, nested iterators charging their own).
        Iterators nested deeper than `budget.MAX_LOOP_NESTING` are refused, strict or not."""
        self.metered = True
        if index >= len(site.args):
            return const(None), 1
        self._loops += 1
        try:
            if self._loops > budget.MAX_LOOP_NESTING:
                raise FlagValidationError(
                    f"iterators (map, filter, reduce, all, some, none) nest at most "
                    f"{budget.MAX_LOOP_NESTING} deep; this {site.op} is inside "
                    f"{self._loops - 1} others: flatten the rule or compute the value in the context",
                    site.path,
                )
            before = self.nodes
            expr = site.compile_arg(index, item=True)
        finally:
            self._loops -= 1
        return expr, 1 + self.nodes - before

    def check_variant(self, value: Any, path: str) -> None:
        """A literal the rule can return must name a variant (strict mode)."""
        if not self.strict:
            return
        try:
            name = variant_name(value)
        except Exception:  # e.g. an integer too long to print
            name = ""
        if name is not None and name not in self.variants:
            self.invalid(
                f"{shown(value)} is not a variant of this flag (variants: {_describe(self.variants)})", path
            )

    def check_boolean_result(self, path: str) -> None:
        missing = [name for name in ("true", "false") if name not in self.variants]
        if missing:
            self.invalid(
                "this rule yields true/false, which select the variants named 'true' and 'false'; "
                f"the flag has no {' or '.join(repr(m) for m in missing)} variant",
                path,
            )

    # -- the walk -------------------------------------------------------------------------------

    def compile(self, node: Any, path: str, *, item: bool = False, result: bool = False) -> Expr:
        """Compile one JSON node found at `path`.  `item`: inside an array operator's sub-rule.
        `result`: the node's value is the rule's result (a variant name)."""
        self._depth += 1
        self.nodes += 1
        try:
            if self.nodes > budget.MAX_NODES:
                raise FlagValidationError(
                    f"the rule has more than {budget.MAX_NODES:,} nodes (operators and values, each "
                    "$ref counted where it is used); split it or move lists into literal arrays",
                    path,
                )
            if self._depth > MAX_DEPTH:
                raise FlagValidationError(f"the rule nests deeper than {MAX_DEPTH} levels", path)
            expr = self._compile(node, path, item, result)
        finally:
            self._depth -= 1
        if result and expr.const:
            self.check_variant(expr.value, path)
        return expr

    def _compile(self, node: Any, path: str, item: bool, result: bool) -> Expr:
        if isinstance(node, list):
            return self._array(node, path, item)
        if not isinstance(node, dict):
            return const(node)
        if len(node) != 1:
            if node:
                self.invalid(
                    f"an object in a rule must have exactly one key, the operator; this one has {len(node)} "
                    f"({_describe(node)})",
                    path,
                )
            return const(node)
        ((op, raw_args),) = node.items()
        if op == REF and isinstance(raw_args, str):
            referenced = self._reference(raw_args, path, item, result)
            if referenced is not None:
                return referenced
        args = raw_args if isinstance(raw_args, list) else [raw_args]
        op_path = f"{path}.{op}"
        lone = not isinstance(raw_args, list)
        arg_paths = [op_path] if lone else [f"{op_path}[{i}]" for i in range(len(args))]
        operator = OPERATORS.get(op)
        if operator is None:
            return self._unknown(op, args, arg_paths, op_path, item)
        if self.strict:
            count = len(args)
            low, high = operator.min_args, operator.max_args
            if count < low or (high is not None and count > high):
                if high is None:
                    wanted = f"at least {low}"
                elif low == high:
                    wanted = str(low)
                else:
                    wanted = f"{low} to {high}"
                raise FlagValidationError(
                    f"{op} takes {wanted} argument{'s' if wanted != '1' else ''}, got {count}", op_path
                )
        site = Site(self, op, args, arg_paths, op_path, item, result)
        return operator.build(site)

    def _array(self, node: list[Any], path: str, item: bool) -> Expr:
        """A JSON array in a rule is evaluated element by element (each may be an operation).
        One of plain values is a literal: one node, however long (up to `MAX_LITERAL_ARRAY`)."""
        if len(node) > budget.MAX_LITERAL_ARRAY:
            raise FlagValidationError(
                f"an array in a rule holds at most {budget.MAX_LITERAL_ARRAY:,} elements, this one "
                f"{len(node):,}",
                path,
            )
        if not any(isinstance(value, dict | list) for value in node):
            return const(list(node))
        exprs = [self.compile(value, f"{path}[{i}]", item=item) for i, value in enumerate(node)]
        if all(e.const for e in exprs):
            return const([e.value for e in exprs])
        fns = [as_fn(e) for e in exprs]
        return dynamic(lambda data: [fn(data) for fn in fns], plain_truth=True)

    def _reference(self, name: str, path: str, item: bool, result: bool) -> Expr | None:
        """`{"$ref": "name"}`: the named rule of the environment's `$evaluators`, compiled in
        place.  None (treat it as an unknown operator) when there is no such evaluator."""
        if name not in self.evaluators:
            known = f" (known: {_describe(self.evaluators)})" if self.evaluators else " (there are none)"
            self.invalid(f"$ref to an unknown evaluator '{name}'{known}", path)
            return None
        if name in self._refs:
            cycle = " -> ".join([*self._refs[self._refs.index(name) :], name])
            self.invalid(f"$ref cycle: {cycle}", path)
            return None
        self._refs.append(name)
        try:
            return self.compile(self.evaluators[name], f"$evaluators.{name}", item=item, result=result)
        except FlagValidationError as exc:
            if exc.path.startswith("$evaluators."):
                raise FlagValidationError(f"{exc.message} (through the $ref at {path})", exc.path) from None
            raise
        finally:
            self._refs.pop()

    def _unknown(self, op: str, args: list[Any], arg_paths: list[str], op_path: str, item: bool) -> Expr:
        if self.strict:
            if op == REF:
                raise FlagValidationError("$ref takes the name of an evaluator (a string)", op_path)
            raise FlagValidationError(f"unknown operator '{op}'", op_path)
        # As the reference: the arguments are evaluated first, then the lookup fails.
        exprs = [self.compile(arg, p, item=item) for arg, p in zip(args, arg_paths, strict=True)]
        fns = [e.fn for e in exprs if e.fn is not None]
        table_prefix = isinstance(op, str) and "." in op and op.split(".")[0] in _TABLE_OPERATORS

        def unknown(data: Any) -> Any:
            for fn in fns:
                fn(data)
            if table_prefix:
                raise TypeError(f"'{op}' is not an operator")
            raise RuleParseError(f"unrecognized operation {shown(op)}")

        return dynamic(unknown)


def _is_branching(node: Any) -> bool:
    """Operators whose result is one of their operands (or another rule's): the operands are
    checked instead."""
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _BRANCHING


_BRANCHING = frozenset(("if", "?:", "and", "or", "log", "var", REF))


def compile_rule(
    rule: Any,
    flag_key: str,
    *,
    variants: Collection[str],
    evaluators: Mapping[str, Any] | None = None,
    strict: bool = True,
    path: str = "targeting",
    fractional_hashing: str = fractional.STRING,
) -> tuple[Expr, bool]:
    """Compile a targeting rule: (the expression, whether it needs the materialised context).

    `fractional_hashing` is the environment's choice of `fractional` hashing (`fractional.STRING`,
    flagd's, or `fractional.CBOR`)."""
    compiler = RuleCompiler(
        flag_key,
        variants=variants,
        evaluators=evaluators,
        strict=strict,
        fractional_hashing=fractional_hashing,
    )
    expr = compiler.compile(rule, path, result=True)
    if not expr.const and expr.boolean and not _is_branching(rule):
        # e.g. a bare comparison as the whole rule: its true/false select variants "true"/"false".
        compiler.check_boolean_result(path)
    if compiler.metered and expr.fn is not None:
        expr = _metered(expr)
    return expr, compiler.full_context


def _metered(expr: Expr) -> Expr:
    """The rule behind a fresh run-time budget for each evaluation (`budget`)."""
    fn, start, stop = expr.fn, budget.start, budget.stop

    def metered(data: Any) -> Any:
        start()
        try:
            return fn(data)  # type: ignore[misc]
        finally:
            stop()

    return dynamic(metered, plain_truth=expr.plain_truth, boolean=expr.boolean)
