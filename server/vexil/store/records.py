"""JSON records, validation and write records shared by every store backend.

Both backends normalise flags and environments through this module, so a definition the memory
store accepts is one DynamoDB accepts too, and both hand back exactly equal values: JSON-shaped
fields are copied through a strict JSON round trip (the store owns its copy; NaN, sets and other
non-JSON values are refused up front), and timestamps are produced in a form that survives the
ISO-8601 text the operations guide uses for `createdAt` without losing a bit.

Both backends also build what a write stores here (the next flag or environment, its history
revision and its change-log entry) and check it against what is stored now, so the versioning
rules of `vexil.store.base` are written once and a backend only decides how to persist the result.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from vexil.errors import Conflict, FailedPrecondition, FlagAlreadyExists, FlagNotFound, InvalidArgument
from vexil.model import (
    JSON,
    Change,
    ChangeKind,
    Environment,
    Flag,
    FlagRevision,
    FlagState,
    check_environment_name,
    check_flag_key,
)

MAX_ITEM_BYTES = 350 * 1024
"""Budget for one stored flag (DynamoDB's hard limit is 400 KB per item; the rest is headroom for
the history and change-log items that carry the same definition plus a few attributes)."""


# --- timestamps ---------------------------------------------------------------------------


def format_timestamp(ts: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with microseconds, e.g. 2026-11-28T09:30:00.000001Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


EARLIEST_TIMESTAMP = -62135596800.0
"""0001-01-01T00:00:00Z: the earliest time a protobuf Timestamp (every vexil.v1 message) holds."""
LATEST_TIMESTAMP = 253402300799.0
"""9999-12-31T23:59:59Z: the latest one (and the last year ISO-8601 text and Python can write)."""
MILLISECONDS_FROM = 1e11
"""A number of at least this size (year 5138 in seconds) is epoch *milliseconds*, as tools often
write them by hand (`Date.now()`, `date +%s%3N`): 1705276800000 is 2024-01-15."""


def parse_timestamp(value: object) -> float:
    """Lenient inverse of `format_timestamp` (see `read_timestamp`): 0.0 for anything unreadable,
    rather than failing a whole environment load over one hand-written attribute."""
    return read_timestamp(value)[0]


def read_timestamp(value: object) -> tuple[float, str]:
    """Seconds since the epoch, and what was wrong with `value` ("" when nothing).

    Accepts `format_timestamp`'s text, the guide's `...T00:00:00Z`, offsets, naive times (taken
    as UTC) and numbers of seconds, or of milliseconds from `MILLISECONDS_FROM` on.  A time
    outside the years 1 to 9999 (UTC) is read as 0.0 (unknown), like anything unreadable: no
    protobuf reader could carry it, and a write could not format it again."""
    if value is None or value == "":
        return 0.0, ""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return 0.0, f"{type(value).__name__} is not a time: read as unknown (0)"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return 0.0, f"{value[:64]!r} is not ISO-8601 text: read as unknown (0)"  # repr escapes once
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        seconds = float(value)
        if abs(seconds) >= MILLISECONDS_FROM:
            seconds /= 1000
    if not EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:  # NaN included
        return 0.0, f"{_printable(str(value))[:64]} is outside the years 1 to 9999 (UTC): read as unknown (0)"
    return seconds, ""


def now() -> float:
    """The current time, rounded so that `parse_timestamp(format_timestamp(t)) == t` exactly.

    Why: stores assign every timestamp, and DynamoDB keeps them as ISO text; going through the
    text once here means a value returned by a write equals the value read back later."""
    return parse_timestamp(format_timestamp(time.time()))


# --- JSON ---------------------------------------------------------------------------------


def dump_json(value: JSON, field: str) -> str:
    """Compact JSON text (UTF-8 kept as is); non-JSON values raise `InvalidArgument(field)`."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"not a JSON value ({exc})", field=field) from None


def load_json(text: str) -> JSON:
    return json.loads(text)


MAX_JSON_DEPTH = 32
"""Objects and arrays nested in a definition's JSON, as in a context: the deepest that every
protobuf message carrying it (GetFlagHistory's is the deepest) stays within the 100 nested
messages protobuf readers decode."""


