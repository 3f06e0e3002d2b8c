"""Flag definition -> `CompiledFlag`: validation, rule compilation and pre-built resolutions.

Compiling happens once per change to a flag (or to its environment's `$evaluators`), so this is
where the work goes: the definition is checked (a mistake is reported to whoever wrote it, with
the path of the offending part), the targeting rule becomes closures, and every resolution that
does not depend on the context — the static answer, the default, each variant checked against
each requested type, the disabled answer — is built once and shared by every evaluation.  The
answers for a requested type are built the first time a caller asks for that type (`ByType`):
most flags are only ever asked for as one or two of the six, and building all six made up most
of a compile and most of a compiled flag's objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from vexil.engine import fractional
from vexil.engine.errors import FlagValidationError, describe_failure
from vexil.engine.resolution import ErrorCode, Reason, Resolution, ValueType, error_resolution
from vexil.engine.rules import REF, compile_rule, variant_name
from vexil.model import Flag, shown

_STATES = frozenset(("ENABLED", "DISABLED"))
INT64_MIN, INT64_END = -(2**63), 2**63
"""The integers an int64 field holds: from INT64_MIN up to, not including, INT64_END."""
V = TypeVar("V")


class ByType(dict[ValueType, V]):
    """A table by requested type whose entry for a type is made the first time it is looked up
    with `table[type]` (`get`, the evaluator's hit path, stays a plain dict lookup).  A name that
    is not a `ValueType` is a KeyError, as in a full table.  Entries are only ever added, each
    once (`setdefault`: two threads of a client racing for it get the same one)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[ValueType], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, wanted: Any) -> V:
        try:
            kind = ValueType(wanted)
        except (ValueError, TypeError):
            raise KeyError(wanted) from None
        return self.setdefault(kind, self._make(kind))


def by_type(table: Mapping[ValueType, V], wanted: Any) -> V | None:
    """`table`'s entry for `wanted`, made now if it was not yet (None: not a type)."""
    try:
        return table[wanted]
    except KeyError:
        return None


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    """A flag ready to evaluate.  Immutable: a new one is compiled for every change.

    The tables are dicts for lookup speed (a mapping proxy costs a third more per evaluation):
    `ByType` tables get the entry of a requested type added the first time it is asked for, and
    nothing else changes them after compilation.

    `value_type` is the type of the flag's variants (INT only when every variant is an integer,
    FLOAT when numbers are mixed or fractional; ANY only for a non-strict compile of a flag
    whose variants mix types).  The remaining fields are the evaluator's working set.
    """

    flag: Flag
    key: str
    value_type: ValueType
    flag_metadata: Mapping[str, Any]
    rule: Callable[[Any], Any] | None
    """The compiled targeting; None when the answer does not depend on the context."""
    full_context: bool
    """The rule reads the enriched context as a whole (or `$flagd.timestamp`)."""
    fixed: Mapping[ValueType, Resolution] | None
    """By requested type: the answer when it does not depend on the context."""
    matches: Mapping[ValueType, Mapping[str, Resolution]]
    """By requested type, then variant name: the TARGETING_MATCH answers."""
    defaults: Mapping[ValueType, Resolution]
    """By requested type: the answer when the rule yields null."""
    disabled: Resolution


# -- variants and types -----------------------------------------------------------------------

_KIND_NAMES = {
    ValueType.BOOL: "a boolean",
    ValueType.STRING: "a string",
    ValueType.INT: "a number",
    ValueType.FLOAT: "a number",
    ValueType.OBJECT: "an object",
}


def _kind(value: Any) -> ValueType | None:
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, str):
        return ValueType.STRING
    if isinstance(value, int):
        return ValueType.INT
    if isinstance(value, float):
        return ValueType.FLOAT
    if isinstance(value, dict | list):
        return ValueType.OBJECT
    return None


