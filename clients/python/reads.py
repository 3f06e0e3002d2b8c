"""Which context attributes a flag's rule can read, so local mode converts only those.

Local mode must see a context exactly as the server would after the Struct round trip (see
`context.py`), but converting or even checking every attribute on every call costs more than
many evaluations.  A compiled rule reads the caller's context only through constant `var` (and
`missing`) paths unless the engine marked it `full_context`; the first segment of each path is
the attribute it can see.  So per flag, once per change, this walks the targeting (and the
`$evaluators` it references) and records those names; an evaluation then checks just them.

Anything this cannot tell for sure yields None ("any attribute"), and the whole context is
converted: being conservative costs time, never correctness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Reads = frozenset[str] | None
"""Top-level attributes a flag can read; None when it may read any."""
NOTHING: frozenset[str] = frozenset()

_FLAGD = "$flagd"


class _Unknown(Exception):
    """The rule reads the context in a way this analysis does not follow."""


def context_reads(entry: Any, evaluators: Mapping[str, Any]) -> Reads:
    """What `entry` (a compiled or broken snapshot entry) can read from a caller's context."""
    if getattr(entry, "fixed", None) is not None or not hasattr(entry, "rule"):
        return NOTHING  # the answer does not depend on the context (static, disabled, broken)
    if entry.full_context or entry.rule is None:
        return None
    names: set[str] = set()
    try:
        _walk(entry.flag.targeting, evaluators, names, set())
    except (_Unknown, RecursionError):
        return None
    return frozenset(names)


def _walk(node: Any, evaluators: Mapping[str, Any], names: set[str], refs: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, evaluators, names, refs)
        return
    if not isinstance(node, dict):
        return
    if len(node) != 1:
        for value in node.values():
            _walk(value, evaluators, names, refs)
        return
    op, args = next(iter(node.items()))
    if op == "var":
        key = args[0] if isinstance(args, list) and args else args
        _name(key, names)
        if isinstance(args, list):
            _walk(args[1:], evaluators, names, refs)
    elif op == "missing":
        keys = args[0] if isinstance(args, list) and args and isinstance(args[0], list) else args
        for key in keys if isinstance(keys, list) else [keys]:
            _name(key, names)
    elif op == "missing_some":
        if not (isinstance(args, list) and len(args) >= 2 and isinstance(args[1], list)):
            raise _Unknown(op)
        for key in args[1]:
            _name(key, names)
        _walk(args[0], evaluators, names, refs)
    elif op == "$ref":
        if not isinstance(args, str):
            raise _Unknown(op)
        if args not in refs:
            refs.add(args)
            _walk(evaluators.get(args), evaluators, names, refs)
    else:
        if op == "fractional":
            names.add("targetingKey")  # the shorthand form buckets by [flagKey, targetingKey]
        _walk(args, evaluators, names, refs)


def _name(key: Any, names: set[str]) -> None:
    if not isinstance(key, str) or not key:
        raise _Unknown(f"var {key!r}")
    first = key.split(".", 1)[0]
    if first != _FLAGD:
        names.add(first)
