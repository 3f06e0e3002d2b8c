"""Data access: `var`, `missing`, `missing_some`.

The context is read through dotted paths (`user.address.country`, `items.0`, `name.length`) with
the reference's JavaScript-flavoured rules: numeric segments index arrays and strings, `length`
is the length of an array or string, and anything unresolvable (or null) gives the default.

At the top level the data is the caller's context mapping itself; nothing is copied.  flagd's
enrichment is layered on at compile time instead: `$flagd.flagKey` is a constant of the flag, and
`targetingKey` is simply read from the context.  Only the rare rules that need the enriched
context as a whole (`$flagd.timestamp`, the whole context via `{"var": ""}`, computed paths) ask
the evaluator for a materialised copy, through `RuleCompiler.need_full_context()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vexil.engine.coercion import NUMERIC, to_number, to_string
from vexil.engine.expr import NULL, Expr, Fn, Operator, Site, as_fn, const, dynamic, evaluate_all

FLAGD_PREFIX = "$flagd"


def walk(data: Any, props: Sequence[str], default: Any) -> Any:
    """Follow dotted-path segments from `data`; the default when the path does not resolve."""
    for prop in props:
        if isinstance(data, list | str):
            if prop == "length":
                return len(data)
            try:
                index = int(prop, 10)
            except ValueError:
                return default
            if prop != str(index) or index < 0 or index >= len(data):
                return default
            data = data[index]
        elif isinstance(data, dict):
            data = data.get(prop)
        else:
            return default
    if data is None:
        return default
    return data


def var_lookup(data: Any, key: Any = None, default: Any = None) -> Any:
    """`var` on arbitrary data with an arbitrary key, exactly as the reference resolves it."""
    if key is None or key == "":
        return data
    if isinstance(key, NUMERIC):
        if isinstance(data, list | str):
            try:
                index = int(key)
            except ValueError:
                return default
            if index != key or index < 0 or index >= len(data):
                return default
            return data[index]
        if isinstance(data, dict):
            data = data.get(key)
            if data is None:
                return default
        else:
            return default
    return walk(data, to_string(key).split("."), default)


def _is_missing(value: Any) -> bool:
    return value is None or value == ""


def missing_keys(data: Any, keys: Sequence[Any]) -> list[Any]:
    return [key for key in keys if _is_missing(var_lookup(data, key))]


def missing_impl(data: Any, *args: Any) -> list[Any]:
    """`missing`: the keys (given as arguments, or as one array) that are null or ""."""
    keys: Sequence[Any] = args[0] if args and isinstance(args[0], list) else args
    return missing_keys(data, keys)


def missing_some_impl(data: Any, need: Any = 0, keys: Any = None, *_ignored: Any) -> list[Any]:
    """`missing_some`: [] when at least `need` of `keys` are present, else the missing ones."""
    if not isinstance(keys, list):
        return []
    need = to_number(need)
    absent = missing_keys(data, keys)
    if len(keys) - len(absent) >= need:
        return []
    return absent


# -- compile-time helpers ----------------------------------------------------------------------


def static_path(key: Any) -> list[str] | None:
    """The path segments of a constant `var` key that the top-level fast path can serve, or
    None when the key needs the general lookup (whole data, numbers, arrays, `$flagd`)."""
    if not isinstance(key, str) or key == "":
        return None
    props = key.split(".")
    if props[0] == FLAGD_PREFIX:
        return None
    return props


def top_getter(props: list[str], default: Any) -> Fn:
    """A reader of `props` from the top-level context (a mapping), specialised by depth."""
    first = props[0]
    rest = props[1:]
    if not rest:
        if default is None:
            return lambda data: data.get(first)

        def get1(data: Any) -> Any:
            value = data.get(first)
            return default if value is None else value

        return get1
    if len(rest) == 1:
        second = rest[0]

        def get2(data: Any) -> Any:
            value = data.get(first)
            if value.__class__ is dict:
                value = value.get(second)
                return default if value is None else value
            return walk(value, rest, default)

        return get2

    def get_n(data: Any) -> Any:
        return walk(data.get(first), rest, default)

    return get_n


def _flagd_constant(site: Site, key: Any, default: Expr) -> Expr | None:
    """`$flagd.flagKey...` folds to a constant of the flag; None for every other key."""
    if not isinstance(key, str) or not default.const:
        return None
    props = key.split(".")
    if len(props) < 2 or props[0] != FLAGD_PREFIX or props[1] != "flagKey":
        return None
    return const(walk(site.compiler.flag_key, props[2:], default.value))


def _top_walk(data: Any, first: str, rest: list[str], default: Any) -> Any:
    return walk(data.get(first), rest, default)


def getter(site: Site, key: Any, default: Expr) -> Fn:
    """A reader of a constant key at this site (top level or inside an array operator)."""
    props = static_path(key)
    if not site.item and props is not None:
        if default.const:
            return top_getter(props, default.value)
        default_fn = as_fn(default)
        first, rest = props[0], props[1:]
        return lambda data: _top_walk(data, first, rest, default_fn(data))
    if not site.item:
        site.compiler.need_full_context()
    default_fn = as_fn(default)
    if isinstance(key, str) and key != "":
        split = key.split(".")
        return lambda data: walk(data, split, default_fn(data))
    return lambda data: var_lookup(data, key, default_fn(data))


# -- builders -------------------------------------------------------------------------------


def build_var(site: Site) -> Expr:
    key = site.compile_arg(0) if site.args else NULL
    default = site.compile_arg(1, result=True) if len(site.args) > 1 else NULL
    if len(site.args) > 2:
        # The reference calls var(data, key, default) with too many arguments: a TypeError,
        # after every argument has been evaluated.
        extras = [site.compile_arg(i) for i in range(2, len(site.args))]
        runner = evaluate_all([key, default, *extras])

        def too_many(data: Any) -> Any:
            if runner is not None:
                runner(data)
            raise TypeError(f"var takes at most 2 arguments, got {len(site.args)}")

        return dynamic(too_many)
    if key.const:
        folded = None if site.item else _flagd_constant(site, key.value, default)
        if folded is not None:
            return folded
        props = static_path(key.value)
        simple = (
            not site.item
            and props is not None
            and len(props) == 1
            and default.const
            and default.value is None
        )
        return dynamic(getter(site, key.value, default), key=props[0] if simple and props else None)
    if not site.item:
        site.compiler.need_full_context()
    key_fn = as_fn(key)
    default_fn = as_fn(default)
    return dynamic(lambda data: var_lookup(data, key_fn(data), default_fn(data)))


def _missing_reader(site: Site, keys: list[Any]) -> Callable[[Any], list[Any]]:
    readers = [(key, getter(site, key, NULL)) for key in keys]

    def read(data: Any) -> list[Any]:
        out = []
        for key, get in readers:
            value = get(data)
            if value is None or value == "":
                out.append(key)
        return out

    return read


def build_missing(site: Site) -> Expr:
    args = site.compile_args()
    if all(a.const for a in args):
        values = [a.value for a in args]
        keys = values[0] if values and isinstance(values[0], list) else values
        return dynamic(_missing_reader(site, list(keys)), plain_truth=True)
    if not site.item:
        site.compiler.need_full_context()
    fns = [as_fn(a) for a in args]
    return dynamic(lambda data: missing_impl(data, *[f(data) for f in fns]), plain_truth=True)


def build_missing_some(site: Site) -> Expr:
    args = site.compile_args()
    need, keys = [*args, NULL, NULL][:2]
    extras = evaluate_all(args[2:])
    if keys.const and isinstance(keys.value, list) and extras is None:
        key_list = list(keys.value)
        read = _missing_reader(site, key_list)
        need_fn = as_fn(need)
        count = len(key_list)

        def some(data: Any) -> list[Any]:
            wanted = to_number(need_fn(data))
            absent = read(data)
            return [] if count - len(absent) >= wanted else absent

        return dynamic(some, plain_truth=True)
    if not site.item:
        site.compiler.need_full_context()
    fns = [as_fn(a) for a in args]
    return dynamic(lambda data: missing_some_impl(data, *[f(data) for f in fns]), plain_truth=True)


OPERATORS: dict[str, Operator] = {
    "var": Operator(build_var, 0, 2),
    "missing": Operator(build_missing, 0, None),
    "missing_some": Operator(build_missing_some, 2, 2),
}