def _check_variants(flag: Flag, strict: bool) -> ValueType:
    """Validate the variants; their common type (ANY when mixed and not strict)."""
    variants = flag.variants
    if not isinstance(variants, Mapping) or not variants:
        raise FlagValidationError("a flag needs at least one variant (name -> value)", "variants")
    first_name: str | None = None
    first_kind: ValueType | None = None
    kinds: set[ValueType] = set()
    for name, value in variants.items():
        if not isinstance(name, str) or not name:
            if strict:
                raise FlagValidationError(
                    f"variant names are non-empty strings, got {shown(name)}", "variants"
                )
            continue
        kind = _kind(value)
        if strict:
            if kind is None:
                what = "null" if value is None else type(value).__name__
                raise FlagValidationError(
                    f"{what} is not a variant value: use a boolean, string, number or object",
                    f"variants.{name}",
                )
            if kind is ValueType.FLOAT and not math.isfinite(value):
                raise FlagValidationError(f"{shown(value)} is not a finite number", f"variants.{name}")
            if first_kind is not None and _KIND_NAMES[kind] != _KIND_NAMES[first_kind]:
                raise FlagValidationError(
                    f"variant types mixed: '{first_name}' is {_KIND_NAMES[first_kind]} but '{name}' is "
                    f"{_KIND_NAMES[kind]}; every variant of a flag has the same type",
                    f"variants.{name}",
                )
        if kind is None:
            kinds.add(ValueType.ANY)
            continue
        if first_kind is None:
            first_name, first_kind = name, kind
        kinds.add(kind)
    if kinds == {ValueType.INT, ValueType.FLOAT}:
        return ValueType.FLOAT
    if len(kinds) == 1:
        return next(iter(kinds))
    return ValueType.ANY


def _typed(
    key: str, name: str, value: Any, reason: Reason, wanted: ValueType, metadata: Mapping[str, Any]
) -> Resolution:
    """The resolution serving `value` to a caller that asked for `wanted`.

    INT accepts an integral float within int64 (returned as int: the flag may have come through
    JSON or a protobuf Struct, where every number is a double; beyond int64 no integer field can
    carry it, so it is the float flag it looks like); FLOAT accepts an int (returned as float);
    BOOL is never a number and a number is never a BOOL.
    """
    if wanted is ValueType.ANY:
        return Resolution(value, name, reason, None, "", metadata)
    served: Any = _MISMATCH
    if wanted is ValueType.BOOL:
        if value.__class__ is bool:
            served = value
    elif wanted is ValueType.STRING:
        if isinstance(value, str):
            served = value
    elif wanted is ValueType.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            served = value
        elif isinstance(value, float) and value.is_integer() and INT64_MIN <= value < INT64_END:
            served = int(value)
    elif wanted is ValueType.FLOAT:
        if isinstance(value, float):
            served = value
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                served = float(value)
            except OverflowError:
                return error_resolution(
                    ErrorCode.GENERAL, f"variant '{name}' of flag '{key}' is too large for a float", metadata
                )
    elif wanted is ValueType.OBJECT and isinstance(value, dict | list):
        served = value
    if served is _MISMATCH:
        kind = _kind(value)
        what = "null" if kind is None else str(kind).lower()
        return error_resolution(
            ErrorCode.TYPE_MISMATCH,
            f"flag '{key}' is a {what} flag (variant '{name}'), not {str(wanted).lower()}",
            metadata,
        )
    return Resolution(served, name, reason, None, "", metadata)


_MISMATCH = object()
_TYPES = tuple(ValueType)


def _default_resolutions(
    flag: Flag, default: str | None, reason: Reason, metadata: Mapping[str, Any]
) -> Mapping[ValueType, Resolution]:
    """By type: the default variant served with `reason` (DEFAULT without a default variant)."""
    if default is None:
        none = Resolution(None, None, Reason.DEFAULT, None, "", metadata)
        return dict.fromkeys(_TYPES, none)
    if default not in flag.variants:
        missing = error_resolution(
            ErrorCode.GENERAL,
            f"default variant '{default}' of flag '{flag.key}' is not one of its variants",
            metadata,
        )
        return dict.fromkeys(_TYPES, missing)
    key, value = flag.key, flag.variants[default]
    return ByType(lambda wanted: _typed(key, default, value, reason, wanted, metadata))


