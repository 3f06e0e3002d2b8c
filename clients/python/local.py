"""Local evaluation: the server's own `Snapshot` and engine, fed by Watch events.

The client holds exactly what the server holds for its environment (a `vexil.snapshot.Snapshot`
built from the same flags with the same compiler) and asks it the same question, so a local
answer is the server's answer without the round trip.  The snapshot is immutable and replaced
whole, so readers on any thread take no lock: they read one attribute and evaluate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from vexil.api.convert import environment_from_pb, flag_from_pb, seconds
from vexil.client.changes import ChangeEvent, ChangeKind
from vexil.client.context import EXACT, ContextError, wire_context
from vexil.client.details import (
    ErrorCode,
    EvaluationDetails,
    copy_json,
    failed,
    from_resolution,
)
from vexil.client.reads import NOTHING, Reads, context_reads
from vexil.engine import ValueType
from vexil.model import Change, Environment, Flag
from vexil.model import ChangeKind as ModelChangeKind
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2, flag_pb2

T = TypeVar("T")
Reader = Callable[..., Any]
"""`get(flag_key, default, context=None) -> value` for one value type."""
WatchEvent = evaluation_pb2.WatchEvent

NOT_READY = "no flag data yet: waiting for the first snapshot from the server"


class LocalFlags:
    """The client's copy of one environment, and evaluation against it."""

    __slots__ = ("_readers", "_view", "confirmed_at", "source")

    def __init__(self) -> None:
        self._view: tuple[Snapshot, Mapping[str, Reads]] | None = None
        """The snapshot and, per flag, the context attributes its rule reads: one tuple, swapped
        in one assignment, so a reader never pairs a snapshot with another snapshot's reads."""
        self.source = ""
        """Where the data came from: "server", "flags file" or "persisted snapshot"."""
        self.confirmed_at = 0.0
        """Wall-clock time the data was last known to match the server (0: never)."""
        self._readers = {value_type: self.reader(value_type) for value_type in ValueType}

    @property
    def snapshot(self) -> Snapshot | None:
        view = self._view
        return view[0] if view is not None else None

    @property
    def config_version(self) -> int:
        view = self._view
        return view[0].config_version if view is not None else 0

    # -- evaluation (the hot path: any thread, no lock, never raises) ---------------------------

    def value(self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType) -> T:
        return self._readers[value_type](key, default, context)  # type: ignore[no-any-return]

    def reader(self, value_type: ValueType) -> Reader:
        """A value getter for one type: `get(flag_key, default, context=None) -> value`.

        Clients bind these as their local-mode getters.  This is the hot path, where a whole
        evaluation costs a few hundred nanoseconds and every frame shows: a closure is the
        cheapest callable CPython has, and `server_view` is inlined for its common case."""
        flags = self
        copy = value_type is ValueType.OBJECT or value_type is ValueType.ANY

        def get(key: str, default: Any, context: Mapping[str, Any] | None = None) -> Any:
            view = flags._view
            if view is None:
                return default
            try:
                needs = view[1].get(key, NOTHING)
                if needs:  # the rule reads these: do they already look as on the server?
                    if context.__class__ is dict:
                        for name in needs:
                            item = context.get(name)  # type: ignore[union-attr]
                            cls = item.__class__
                            if not (
                                cls is str
                                or cls is bool
                                or item is None
                                or (cls is int and -EXACT <= item <= EXACT)
                            ):
                                context = wire_context(context)
                                break
                    else:
                        context = wire_context(context)
                elif needs is None:
                    context = wire_context(context)
                value = view[0].evaluate(key, context, value_type)[0].value  # type: ignore[arg-type]
                if value is None:
                    return default
                return copy_json(value) if copy else value
            except Exception:
                return default

        return get

    def details(
        self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType
    ) -> EvaluationDetails[T]:
        view = self._view
        if view is None:
            return failed(key, default, ErrorCode.PROVIDER_NOT_READY, NOT_READY)
        snapshot = view[0]
        try:
            ctx = server_view(context, view[1].get(key, NOTHING))
        except ContextError as exc:
            return failed(key, default, ErrorCode.INVALID_CONTEXT, str(exc), snapshot.config_version)
        try:
            resolution, version = snapshot.evaluate(key, ctx, value_type)  # type: ignore[arg-type]
            return from_resolution(key, default, resolution, version, snapshot.config_version)
        except Exception as exc:  # the engine promises not to raise; keep the promise regardless
            return failed(key, default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def all_details(self, context: Mapping[str, Any] | None) -> dict[str, EvaluationDetails[Any]]:
        snapshot = self.snapshot
        if snapshot is None:
            return {}
        return {key: self.details(key, None, context, ValueType.ANY) for key in sorted(snapshot.entries)}

    # -- data in ---------------------------------------------------------------------------------

    def replace(self, snapshot: Snapshot, source: str, confirmed_at: float) -> frozenset[str] | None:
        """Install a whole snapshot; returns the keys whose answers may differ (None: first data)."""
        old = self.snapshot
        evaluators = snapshot.environment.evaluators
        self._view = (snapshot, {k: context_reads(e, evaluators) for k, e in snapshot.entries.items()})
        self.source = source
        self.confirmed_at = confirmed_at
        return None if old is None else changed_keys(old, snapshot)

    def apply(self, event: evaluation_pb2.WatchEvent) -> ChangeEvent:
        """Apply the next change event (its config_version must follow the snapshot's)."""
        view = self._view
        assert view is not None
        snapshot, reads = view
        change = change_from_event(event, snapshot.name)
        after = snapshot.apply(change)
        evaluators = after.environment.evaluators
        if evaluators != snapshot.environment.evaluators:
            fresh = {k: context_reads(e, evaluators) for k, e in after.entries.items()}
        else:
            fresh = dict(reads)
            fresh.pop(event.flag_key, None)
            entry = after.entries.get(event.flag_key)
            if entry is not None:
                fresh[event.flag_key] = context_reads(entry, evaluators)
        self._view = (after, fresh)
        self.confirmed_at = time.time()
        if change.kind is ModelChangeKind.ENVIRONMENT:
            keys = frozenset(snapshot.entries)
            kind = ChangeKind.ENVIRONMENT
        else:
            keys = frozenset((event.flag_key,))
            kind = ChangeKind.DELETE if change.kind is ModelChangeKind.DELETE else ChangeKind.UPSERT
        return ChangeEvent(kind, keys, event.config_version, event.change.actor, event.change.reason)

    def holds(self, event: evaluation_pb2.WatchEvent) -> bool:
        """Whether the data already reflects change `event` (checks the overlap event on resume)."""
        snapshot = self.snapshot
        if snapshot is None or event.config_version != snapshot.config_version:
            return False
        if event.type == WatchEvent.TYPE_DELETE:
            return snapshot.flag(event.flag_key) is None
        if event.type == WatchEvent.TYPE_UPSERT:
            flag = snapshot.flag(event.flag.key)
            return (
                flag is not None
                and flag.version == event.flag.version
                and flag.updated_at == seconds(event.flag.updated_at)
            )
        if event.type == WatchEvent.TYPE_ENVIRONMENT:
            return same_environment(snapshot.environment, environment_from_pb(event.environment))
        return False


def server_view(context: Any, needs: Reads) -> Any:
    """The context as a rule reading `needs` must see it: the server's view of those attributes
    (see `reads.py`); the caller's own mapping when they already look that way, or for none."""
    if not needs:
        return wire_context(context) if needs is None else context
    if context.__class__ is not dict:
        return wire_context(context)
    for name in needs:
        item = context.get(name)
        cls = item.__class__
        if cls is str or cls is bool or item is None:
            continue
        if cls is int and -EXACT <= item <= EXACT:
            continue
        return wire_context(context)
    return context


def snapshot_from_event(event: evaluation_pb2.WatchEvent) -> Snapshot:
    """The snapshot a SNAPSHOT event describes (also the persisted-snapshot format)."""
    environment = environment_from_pb(event.environment)
    if environment.config_version != event.config_version:
        environment = replace(environment, config_version=event.config_version)
    return Snapshot.build(environment, [flag_from_pb(f) for f in event.flags])


def change_from_event(event: evaluation_pb2.WatchEvent, environment: str) -> Change:
    """The model `Change` for an UPSERT, DELETE or ENVIRONMENT event (what `Snapshot.apply` takes)."""
    common: dict[str, Any] = {
        "environment_name": environment,
        "config_version": event.config_version,
        "actor": event.change.actor,
        "timestamp": event.change.timestamp.ToNanoseconds() / 1e9,
        "flag_key": event.flag_key,
        "before_version": event.change.before_version,
        "after_version": event.change.after_version,
        "reason": event.change.reason,
    }
    if event.type == WatchEvent.TYPE_ENVIRONMENT:
        return Change(
            kind=ModelChangeKind.ENVIRONMENT, environment=environment_from_pb(event.environment), **common
        )
    if event.type == WatchEvent.TYPE_DELETE:
        return Change(kind=ModelChangeKind.DELETE, **common)
    if event.type == WatchEvent.TYPE_UPSERT:
        kind = _KINDS.get(event.change.kind, ModelChangeKind.UPDATE)
        return Change(kind=kind, flag=flag_from_pb(event.flag), **common)
    raise ValueError(f"not a change event: type {event.type}")


_KINDS = {
    flag_pb2.CHANGE_KIND_CREATE: ModelChangeKind.CREATE,
    flag_pb2.CHANGE_KIND_UPDATE: ModelChangeKind.UPDATE,
    flag_pb2.CHANGE_KIND_ROLLBACK: ModelChangeKind.ROLLBACK,
    flag_pb2.CHANGE_KIND_KILL: ModelChangeKind.KILL,
}


def same_environment(a: Environment, b: Environment) -> bool:
    """Equal for evaluation purposes (versions and audit fields aside)."""
    return (
        a.kill_switch == b.kill_switch
        and dict(a.evaluators) == dict(b.evaluators)
        and dict(a.metadata) == dict(b.metadata)
    )


def same_flag(a: Flag, b: Flag) -> bool:
    if a.version and a.version == b.version and a.updated_at == b.updated_at:
        return True
    return a.definition() == b.definition()


def changed_keys(old: Snapshot, new: Snapshot) -> frozenset[str]:
    """Flags whose answers may differ between two snapshots."""
    if not same_environment(old.environment, new.environment):
        return frozenset(old.entries) | frozenset(new.entries)
    keys = set(old.entries.keys() ^ new.entries.keys())
    for key in old.entries.keys() & new.entries.keys():
        if not same_flag(old.entries[key].flag, new.entries[key].flag):
            keys.add(key)
    return frozenset(keys)
