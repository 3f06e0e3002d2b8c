"""`evaluate`: resolve a compiled flag for one context.  Never raises.

The hot path: a static flag returns a resolution built once (two dict lookups; the first call
asking for a type builds that type's answers, `compiler.ByType`); a targeted flag calls its
compiled rule with the caller's context as is (no copy) and maps the result to a pre-built
resolution.  Only rules that read the enriched context as a whole get a
materialised copy with `targetingKey` and `$flagd` (`flagKey`, `timestamp`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from vexil.engine.budget import BudgetExceeded
from vexil.engine.compiler import CompiledFlag, by_type, unknown_variant
from vexil.engine.errors import RuleParseError, describe_failure
from vexil.engine.resolution import ErrorCode, Resolution, ValueType, error_resolution
from vexil.model import shown

_EMPTY: Mapping[str, Any] = {}


def evaluate(
    compiled: CompiledFlag,
    context: Mapping[str, Any],
    value_type: ValueType = ValueType.ANY,
    *,
    environment_killed: bool = False,
    now: int | None = None,
) -> Resolution:
    """Resolve `compiled` for `context` as a caller asking for `value_type`.

    `environment_killed`: the environment's kill switch is on (the flag resolves DISABLED).
    `now`: seconds since the epoch for `$flagd.timestamp` (default: the current time).
    Every failure becomes an ERROR resolution; nothing raises.
    """
    try:
        if environment_killed:
            return compiled.disabled
        fixed = compiled.fixed
        if fixed is not None:
            found = fixed.get(value_type)
            if found is None:
                found = by_type(fixed, value_type)  # first asked for as this type
            return found if found is not None else _unknown_type(compiled, value_type)
        data = context
        if data.__class__ is not dict:
            if data is None:
                data = _EMPTY
            elif not isinstance(data, Mapping):
                return error_resolution(
                    ErrorCode.GENERAL,
                    f"the evaluation context is a mapping, got {type(context).__name__}",
                    compiled.flag_metadata,
                )
        if compiled.full_context:
            data = _enriched(compiled.key, data, now)
        result = compiled.rule(data)  # type: ignore[misc]
        if result is None:
            found = compiled.defaults.get(value_type)
            if found is None:
                found = by_type(compiled.defaults, value_type)
            return found if found is not None else _unknown_type(compiled, value_type)
        if result.__class__ is not str:
            if result is True:
                result = "true"
            elif result is False:
                result = "false"
            else:
                result = str(result)
        table = compiled.matches.get(value_type)
        if table is None:
            table = by_type(compiled.matches, value_type)
            if table is None:
                return _unknown_type(compiled, value_type)
        found = table.get(result)
        return found if found is not None else unknown_variant(compiled.key, result, compiled.flag_metadata)
    except RuleParseError as exc:
        return error_resolution(
            ErrorCode.PARSE_ERROR, f"flag '{compiled.key}': {exc}", compiled.flag_metadata
        )
    except BudgetExceeded as exc:
        return error_resolution(ErrorCode.GENERAL, f"flag '{compiled.key}': {exc}", compiled.flag_metadata)
    except Exception as exc:
        return _failed(compiled, exc)


def _enriched(key: str, context: Mapping[str, Any], now: int | None) -> dict[str, Any]:
    """The context as flagd's rules see it as a whole: the caller's attributes, then
    `$flagd` (`flagKey`, `timestamp`) and `targetingKey` on top."""
    data = dict(context)
    data["$flagd"] = {"flagKey": key, "timestamp": int(time.time()) if now is None else int(now)}
    data["targetingKey"] = context.get("targetingKey")
    return data


def _failed(compiled: Any, exc: Exception) -> Resolution:
    try:
        key, metadata = compiled.key, compiled.flag_metadata
    except Exception:  # not a CompiledFlag at all
        return error_resolution(ErrorCode.GENERAL, f"cannot evaluate {type(compiled).__name__}")
    return error_resolution(ErrorCode.GENERAL, f"flag '{key}': {describe_failure(exc)}", metadata)


def _unknown_type(compiled: CompiledFlag, value_type: Any) -> Resolution:
    return error_resolution(
        ErrorCode.GENERAL,
        f"unknown value type {shown(value_type)}; use one of {', '.join(ValueType)}",
        compiled.flag_metadata,
    )
