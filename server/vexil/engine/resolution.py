"""What an evaluation answers: the resolution value object and its vocabularies.

The names and meanings are flagd's (and so OpenFeature's), so every protocol adapter can map them
one-to-one onto its wire format without translation tables that could drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import auto
from types import MappingProxyType
from typing import Any

from vexil.model import NamedEnum, shown


class Reason(NamedEnum):
    """Why a resolution has the value it has (flagd's reasons)."""

    STATIC = auto()
    """The flag has no targeting: its default variant is served to everyone (safe to cache)."""
    TARGETING_MATCH = auto()
    """The targeting rule chose a variant for this context."""
    DEFAULT = auto()
    """The rule chose nothing (null), or there is no rule and no default variant."""
    DISABLED = auto()
    """The flag (or its whole environment) is switched off: the caller uses its code default."""
    ERROR = auto()
    """Evaluation failed; `error_code` says how, and the caller uses its code default."""


class ErrorCode(NamedEnum):
    """flagd's error codes; present only when the reason is ERROR."""

    FLAG_NOT_FOUND = auto()
    """No flag with that key in the snapshot evaluated."""
    TYPE_MISMATCH = auto()
    """The flag's value is not of the type the caller asked for."""
    PARSE_ERROR = auto()
    """The flag's definition does not compile (a rule or variant the engine cannot use)."""
    GENERAL = auto()
    """Anything else: the rule failed while evaluating (a budget exceeded, a bad operand)."""


class ValueType(NamedEnum):
    """The type a caller asks for (ANY: no check), and the type of a flag's variants."""

    ANY = auto()
    """No type asked for: whatever the flag's variant holds."""
    BOOL = auto()
    """true or false."""
    STRING = auto()
    """Text."""
    INT = auto()
    """A whole number (a float with no fraction counts as one)."""
    FLOAT = auto()
    """A number (an integer counts as one)."""
    OBJECT = auto()
    """A JSON object or array."""


EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one evaluation.

    `value` and `variant` are None when the caller must substitute its own code default (reasons
    DISABLED and ERROR, and DEFAULT when the flag has no default variant).  Instances are
    immutable and shared: the engine builds every context-independent resolution once (when the
    flag is compiled, or when a type is first asked for) and hands out the same object on every
    evaluation.
    """

    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str = ""
    flag_metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY_METADATA)


def error_resolution(
    code: ErrorCode, message: str, metadata: Mapping[str, Any] = EMPTY_METADATA
) -> Resolution:
    """An ERROR resolution: no value, no variant, the caller falls back to its code default."""
    return Resolution(None, None, Reason.ERROR, code, message, metadata)


def not_found(key: str) -> Resolution:
    """The resolution for a key the environment does not hold (flagd's FLAG_NOT_FOUND). The
    message quotes the key cut short: a key can be megabytes long, and the answer echoes it
    once already, in its key field."""
    return error_resolution(ErrorCode.FLAG_NOT_FOUND, f"flag {shown(key, 140)} not found")