def copy_json(value: JSON, field: str, depth: int = 1) -> JSON:
    """A private deep copy of a JSON value, validated on the way (`depth`: see check_portable)."""
    check_portable(value, field, depth)
    return load_json(dump_json(value, field))


MAX_REASON_CHARS = 1024
"""Longest `reason` a write may record: it is kept in the change log and the flag's history, and
every ListChanges and GetFlagHistory page carries it (a page of 100 must stay a readable message)."""


def check_reason(reason: str) -> None:
    """A write's `reason` is text every reader of the change log can carry, of a bounded length."""
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument(
            f"{len(reason):,} characters; at most {MAX_REASON_CHARS:,} (the change log keeps it with "
            "every change): link to a longer text instead",
            field="reason",
        )
    _check_text(reason, "reason")


def check_portable(value: JSON, field: str, depth: int = 1) -> None:
    """Refuse JSON that some surface could not give back: a number beyond a double's range
    (protobuf, JavaScript and most JSON clients read numbers as doubles; converting it fails),
    NaN and the infinities (no JSON text holds them),
    text that is not Unicode (a lone surrogate, which UTF-8 and protobuf cannot carry) and nesting
    deeper than MAX_JSON_DEPTH.  `depth` is the level of `value` itself: 1 for a field that is a
    JSON object (targeting, metadata, $evaluators), 0 for a map of values (variants).  Raised
    before anything is stored, with the path of the offending part."""
    pending: list[tuple[JSON, str, int]] = [(value, field, depth)]
    while pending:
        item, path, level = pending.pop()
        if isinstance(item, Mapping | list | tuple) and level > MAX_JSON_DEPTH:
            raise InvalidArgument(f"nested deeper than {MAX_JSON_DEPTH} levels", field=_printable(path))
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, int) and not isinstance(item, bool):
            try:
                float(item)
            except OverflowError:
                raise InvalidArgument(
                    f"a {len(str(abs(item)))}-digit number does not fit in a double (at most about "
                    "1.8e308), so no protobuf or JavaScript client could read it",
                    field=path,
                ) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgument(
                f"{item} is not a finite number: JSON has no NaN or Infinity (a number beyond about "
                "1.8e308 reads as Infinity)",
                field=path,
            )
        elif isinstance(item, Mapping):
            for key, child in item.items():
                name = str(key)
                _check_text(name, path)
                pending.append((child, f"{path}.{name}", level + 1))
        elif isinstance(item, list | tuple):
            pending.extend((child, f"{path}[{i}]", level + 1) for i, child in enumerate(item))


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            # repr() writes the surrogate as its escape once ('\ud800'); repr of the
            # backslash-replaced text would escape that escape again ('\\ud800').
            f"{text!r} holds a lone surrogate (not Unicode): UTF-8 and protobuf cannot carry it",
            field=_printable(path),
        ) from None