def _match_resolutions(flag: Flag, metadata: Mapping[str, Any]) -> Mapping[ValueType, dict[str, Resolution]]:
    """By type, then variant name: each variant served as TARGETING_MATCH."""
    key = flag.key
    variants = [(name, value) for name, value in flag.variants.items() if isinstance(name, str)]

    def table(wanted: ValueType) -> dict[str, Resolution]:
        out: dict[str, Resolution] = {}
        for name, value in variants:
            if not name or value is None:
                # The reference cannot serve these (an empty name reads as "no variant").
                out[name] = error_resolution(
                    ErrorCode.GENERAL, f"variant '{name}' of flag '{key}' has no value", metadata
                )
            else:
                out[name] = _typed(key, name, value, Reason.TARGETING_MATCH, wanted, metadata)
        return out

    return ByType(table)


# -- the compiler -----------------------------------------------------------------------------


def _default_variant(flag: Flag, strict: bool) -> str | None:
    default = flag.default_variant
    if default is None or default == "":
        return None
    if isinstance(default, bool):
        default = variant_name(default)
    if not isinstance(default, str):
        raise FlagValidationError(
            f"the default variant is a variant name, got {shown(default)}", "defaultVariant"
        )
    if strict and default not in flag.variants:
        names = ", ".join(sorted(str(n) for n in flag.variants)[:10])
        raise FlagValidationError(f"'{default}' is not one of the variants ({names})", "defaultVariant")
    return default


def _root_reference(targeting: Any, evaluators: Mapping[str, Any] | None) -> tuple[Any, str]:
    """A targeting that is only a `$ref` is the referenced rule (which may be static or not an
    object at all: decided on the rule itself, as the reference does after substitution).
    Returns the rule and the path it is found at."""
    path = "targeting"
    seen: set[str] = set()
    while (
        isinstance(targeting, dict)
        and len(targeting) == 1
        and isinstance(name := targeting.get(REF), str)
        and evaluators
        and name in evaluators
        and name not in seen
    ):
        seen.add(name)
        targeting = evaluators[name]
        path = f"$evaluators.{name}"
    return targeting, path


def missing_reference(
    node: Any, evaluators: Mapping[str, Any] | None, seen: frozenset[str] = frozenset()
) -> str | None:
    """The name of the first `$ref` in `node` (or in the evaluators it reaches) that names no
    evaluator, else None.  flagd substitutes `$ref`s when it loads a flag: one it cannot
    resolve makes that flag a PARSE_ERROR, whatever the context."""
    if isinstance(node, list):
        for item in node:
            if (found := missing_reference(item, evaluators, seen)) is not None:
                return found
        return None
    if not isinstance(node, dict):
        return None
    for op, args in node.items():
        if op == REF and isinstance(args, str):
            if not evaluators or args not in evaluators:
                return args
            if args not in seen:
                found = missing_reference(evaluators[args], evaluators, seen | {args})
                if found is not None:
                    return found
            continue
        if (found := missing_reference(args, evaluators, seen)) is not None:
            return found
    return None


def _is_static(targeting: Any) -> bool:
    # The reference tests truthiness: null, {}, [], "", 0 and false all mean "no targeting".
    try:
        return not targeting
    except Exception:
        return False


