"""flagd's `sem_ver`: `{"sem_ver": [version, operator, version]}`.

Operators: `=`, `!=`, `<`, `<=`, `>`, `>=` (Semantic Versioning 2.0.0 precedence: build metadata
ignored, a pre-release sorts before its release, pre-release identifiers compare numerically
when both are numeric), `^` (same major) and `~` (same major and minor).  A leading `v`/`V` is
dropped and partial versions are padded (`1` -> `1.0.0`, `1.2-rc.1` -> `1.2.0-rc.1`).  Anything
that is not a version, a wrong operator or a wrong number of arguments gives null (no match).

Versions are parsed into precedence keys — tuples that order exactly as SemVer precedence, so a
comparison is one tuple comparison — and context versions are memoised, because the same few app
versions arrive again and again.  A literal version in the rule is parsed once, at compile time.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from vexil.engine.expr import Expr, Operator, Site, as_fn, dynamic, eager
from vexil.model import shown

_NUMBER = r"0|[1-9][0-9]*"
_PRE_IDENTIFIER = r"0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*"
_BUILD_IDENTIFIER = r"[0-9a-zA-Z-]+"
_VERSION = re.compile(
    rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>(?:{_PRE_IDENTIFIER})(?:\.(?:{_PRE_IDENTIFIER}))*))?"
    rf"(?:\+(?:{_BUILD_IDENTIFIER})(?:\.(?:{_BUILD_IDENTIFIER}))*)?",
    re.ASCII,
)

Key = tuple[Any, ...]
"""(major, minor, patch, is_release, pre-release identifier keys): orders like SemVer."""


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    if identifier.isdigit():
        return (0, len(identifier), identifier)  # numeric: by value (no leading zeros allowed)
    return (1, 0, identifier)  # alphanumeric: ASCII order, after every numeric identifier


def parse_version(text: str) -> Key | None:
    """The precedence key of a version string as flagd reads it, or None if it is not one."""
    if text.startswith(("v", "V")):
        text = text[1:]
    numeric = text.split("-")[0].split("+")[0]
    dots = numeric.count(".")
    if dots < 2:
        text = numeric + ".0" * (2 - dots) + text[len(numeric) :]
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    try:
        major, minor, patch = int(match["major"]), int(match["minor"]), int(match["patch"])
    except ValueError:  # more digits than Python converts
        return None
    pre = match["pre"]
    if pre is None:
        return (major, minor, patch, 1, ())
    return (major, minor, patch, 0, tuple(_identifier_key(part) for part in pre.split(".")))


_CACHE: dict[str, Key | None] = {}
_CACHE_LIMIT = 4096
_MISSING = object()


def version_key(value: Any) -> Key | None:
    """`parse_version` of any JSON value's string form, memoised for strings."""
    if value.__class__ is not str:
        try:
            text = str(value)
        except ValueError:  # an integer too long to print: not a version (as in the reference)
            return None
        return parse_version(text)
    key = _CACHE.get(value, _MISSING)
    if key is _MISSING:
        key = parse_version(value)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[value] = key
    return key  # type: ignore[return-value]


COMPARATORS: dict[str, Callable[[Key, Key], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "^": lambda a, b: a[0] == b[0],
    "~": lambda a, b: a[0] == b[0] and a[1] == b[1],
}


def compare_versions(*values: Any) -> bool | None:
    """The operator on evaluated arguments, in full generality."""
    if len(values) != 3:
        return None
    left, op, right = values
    a = version_key(left)
    b = version_key(right)
    if a is None or b is None:
        return None
    compare = COMPARATORS.get(op) if isinstance(op, str) else None
    if compare is None:
        return None
    return compare(a, b)


_TUPLE_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _against_literal(subject: Expr, op: str, literal: Any) -> Expr:
    """`{"sem_ver": [x, op, "1.2.3"]}`: the literal parsed once; the attribute's key looked up
    in the memo inline; the comparison a C-level tuple comparison (or a major/minor test)."""
    target = version_key(literal)
    fn = as_fn(subject)
    if op not in COMPARATORS or target is None:
        return dynamic(lambda data: (fn(data), None)[1], boolean=True)
    k = subject.key
    cache_get = _CACHE.get

    def key_of(data: Any) -> Key | None:
        value = data.get(k) if k is not None else fn(data)
        if value.__class__ is str:
            found = cache_get(value, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[no-any-return,return-value]
        return version_key(value)

    if op == "^":
        major = target[0]
        return dynamic(lambda data: None if (v := key_of(data)) is None else v[0] == major, boolean=True)
    if op == "~":
        major, minor = target[0], target[1]
        return dynamic(
            lambda data: None if (v := key_of(data)) is None else v[0] == major and v[1] == minor,
            boolean=True,
        )
    test = _TUPLE_ORDER[op]
    return dynamic(lambda data: None if (v := key_of(data)) is None else test(v, target), boolean=True)


def build_sem_ver(site: Site) -> Expr:
    args = site.compile_args()
    if len(args) == 3:
        left, op, right = args
        if op.const and not (isinstance(op.value, str) and op.value in COMPARATORS):
            site.invalid(
                f"unknown sem_ver operator {shown(op.value)}; use one of {', '.join(COMPARATORS)}",
                site.arg_paths[1],
            )
        for expr, path in ((left, site.arg_paths[0]), (right, site.arg_paths[2])):
            if expr.const and version_key(expr.value) is None:
                site.invalid(f"{shown(expr.value)} is not a semantic version", path)
        if op.const and right.const and not left.const and isinstance(op.value, str):
            return _against_literal(left, op.value, right.value)
    return eager(compare_versions, args, boolean=True)


OPERATORS: dict[str, Operator] = {
    "sem_ver": Operator(build_sem_ver, 3, 3),
}