def from_decimal(value: Any) -> JSON:
    """Native DynamoDB values (as decoded by boto) to JSON values: Decimal -> int or float.

    Only used for attributes a person wrote by hand as native maps/lists; vexil itself stores
    JSON-shaped fields as JSON text so ints and floats keep their type."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): from_decimal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_decimal(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(from_decimal(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value


# --- identity -----------------------------------------------------------------------------


# --- flags --------------------------------------------------------------------------------


UPDATE_KINDS = frozenset((ChangeKind.UPDATE, ChangeKind.ROLLBACK, ChangeKind.KILL))


def check_update_kind(kind: ChangeKind) -> None:
    """An update records why it happened; creates and deletes have their own calls."""
    if kind not in UPDATE_KINDS:
        raise InvalidArgument(f"an update is UPDATE, ROLLBACK or KILL, not {kind}", field="kind")


def normalize_flag(flag: Flag) -> Flag:
    """Validate what storage depends on and return a flag that owns copies of its JSON fields.

    Semantic checks (variant types, default variant present, targeting syntax) belong to the API
    and engine; the store only refuses what it cannot store faithfully."""
    check_environment_name(flag.environment)
    check_flag_key(flag.key)
    if not isinstance(flag.variants, Mapping):
        raise InvalidArgument("variants must be an object", field="variants")
    try:
        state = FlagState(flag.state)
    except ValueError:
        raise InvalidArgument(f"state {flag.state!r} is not ENABLED or DISABLED", field="state") from None
    if flag.default_variant is not None and not isinstance(flag.default_variant, str):
        raise InvalidArgument("defaultVariant must be a string or absent", field="defaultVariant")
    tags = flag.tags
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("tags must be a list of strings", field="tags")
    for name in ("description", "owner", "updated_by", "managed_by"):
        if not isinstance(getattr(flag, name), str):
            raise InvalidArgument("must be a string", field=name)
    if not isinstance(flag.metadata, Mapping):
        raise InvalidArgument("metadata must be an object", field="metadata")
    normalized = replace(
        flag,
        state=state,
        variants=copy_json(dict(flag.variants), "variants", depth=0),
        targeting=copy_json(flag.targeting, "targeting"),
        metadata=copy_json(dict(flag.metadata), "metadata"),
        tags=tuple(tags),
    )
    size = len(dump_json(flag_to_record(normalized), "flag").encode())
    if size > MAX_ITEM_BYTES:
        raise too_large(normalized, size)
    return normalized


def too_large(flag: Flag, size: int) -> InvalidArgument:
    return InvalidArgument(
        f"flag {flag.environment}/{flag.key} would take {size} bytes; the limit is {MAX_ITEM_BYTES}"
        " (split large variant values or targeting into several flags or $evaluators)",
        field="flag",
    )


def flag_to_record(flag: Flag) -> dict[str, JSON]:
    """The whole flag as one JSON object (history and change-log snapshots)."""
    return {
        "key": flag.key,
        "environment": flag.environment,
        "variants": dict(flag.variants),
        "defaultVariant": flag.default_variant,
        "state": str(flag.state),
        "targeting": flag.targeting,
        "description": flag.description,
        "owner": flag.owner,
        "tags": list(flag.tags),
        "metadata": dict(flag.metadata),
        "version": flag.version,
        "createdAt": flag.created_at,
        "updatedAt": flag.updated_at,
        "updatedBy": flag.updated_by,
        "managedBy": flag.managed_by,
    }


def flag_from_record(record: Mapping[str, JSON]) -> Flag:
    return Flag(
        key=record["key"],
        environment=record["environment"],
        variants=record.get("variants") or {},
        default_variant=record.get("defaultVariant"),
        state=FlagState(record.get("state", "ENABLED")),
        targeting=record.get("targeting"),
        description=record.get("description", ""),
        owner=record.get("owner", ""),
        tags=tuple(record.get("tags") or ()),
        metadata=record.get("metadata") or {},
        version=int(record.get("version", 0)),
        created_at=float(record.get("createdAt", 0.0)),
        updated_at=float(record.get("updatedAt", 0.0)),
        updated_by=record.get("updatedBy", ""),
        managed_by=record.get("managedBy", ""),
    )


# --- environments -------------------------------------------------------------------------


def normalize_environment(environment: Environment) -> Environment:
    check_environment_name(environment.name)
    if not isinstance(environment.evaluators, Mapping):
        raise InvalidArgument("$evaluators must be an object", field="evaluators")
    if not isinstance(environment.metadata, Mapping):
        raise InvalidArgument("metadata must be an object", field="metadata")
    if not isinstance(environment.kill_reason, str):
        raise InvalidArgument("must be a string", field="kill_reason")
    normalized = replace(
        environment,
        kill_switch=bool(environment.kill_switch),
        evaluators=copy_json(dict(environment.evaluators), "evaluators"),
        metadata=copy_json(dict(environment.metadata), "metadata"),
    )
    size = len(dump_json(environment_to_record(normalized), "environment").encode())
    if size > MAX_ITEM_BYTES:
        raise InvalidArgument(
            f"environment {environment.name} would take {size} bytes; the limit is {MAX_ITEM_BYTES}",
            field="environment",
        )
    return normalized


def environment_to_record(environment: Environment) -> dict[str, JSON]:
    return {
        "name": environment.name,
        "evaluators": dict(environment.evaluators),
        "killSwitch": environment.kill_switch,
        "killReason": environment.kill_reason,
        "metadata": dict(environment.metadata),
        "configVersion": environment.config_version,
        "updatedAt": environment.updated_at,
        "updatedBy": environment.updated_by,
    }


def environment_from_record(record: Mapping[str, JSON]) -> Environment:
    return Environment(
        name=record["name"],
        evaluators=record.get("evaluators") or {},
        kill_switch=bool(record.get("killSwitch", False)),
        kill_reason=record.get("killReason", ""),
        metadata=record.get("metadata") or {},
        config_version=int(record.get("configVersion", 0)),
        updated_at=float(record.get("updatedAt", 0.0)),
        updated_by=record.get("updatedBy", ""),
    )


# --- writes -------------------------------------------------------------------------------
#
# One builder per kind of write.  Each takes what the caller asked for and what the backend read
# (with the write's timestamp), checks the request against what was read, and returns every
# record the write stores.  They do no I/O and read no clock, so a backend calls them as often as
# it re-reads (DynamoDB does after a lost race) and a test can state their results exactly.


@dataclass(frozen=True, slots=True)
class FlagRead:
    """What a backend read for one flag write, and the write's timestamp."""

    current: Flag | None
    """The flag stored now; None when there is none."""
    history_version: int
    """The newest version in the key's history, or 0 when the backend did not need to look
    (the current flag's own version is then the newest)."""
    config_version: int
    """The environment's config version now (0 before its first write)."""
    at: float


