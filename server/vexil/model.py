"""The domain model shared by every layer: flags, environments and the change log.

These are plain immutable values with no behaviour beyond construction helpers, so that the
engine (pure), the stores (I/O) and the API adapters (gRPC, HTTP) can all speak about the same
things without importing each other.  JSON-shaped fields (variants, targeting, metadata) hold
plain Python JSON values (dict, list, str, int, float, bool, None) and are never mutated after
a value is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum, auto
from typing import Any, Generic, TypeVar

from vexil.errors import InvalidArgument

T = TypeVar("T")

JSON = Any
"""A JSON value as produced by `json.loads` (integral numbers are `int`)."""

FLAG_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
ENVIRONMENT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_\-]{0,62}")


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)` as a message or log line quotes it: control characters escaped, cut short
    (so a hostile megabyte is not echoed), and never failing (an integer with thousands of
    digits, for one, cannot be printed)."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_flag_key(key: str, field: str = "key") -> str:
    """The one check of a flag key (the API, the stores, the console). Keys become part of
    DynamoDB keys (`FLAG#<env>#<key>`), so '#' and friends are refused."""
    if isinstance(key, str) and FLAG_KEY_PATTERN.fullmatch(key):
        return key
    if key == "":
        raise InvalidArgument("a flag key is required", field)
    raise InvalidArgument(
        f"{shown(key, 140)} is not a valid flag key: use 1-128 characters from A-Z a-z 0-9 _ . -", field
    )


def check_environment_name(name: str, field: str = "environment") -> str:
    """The one check of an environment name (it is part of every DynamoDB key of the environment)."""
    if isinstance(name, str) and ENVIRONMENT_PATTERN.fullmatch(name):
        return name
    raise InvalidArgument(
        f"{shown(name, 70)} is not a valid environment name: use 1-63 characters from a-z 0-9 _ -, "
        "starting with a letter or digit",
        field,
    )


class NamedEnum(StrEnum):
    """A `StrEnum` whose `auto()` members take their own name as value (`StrEnum` itself would
    lowercase it), for enums whose value is a wire or log name: the member and the string stored,
    sent or logged cannot drift apart."""

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[str]) -> str:
        return name


class FlagState(NamedEnum):
    """A flag's state (flagd's `state`), changed only by its kill switch."""

    ENABLED = auto()
    """Evaluation follows the flag's targeting and default variant."""
    DISABLED = auto()
    """Killed: every evaluation resolves DISABLED and callers fall back to their code defaults."""


class ChangeKind(NamedEnum):
    """What a change-log entry did; one entry per write."""

    CREATE = auto()
    """A flag was created (its history continues if it existed before and was deleted)."""
    UPDATE = auto()
    """A flag's definition was replaced; its state (kill switch) is kept."""
    DELETE = auto()
    """A flag was deleted; its history stays readable."""
    ROLLBACK = auto()
    """A flag's definition went back to an earlier version's, written as a new version."""
    KILL = auto()
    """Per-flag kill switch turned on or off (the flag's state changed)."""
    ENVIRONMENT = auto()
    """Environment-level change: kill switch, `$evaluators` or flag-set metadata."""


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag definition in one environment: flagd's model plus what operators need.

    `default_variant` None means "no default": evaluation then returns the caller's code default.
    `targeting` None (or an empty object) means the flag is static.
    `version` is 0 for a flag that has not been stored yet; stores assign 1, 2, ...
    Timestamps are seconds since the epoch (float), UTC.
    """

    key: str
    environment: str
    variants: Mapping[str, JSON]
    default_variant: str | None = None
    state: FlagState = FlagState.ENABLED
    targeting: JSON = None
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, JSON] = field(default_factory=dict)
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    updated_by: str = ""
    managed_by: str = ""
    """Who owns the definition: "" for the admin API, `file:<name>` for a flags file (which then
    updates and deletes it as the file changes, and never touches any other flag).  Set when the
    flag is created and kept by every later write, so an edit through the API, a kill or a
    rollback does not take the flag away from its file."""
    problem: str = ""
    """Why this stored flag cannot be used, "" when it can: set by a store that read an item it
    cannot serve as written (by hand: JSON text that does not parse, a value no reader could carry,
    a `state` that says neither enabled nor disabled).  Its definition fields then hold nothing
    usable (no variants), so it answers PARSE_ERROR through every door, and a write other than a
    delete is refused rather than replace what the item holds (`records.update_write`)."""

    @property
    def enabled(self) -> bool:
        return self.state is FlagState.ENABLED or self.state == "ENABLED"

    def definition(self) -> dict[str, JSON]:
        """The flag as flagd's flag-definition JSON (what a flagd file holds under `flags.<key>`)."""
        out: dict[str, JSON] = {"state": str(self.state), "variants": dict(self.variants)}
        if self.default_variant is not None:
            out["defaultVariant"] = self.default_variant
        if self.targeting not in (None, {}):
            out["targeting"] = self.targeting
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def boolean_flag(key: str, environment: str, default_enabled: bool, **fields: Any) -> Flag:
    """A flag as the operations guide provisions it: no variants, just `defaultEnabled`."""
    return Flag(
        key=key,
        environment=environment,
        variants={"on": True, "off": False},
        default_variant="on" if default_enabled else "off",
        **fields,
    )


@dataclass(frozen=True, slots=True)
class Environment:
    """Environment-level configuration, versioned by `config_version` (one step per write)."""

    name: str
    evaluators: Mapping[str, JSON] = field(default_factory=dict)
    """flagd's `$evaluators`: named rule fragments that targeting reaches with `$ref`."""
    kill_switch: bool = False
    """On: every flag of the environment resolves DISABLED, so callers fall back to code defaults."""
    kill_reason: str = ""
    metadata: Mapping[str, JSON] = field(default_factory=dict)
    """Flag-set metadata (flagd's top-level `metadata`), merged under each flag's own."""
    config_version: int = 0
    updated_at: float = 0.0
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """One change-log entry: the audit trail, the replication log and Watch's resume token.

    `flag` is the flag after the change (None for DELETE and ENVIRONMENT changes); `environment`
    is the environment after an ENVIRONMENT change (None otherwise).
    """

    environment_name: str
    config_version: int
    kind: ChangeKind
    actor: str
    timestamp: float
    flag_key: str = ""
    before_version: int = 0
    after_version: int = 0
    reason: str = ""
    flag: Flag | None = None
    environment: Environment | None = None


@dataclass(frozen=True, slots=True)
class FlagRevision:
    """One entry of a flag's history: the full definition as it was at `flag.version`."""

    flag: Flag
    kind: ChangeKind
    actor: str
    timestamp: float
    config_version: int
    reason: str = ""
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of results with an opaque token for the next one ("" when there is none)."""

    items: list[T]
    next_token: str = ""
