"""Strings: `cat`, `substr`, and flagd's `starts_with` / `ends_with`.

`cat` and `substr` coerce with JavaScript's `String()` rules (`coercion.to_string`).  flagd's
string comparisons are stricter: both operands must already be strings and there must be exactly
two, otherwise the result is null (the rule's "no match", never an error).

`cat` and `substr` evaluated per call spend the length of the string they build from the
evaluation's budget (`budget`): a `cat` that doubles its accumulator in a `reduce` is cut off
long before it takes the process's memory.
"""

from __future__ import annotations

from math import isnan
from typing import Any

from vexil.engine.budget import build
from vexil.engine.coercion import to_number, to_string
from vexil.engine.expr import Expr, Operator, Site, as_fn, dynamic, eager, fixed_arity


def concatenate(*values: Any) -> str:
    return "".join([to_string(value) for value in values])


def build_cat(site: Site) -> Expr:
    args = site.compile_args()
    if all(a.const for a in args) or not args:
        return eager(concatenate, args, plain_truth=True)
    site.compiler.meter()
    # Merge neighbouring constants into literal text once, at compile time.
    parts: list[tuple[bool, Any]] = []
    for arg in args:
        if arg.const:
            text = to_string(arg.value)
            if parts and parts[-1][0]:
                parts[-1] = (True, parts[-1][1] + text)
            else:
                parts.append((True, text))
        else:
            parts.append((False, as_fn(arg)))
    if len(parts) == 2 and parts[0][0] and not parts[1][0]:
        prefix, fn = parts[0][1], parts[1][1]

        def prefixed(data: Any) -> str:
            text = prefix + (v if (v := fn(data)).__class__ is str else to_string(v))
            build(len(text))
            return text

        return dynamic(prefixed, plain_truth=True)
    layout = tuple(parts)

    def joined(data: Any) -> str:
        text = "".join([value if is_text else to_string(value(data)) for is_text, value in layout])
        build(len(text))
        return text

    return dynamic(joined, plain_truth=True)


def substring(text: Any, start: Any, length: Any) -> str:
    """`substr`: JavaScript-style start (negative counts from the end) and length (negative
    stops that many characters before the end), on the string form of `text`."""
    text = to_string(text)
    size = len(text)
    start = to_number(start)
    if isnan(start):
        index = 0
    elif start < 0:
        index = size - int(-start) if -start < size else 0
    else:
        index = min(int(start), size)
    if length is None:
        end = size
    else:
        length = to_number(length)
        if isnan(length):
            end = index
        else:
            count = int(length)
            end = max(size + count, index) if count < 0 else index + count
    return text[index:end]


def substring_metered(text: Any, start: Any, length: Any) -> str:
    """`substr` evaluated per call: spends the length of its result."""
    result = substring(text, start, length)
    build(len(result))
    return result


def build_substr(site: Site) -> Expr:
    args = site.compile_args()
    if all(a.const for a in args):
        return eager(fixed_arity(substring, 3, len(args)), args, plain_truth=True)
    site.compiler.meter()
    return eager(fixed_arity(substring_metered, 3, len(args)), args, plain_truth=True)


def _string_test(site: Site, method: Any) -> Expr:
    """`starts_with` / `ends_with`: true/false for two strings, null for anything else."""
    args = site.compile_args()
    if len(args) == 2 and args[1].const and not args[0].const:
        affix = args[1].value
        k, fn = args[0].key, as_fn(args[0])
        if isinstance(affix, str):
            if k is not None:
                return dynamic(
                    lambda data: method(v, affix) if isinstance(v := data.get(k), str) else None, boolean=True
                )
            return dynamic(
                lambda data: method(v, affix) if isinstance(v := fn(data), str) else None, boolean=True
            )
        site.invalid(f"{site.op} compares strings; the second argument is not a string", site.arg_paths[1])

    def test(*values: Any) -> bool | None:
        if len(values) != 2:
            return None
        subject, affix = values
        if not isinstance(subject, str) or not isinstance(affix, str):
            return None
        return bool(method(subject, affix))

    return eager(test, args, boolean=True)


OPERATORS: dict[str, Operator] = {
    "cat": Operator(build_cat, 0, None),
    "substr": Operator(build_substr, 2, 3),
    "starts_with": Operator(lambda site: _string_test(site, str.startswith), 2, 2),
    "ends_with": Operator(lambda site: _string_test(site, str.endswith), 2, 2),
}