def compile_flag(
    flag: Flag,
    evaluators: Mapping[str, Any] | None = None,
    *,
    flag_set_metadata: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> CompiledFlag:
    """Validate `flag` and compile it for evaluation.

    `evaluators` are the environment's `$evaluators`, which `{"$ref": name}` in the targeting
    refers to.  `flag_set_metadata` (flagd's flag-set `metadata`) is merged under the flag's own
    metadata in every resolution; its `fractionalHashing` (`"string"`, the default, or `"cbor"`)
    chooses how `fractional` buckets (see `fractional.py`).  Raises `FlagValidationError` for
    a definition the engine refuses; with `strict=False`, only for what cannot be compiled at
    all (no variants, a non-string key), and everything the reference accepts compiles to the
    reference's behaviour.
    """
    key = flag.key
    if not isinstance(key, str):
        raise FlagValidationError(f"the flag key is a string, got {shown(key)}", "key")
    state = str(flag.state)
    if state not in _STATES:
        raise FlagValidationError(f"state is ENABLED or DISABLED, got {shown(state)}", "state")
    if flag.metadata is not None and not isinstance(flag.metadata, Mapping):
        raise FlagValidationError("metadata is an object", "metadata")
    if evaluators is not None and not isinstance(evaluators, Mapping):
        raise FlagValidationError("$evaluators is an object (name -> rule)", "$evaluators")
    hashing = fractional.hashing_of(flag_set_metadata)
    if hashing is None:
        if strict:
            raise FlagValidationError(
                f"the flag set's {fractional.HASHING_KEY} is one of {', '.join(fractional.HASHINGS)}, "
                f"got {shown(flag_set_metadata.get(fractional.HASHING_KEY))}",  # type: ignore[union-attr]
                f"metadata.{fractional.HASHING_KEY}",
            )
        hashing = fractional.STRING
    value_type = _check_variants(flag, strict)
    default = _default_variant(flag, strict)
    merged = {**(flag_set_metadata or {}), **(flag.metadata or {})}
    metadata: Mapping[str, Any] = MappingProxyType(merged)

    disabled = Resolution(None, None, Reason.DISABLED, None, "", metadata)
    targeting, targeting_path = _root_reference(flag.targeting, evaluators)
    static = _is_static(targeting)
    rule: Callable[[Any], Any] | None = None
    full_context = False
    fixed: Mapping[ValueType, Resolution] | None = None
    matches = _match_resolutions(flag, metadata)
    defaults = _default_resolutions(flag, default, Reason.DEFAULT, metadata)

    missing = None if static or strict else missing_reference(targeting, evaluators)
    if missing is not None:
        bad = error_resolution(
            ErrorCode.PARSE_ERROR, f"flag '{key}': $ref to an unknown evaluator '{missing}'", metadata
        )
        fixed = dict.fromkeys(_TYPES, bad)
    elif not static:
        if isinstance(targeting, dict):
            variant_names = frozenset(n for n in flag.variants if isinstance(n, str))
            expr, full_context = compile_rule(
                targeting,
                key,
                variants=variant_names,
                evaluators=evaluators,
                strict=strict,
                path=targeting_path,
                fractional_hashing=hashing,
            )
            if expr.const:
                fixed = _fixed_result(flag, expr.value, matches, defaults, metadata)
            else:
                rule = expr.fn
        elif strict:
            raise FlagValidationError(
                f"targeting is a JSONLogic rule (an object), got {type(targeting).__name__}", targeting_path
            )
        else:
            bad = error_resolution(ErrorCode.PARSE_ERROR, f"invalid targeting in flag '{key}'", metadata)
            fixed = dict.fromkeys(_TYPES, bad)
    if not flag.enabled:
        fixed = dict.fromkeys(_TYPES, disabled)
        rule = None
    elif static:
        fixed = _default_resolutions(flag, default, Reason.STATIC, metadata)

    return CompiledFlag(
        flag=flag,
        key=key,
        value_type=value_type,
        flag_metadata=metadata,
        rule=rule,
        full_context=full_context,
        fixed=fixed,
        matches=matches,
        defaults=defaults,
        disabled=disabled,
    )


def _fixed_result(
    flag: Flag,
    result: Any,
    matches: Mapping[ValueType, Mapping[str, Resolution]],
    defaults: Mapping[ValueType, Resolution],
    metadata: Mapping[str, Any],
) -> Mapping[ValueType, Resolution]:
    """By type: the answer of a rule whose result is a constant."""
    if result is None:
        return defaults
    try:
        name = variant_name(result)
    except Exception as exc:  # str() of an enormous integer
        failed = error_resolution(ErrorCode.GENERAL, f"flag '{flag.key}': {describe_failure(exc)}", metadata)
        return dict.fromkeys(_TYPES, failed)
    key, chosen = flag.key, str(name)  # a str: only null selects no variant, handled above
    return ByType(lambda wanted: matches[wanted].get(chosen) or unknown_variant(key, chosen, metadata))


def unknown_variant(key: str, name: Any, metadata: Mapping[str, Any]) -> Resolution:
    return error_resolution(
        ErrorCode.GENERAL,
        f"flag '{key}': the rule chose variant '{name}', which the flag does not have",
        metadata,
    )