@dataclass(frozen=True, slots=True)
class FlagWrite:
    """Everything one flag write stores, in one atomic step."""

    flag: Flag
    """The flag as stored; for a delete, the tombstone that only history keeps."""
    revision: FlagRevision
    change: Change

    @property
    def deleted(self) -> bool:
        """Whether the write removes the flag item (its history stays)."""
        return self.revision.deleted


@dataclass(frozen=True, slots=True)
class EnvironmentWrite:
    """The environment as stored after an ENVIRONMENT write, and its change-log entry."""

    environment: Environment
    change: Change


def check_absent(env: str, key: str, current: Flag | None) -> None:
    """A create needs the key free (its history may exist: a deleted flag can come back)."""
    if current is not None:
        raise FlagAlreadyExists(f"flag {env}/{key} already exists")


def check_current(env: str, key: str, current: Flag | None, expected_version: int | None) -> Flag:
    """An update or delete needs the flag, at `expected_version` when the caller gives one."""
    if current is None:
        raise FlagNotFound(f"flag {env}/{key} does not exist")
    if expected_version is not None and expected_version != current.version:
        raise Conflict(
            f"flag {env}/{key} is at version {current.version}, not {expected_version}",
            current_version=current.version,
        )
    return current


def check_usable(current: Flag) -> None:
    """An update (a kill and a rollback included) needs a stored flag its store could read: one it
    could not (`Flag.problem`) holds nothing usable in its definition, and a write over it would
    replace what the item holds (a rule with a typo, say) without anyone having seen it."""
    if current.problem:
        raise FailedPrecondition(
            f"flag {current.environment}/{current.key} cannot be used as stored ({current.problem}), "
            "and a write would replace what its item holds: fix the item in the table, or delete "
            "the flag and create it again (its history is kept)"
        )


def check_config_version(env: str, config_version: int, expected: int | None) -> None:
    """An environment write made with `expected` needs the environment still at that version."""
    if expected is not None and expected != config_version:
        raise Conflict(
            f"environment {env} is at config version {config_version}, not {expected}",
            current_version=config_version,
        )


def create_write(
    flag: Flag, read: FlagRead, *, actor: str, reason: str, after_version: int | None = None
) -> FlagWrite:
    """A new flag (normalised by `normalize_flag`; its version and timestamps are assigned).

    Its version continues the key's history, so a flag deleted and created again never
    overwrites a revision.  `after_version`: the newest version of the key's history the caller
    decided on (the service carries a deleted flag's state over from it); a history that has
    moved since is a `Conflict`, so the decision is never applied on top of another write."""
    check_absent(flag.environment, flag.key, read.current)
    if after_version is not None and after_version != read.history_version:
        raise Conflict(
            f"flag {flag.environment}/{flag.key} was written meanwhile (its history is at version "
            f"{read.history_version}, not {after_version})",
            current_version=read.history_version,
        )
    at = read.at
    stored = replace(flag, version=read.history_version + 1, created_at=at, updated_at=at, updated_by=actor)
    return _flag_write(stored, ChangeKind.CREATE, 0, read.config_version, actor, reason)


