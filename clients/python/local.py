"""Local evaluation: the server's own `Snapshot` and engine, fed by Watch events.

The client holds exactly what the server holds for its environment (a `vexil.snapshot.Snapshot`
built from the same flags with the same compiler) and asks it the same question, so a local
answer is the server's answer without the round trip.  The snapshot is immutable and replaced
whole, so readers on any thread take no lock: they read one attribute and evaluate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from vexil.client.changes import ChangeEvent, ChangeKind
from vexil.client.context import EXACT, ContextError, wire_context
from vexil.client.details import ErrorCode, EvaluationDetails, failed, from_resolution
from vexil.client.frozen import freeze
from vexil.client.reads import Reads, context_reads
from vexil.engine import CompiledFlag, Resolution, ValueType, evaluate
from vexil.model import Change, Environment, Flag
from vexil.model import ChangeKind as ModelChangeKind
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2, flag_pb2
from vexil.wire import environment_from_pb, flag_from_pb, seconds

T = TypeVar("T")
Reader = Callable[..., Any]
"""`get(flag_key, default, context=None) -> value` for one value type."""
WatchEvent = evaluation_pb2.WatchEvent

NOT_READY = "no flag data yet: waiting for the first snapshot from the server"
MEMO_LIMIT = 65_536
"""Most shared details one snapshot keeps (it needs one per flag, type and variant served)."""
Memo = dict[int, tuple[Resolution, EvaluationDetails[Any]]]
"""id(resolution) -> (that resolution, its details) for answers that carry a value."""


class LocalFlags:
    """The client's copy of one environment, and evaluation against it."""

    __slots__ = ("_explainers", "_readers", "_view", "confirmed_at", "source")

    def __init__(self) -> None:
        self._view: tuple[Snapshot, Serving, Memo] | None = None
        """The snapshot, what getters read of it (see `serving`) and the details built from it:
        one tuple, swapped in one assignment, so a getter never mixes two snapshots."""
        self.source = ""
        """Where the data came from: "server", "flags file" or "persisted snapshot"."""
        self.confirmed_at = 0.0
        """Wall-clock time the data was last known to match the server (0: never)."""
        self._readers = {value_type: self.reader(value_type) for value_type in ValueType}
        self._explainers = {value_type: self.explainer(value_type) for value_type in ValueType}

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

    def details(
        self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType
    ) -> EvaluationDetails[T]:
        return self._explainers[value_type](key, default, context)  # type: ignore[no-any-return]

    def reader(self, value_type: ValueType) -> Reader:
        """A value getter for one type: `get(flag_key, default, context=None) -> value`."""
        return self._getter(value_type, explain=False)

    def explainer(self, value_type: ValueType) -> Reader:
        """A details getter for one type: `get(flag_key, default, context=None) -> EvaluationDetails`."""
        return self._getter(value_type, explain=True)

    def _getter(self, value_type: ValueType, explain: bool) -> Reader:
        """The local-mode getters, which clients bind in place of their methods.

        This is the hot path, where a whole evaluation costs a few hundred nanoseconds and every
        frame shows: a closure is the cheapest callable CPython has, the check that the
        attributes a rule reads already look as the server would see them (str, bool, null,
        ints a double holds; else `wire_context` converts) is inlined, and the engine is called
        with the compiled flag from `serving`.

        Most answers do not depend on the caller's default (the flag has a value), so details
        for them are built once per snapshot and shared: `EvaluationDetails` is immutable, and
        each such answer is one of the engine's pre-built resolutions, which keys the memo."""
        flags = self

        def get(key: str, default: Any, context: Mapping[str, Any] | None = None) -> Any:
            view = flags._view
            if view is None:
                return failed(key, default, ErrorCode.PROVIDER_NOT_READY, NOT_READY) if explain else default
            try:
                record = view[1].get(key)
                if record is None:  # unknown, broken, or the environment is killed
                    if not explain:
                        return default
                    resolution, version = view[0].evaluate(key, context, value_type)  # type: ignore[arg-type]
                    return from_resolution(key, default, resolution, version, view[0].config_version)
                compiled, needs = record
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
                resolution = evaluate(compiled, context, value_type)  # type: ignore[arg-type]
                if not explain:
                    value = resolution.value
                    return default if value is None else value
                memo = view[2]
                # The memo holds each resolution it keys, so an id cannot be reused while it is
                # in there.  (Resolutions belong to one compiled flag: tests/client checks that
                # the engine never shares one between flags, which would mix up flag keys here.)
                hit = memo.get(id(resolution))
                if hit is not None:
                    return hit[1]
                details = from_resolution(
                    key, default, resolution, compiled.flag.version, view[0].config_version
                )
                if resolution.value is not None and len(memo) < MEMO_LIMIT:
                    memo[id(resolution)] = (resolution, details)
                return details
            except Exception as exc:  # a context the server would refuse, or an engine bug
                if not explain:
                    return default
                if isinstance(exc, ContextError):
                    return failed(key, default, ErrorCode.INVALID_CONTEXT, str(exc), view[0].config_version)
                return failed(key, default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

        return get

    def all_details(self, context: Mapping[str, Any] | None) -> dict[str, EvaluationDetails[Any]]:
        snapshot = self.snapshot
        if snapshot is None:
            return {}
        get = self._explainers[ValueType.ANY]
        return {key: get(key, None, context) for key in sorted(snapshot.entries)}

    # -- data in ---------------------------------------------------------------------------------

    def replace(self, snapshot: Snapshot, source: str, confirmed_at: float) -> frozenset[str] | None:
        """Install a whole snapshot; returns the keys whose answers may differ (None: first data)."""
        old = self.snapshot
        self._view = (snapshot, serving(snapshot), {})
        self.source = source
        self.confirmed_at = confirmed_at
        return None if old is None else changed_keys(old, snapshot)

    def apply(self, event: evaluation_pb2.WatchEvent) -> ChangeEvent:
        """Apply the next change event (its config_version must follow the snapshot's)."""
        view = self._view
        assert view is not None
        snapshot, table, _ = view
        change = change_from_event(event, snapshot.name)
        after = snapshot.apply(change)
        whole = change.kind is ModelChangeKind.ENVIRONMENT  # evaluators or kill switch: redo all
        self._view = (after, serving(after, None if whole else table, event.flag_key), {})
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


Serving = Mapping[str, tuple[CompiledFlag, Reads]]
"""Per flag that can serve a value: its compiled form and the context attributes its rule reads."""


def serving(snapshot: Snapshot, previous: Serving | None = None, changed: str = "") -> Serving:
    """What the getters evaluate directly: the flags that can answer with a value, each with
    the attributes its rule reads (`reads.py`).  Broken flags are left out, and all flags are
    while the environment's kill switch is on: the value is then the caller's default (the
    details getters ask `Snapshot.evaluate` for the reason).

    With `previous` (the table before a change to flag `changed` only), only that flag is redone.
    """
    if snapshot.environment.kill_switch:
        return {}
    evaluators = snapshot.environment.evaluators
    if previous is None:
        return {
            key: (entry, context_reads(entry, evaluators))
            for key, entry in snapshot.entries.items()
            if isinstance(entry, CompiledFlag)
        }
    table = dict(previous)
    table.pop(changed, None)
    entry = snapshot.entries.get(changed)
    if isinstance(entry, CompiledFlag):
        table[changed] = (entry, context_reads(entry, evaluators))
    return table


def snapshot_from_event(event: evaluation_pb2.WatchEvent) -> Snapshot:
    """The snapshot a SNAPSHOT event describes (also the persisted-snapshot format)."""
    environment = environment_from_pb(event.environment)
    if environment.config_version != event.config_version:
        environment = replace(environment, config_version=event.config_version)
    return local_snapshot(environment, [flag_from_pb(f) for f in event.flags])


def local_snapshot(environment: Environment, flags: Iterable[Flag]) -> Snapshot:
    """A snapshot for local evaluation: every way flag data reaches the client builds it here."""
    return Snapshot.build(environment, [local_flag(flag) for flag in flags])


def local_flag(flag: Flag) -> Flag:
    """`flag` with its variant values frozen: local getters hand them out without a copy
    (see `frozen.py`), so no caller can change what the next caller is served."""
    return replace(flag, variants=freeze(flag.variants))


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
        return Change(kind=kind, flag=local_flag(flag_from_pb(event.flag)), **common)
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
