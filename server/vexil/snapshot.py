"""Immutable per-environment snapshots: what every evaluation reads.

A snapshot is built once per change (compiling only what changed) and swapped in whole, so the
evaluate path takes no lock, makes no database call and parses no JSON: it is a dict lookup and a
call into the compiled flag.  A stored flag that does not compile (for instance one written by
hand with a broken rule) is kept as *broken* and resolves to PARSE_ERROR instead of taking the
environment down.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vexil.engine import (
    CompiledFlag,
    ErrorCode,
    FlagValidationError,
    Reason,
    Resolution,
    ValueType,
    compile_flag,
    evaluate,
    not_found,
)
from vexil.model import Change, ChangeKind, Environment, Flag

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokenFlag:
    """A stored flag that failed to compile; evaluating it answers PARSE_ERROR."""

    flag: Flag
    message: str

    @property
    def key(self) -> str:
        return self.flag.key

    def resolution(self) -> Resolution:
        return Resolution(
            value=None,
            variant=None,
            reason=Reason.ERROR,
            error_code=ErrorCode.PARSE_ERROR,
            error_message=f"flag '{self.flag.key}' cannot be evaluated: {self.message}",
            flag_metadata=dict(self.flag.metadata),
        )


Entry = CompiledFlag | BrokenFlag


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def same_flag(a: Flag, b: Flag) -> bool:
    """Equal, with JSON values of the same types too: Python's `1 == 1.0 == True` would make a
    variant changed from 1 to true look unchanged, and serve the old one."""
    if a is b:
        return True
    if a != b:
        return False
    return _json_text([a.variants, a.targeting, dict(a.metadata)]) == _json_text(
        [b.variants, b.targeting, dict(b.metadata)]
    )


def same_compile_inputs(old: Environment, new: Environment) -> bool:
    """What a compiled flag depends on beside the flag, unchanged (JSON types included, as in
    `same_flag`): the `$evaluators` and the flag-set metadata."""
    return _json_text([dict(old.evaluators), dict(old.metadata)]) == _json_text(
        [dict(new.evaluators), dict(new.metadata)]
    )


def compile_entry(flag: Flag, environment: Environment) -> Entry:
    """Compile against the environment's `$evaluators`, with its flag-set metadata merged under
    the flag's own (what every resolution reports).

    Writes through vexil are validated strictly, but a stored flag can still fail that (written by
    hand, or its `$ref` target removed): it is then served exactly as flagd would serve it, errors
    surfacing only on the paths that reach them, and only a flag even flagd could not load is
    kept as broken (logged once per definition: a reload reuses the entry of an unchanged flag).
    A flag its store could not read (`Flag.problem`) is broken as it is; the store reported it."""
    if flag.problem:
        return BrokenFlag(flag, flag.problem)
    try:
        return compile_flag(flag, environment.evaluators, flag_set_metadata=environment.metadata)
    except FlagValidationError as strict_error:
        try:
            lenient = compile_flag(
                flag, environment.evaluators, flag_set_metadata=environment.metadata, strict=False
            )
        except FlagValidationError:
            log.warning(
                "flag %s/%s cannot be used, it answers PARSE_ERROR: %s",
                environment.name,
                flag.key,
                strict_error,
            )
            return BrokenFlag(flag, str(strict_error))
        log.warning(
            "flag %s/%s does not validate (%s); serving it as flagd would",
            environment.name,
            flag.key,
            strict_error,
        )
        return lenient


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything needed to evaluate one environment at one `config_version`."""

    environment: Environment
    entries: Mapping[str, Entry]
    built_at: float = field(default_factory=time.time)
    """Wall-clock time the data was last confirmed against the store (staleness is measured from it)."""
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """What adapters derive from this data alone (encoded answers, sorted keys), built on first
    use and dropped with the snapshot: a change makes a new snapshot with an empty memo."""

    @classmethod
    def build(cls, environment: Environment, flags: Iterable[Flag]) -> Snapshot:
        return cls(environment, {f.key: compile_entry(f, environment) for f in flags})

    @property
    def name(self) -> str:
        return self.environment.name

    @property
    def config_version(self) -> int:
        return self.environment.config_version

    def flag(self, key: str) -> Flag | None:
        entry = self.entries.get(key)
        return entry.flag if entry is not None else None

    def flags(self) -> list[Flag]:
        return [entry.flag for entry in self.entries.values()]

    def evaluate(
        self, key: str, context: Mapping[str, Any], value_type: ValueType = ValueType.ANY
    ) -> tuple[Resolution, int]:
        """Resolve one flag; returns the resolution and the flag version that produced it."""
        entry = self.entries.get(key)
        if entry is None:
            return not_found(key), 0
        if isinstance(entry, BrokenFlag):
            return entry.resolution(), entry.flag.version
        return (
            evaluate(entry, context, value_type, environment_killed=self.environment.kill_switch),
            entry.flag.version,
        )

    def apply(self, change: Change) -> Snapshot:
        """The snapshot after `change` (which must be the next one in config_version order)."""
        environment = self.environment
        entries = dict(self.entries)
        if change.kind is ChangeKind.ENVIRONMENT and change.environment is not None:
            environment = change.environment
            old = self.environment
            if not same_compile_inputs(old, environment):
                entries = {k: compile_entry(e.flag, environment) for k, e in entries.items()}
        elif change.kind is ChangeKind.DELETE:
            current = entries.get(change.flag_key)
            # A full load may already hold the flag re-created after this delete: keep that.
            if current is not None and current.flag.version <= change.before_version:
                del entries[change.flag_key]
        elif change.flag is not None:
            current = entries.get(change.flag.key)
            # Changes replay on top of a load that may already be newer for some flags (a load
            # reads the environment, then the flags): never step a flag back to an older version.
            if current is None or current.flag.version <= change.flag.version:
                entries[change.flag.key] = compile_entry(change.flag, environment)
        if environment.config_version != change.config_version:
            environment = replace(environment, config_version=change.config_version)
        return Snapshot(environment, entries)

    def refreshed(self) -> Snapshot:
        """The same data, confirmed current now (after a successful poll of the store); what was
        derived from it still holds."""
        return Snapshot(self.environment, self.entries, memo=self.memo)