def update_write(
    flag: Flag, read: FlagRead, *, expected_version: int | None, kind: ChangeKind, actor: str, reason: str
) -> FlagWrite:
    """A new definition (normalised) for an existing flag; `created_at` and `managed_by` are the
    current flag's (ownership changes only by a create)."""
    check_update_kind(kind)
    current = check_current(flag.environment, flag.key, read.current, expected_version)
    check_usable(current)
    stored = replace(
        flag,
        version=_next_version(current, read.history_version),
        created_at=current.created_at,
        updated_at=read.at,
        updated_by=actor,
        managed_by=current.managed_by,
    )
    return _flag_write(stored, kind, current.version, read.config_version, actor, reason)


def state_write(
    env: str, key: str, state: FlagState, read: FlagRead, *, actor: str, reason: str
) -> FlagWrite:
    """The kill switch: the current flag, as read, with `state` (a KILL change).  Built from what
    the write itself read, so it needs no version from the caller: a definition written
    meanwhile is kept, and only costs a retry."""
    current = check_current(env, key, read.current, None)
    check_usable(current)
    stored = replace(
        current,
        state=state,
        version=_next_version(current, read.history_version),
        updated_at=read.at,
        updated_by=actor,
    )
    return _flag_write(stored, ChangeKind.KILL, current.version, read.config_version, actor, reason)


def delete_write(
    env: str, key: str, read: FlagRead, *, expected_version: int | None, actor: str, reason: str
) -> FlagWrite:
    """The removal of an existing flag, recorded as a tombstone revision of its last definition."""
    current = check_current(env, key, read.current, expected_version)
    version = _next_version(current, read.history_version)
    tombstone = replace(current, version=version, updated_at=read.at, updated_by=actor)
    return _flag_write(
        tombstone, ChangeKind.DELETE, current.version, read.config_version, actor, reason, deleted=True
    )


def environment_write(
    apply: Callable[[Environment], Environment],
    current: Environment,
    at: float,
    *,
    expected_config_version: int | None,
    actor: str,
    reason: str,
) -> EnvironmentWrite:
    """`apply` applied to the environment as read (`current`, at config version 0 before its
    first write) and normalised by `normalize_environment`, written at `at`."""
    config_version = current.config_version
    check_config_version(current.name, config_version, expected_config_version)
    environment = normalize_environment(replace(apply(current), name=current.name))
    stored = replace(environment, config_version=config_version + 1, updated_at=at, updated_by=actor)
    change = Change(
        environment_name=stored.name,
        config_version=stored.config_version,
        kind=ChangeKind.ENVIRONMENT,
        actor=actor,
        timestamp=at,
        before_version=config_version,
        after_version=stored.config_version,
        reason=reason,
        environment=stored,
    )
    return EnvironmentWrite(environment=stored, change=change)


def _next_version(current: Flag, history_version: int) -> int:
    """One past the newest version stored anywhere: the current flag's, or its history's when a
    backend found a newer one there (a flag item provisioned by hand over an older history)."""
    return max(current.version, history_version) + 1


def _flag_write(
    flag: Flag,
    kind: ChangeKind,
    before_version: int,
    config_version: int,
    actor: str,
    reason: str,
    *,
    deleted: bool = False,
) -> FlagWrite:
    """The revision and change-log entry of a flag write; every flag write bumps the
    environment's config version by exactly one and both records carry the new number."""
    revision = FlagRevision(
        flag=flag,
        kind=kind,
        actor=actor,
        timestamp=flag.updated_at,
        config_version=config_version + 1,
        reason=reason,
        deleted=deleted,
    )
    change = Change(
        environment_name=flag.environment,
        config_version=config_version + 1,
        kind=kind,
        actor=actor,
        timestamp=flag.updated_at,
        flag_key=flag.key,
        before_version=before_version,
        after_version=flag.version,
        reason=reason,
        flag=None if deleted else flag,
    )
    return FlagWrite(flag=flag, revision=revision, change=change)
