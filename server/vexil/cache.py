"""The in-process flag cache: one immutable snapshot per environment, kept current by the change feed.

Three things move a snapshot forward, all through `apply` / `catch_up` so that subscribers see
changes exactly once and in `config_version` order:
- local writes (applied as soon as the store acknowledges them);
- the change log, polled about once a second, which brings writes made through other replicas;
- a full reload every cache-profile TTL, and one poll after the start, which also picks up items
  written to the store by hand (those bypass the change log, so subscribers are told to resync when
  a reload finds drift; a store may leave the search for them out of a start's own load).

If the store cannot be reached the last snapshot keeps serving; `status` reports how stale it is,
and `require_store` lets writes fail at once instead of each waiting out the write deadline.

Never backwards: a store found at a lower `config_version` than the one served, or empty where
flags were (a table recreated or restored under running replicas), is not adopted. The last-known
-good snapshot keeps serving, `status` says DEGRADED with the reason, and an ERROR names the table,
until an operator adopts the store's state on purpose (`FlagStore.adopt`, `vexil dynamodb adopt`):
every replica sees the new adoption id on its next poll and switches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from vexil import heap
from vexil.background import cancel_and_wait
from vexil.errors import EnvironmentLoading, EnvironmentNotServed, Unavailable, VexilError
from vexil.hub import Hub
from vexil.model import Change, ChangeKind, Environment, Flag
from vexil.pacing import Pacer
from vexil.snapshot import Entry, Snapshot, compile_entry, same_compile_inputs, same_flag
from vexil.store.base import FlagStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """How current one environment's snapshot is."""

    environment: str
    config_version: int
    flags: int
    staleness_seconds: float
    """Seconds since the snapshot was last confirmed against the store."""
    healthy: bool
    """False when the last attempt to reach the store failed (serving stale data: DEGRADED)."""
    last_error: str = ""
    regressed: bool = False
    """True while the store is behind the served snapshot (last-known-good serving, DEGRADED)."""


class SnapshotCache:
    """Per-environment snapshots plus the tasks that keep them current."""

    def __init__(
        self,
        store: FlagStore,
        hub: Hub,
        environments: list[str],
        *,
        poll_interval: float = 1.0,
        reload_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.environments = list(environments)
        self.poll_interval = poll_interval
        self.reload_interval = reload_interval
        self._snapshots: dict[str, Snapshot] = {}
        self._locks = {env: asyncio.Lock() for env in self.environments}
        self._errors: dict[str, str] = {}
        self._regressed: dict[str, str] = {}
        """Why the store of an environment is behind its served snapshot (absent: it is not)."""
        self._adoptions: dict[str, str] = {}
        """The store's adoption id each snapshot was loaded under (a new one means: adopt)."""
        self._advanced: dict[str, asyncio.Event] = {}
        """Set (and dropped) whenever an environment's config_version moves forward."""
        self._unreachable_since: dict[str, float] = {}
        """When the feed's store calls began failing with `Unavailable` (meaningful while the
        environment is in `_errors`; success clears `_errors`, the next outage restarts this)."""
        self._wakes: dict[str, asyncio.Event] = {}
        """Set by `poll_now` to cut a feed's wait between two polls short."""
        self._tasks: list[asyncio.Task[None]] = []
        self.listeners: list[Callable[[Change], None]] = []
        """Called with each change as its snapshot is swapped in (metrics: change-feed lag)."""

    # -- the read side: no I/O, no locks -------------------------------------------------------

    def get(self, environment: str) -> Snapshot:
        try:
            return self._snapshots[environment]
        except KeyError:
            if environment in self._locks:
                raise EnvironmentLoading(
                    f"environment '{environment}' is still loading; retry shortly"
                ) from None
            raise EnvironmentNotServed(
                f"environment '{environment}' is not served here (serves: {', '.join(self.environments)})"
            ) from None

    def serves(self, environment: str) -> bool:
        return environment in self._locks

    @property
    def loaded(self) -> bool:
        return len(self._snapshots) == len(self.environments)

    def status(self, environment: str) -> FeedStatus:
        snap = self.get(environment)
        regressed = self._regressed.get(environment, "")
        error = regressed or self._errors.get(environment, "")
        return FeedStatus(
            environment=environment,
            config_version=snap.config_version,
            flags=len(snap.entries),
            staleness_seconds=max(0.0, time.time() - snap.built_at),
            healthy=not error,
            last_error=error,
            regressed=bool(regressed),
        )

    async def wait_for_version(self, environment: str, version: int, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the snapshot serves `version` or later; True if it does.

        For a stream resuming from a version written through another replica: the change feed
        brings it here within a poll or two."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.get(environment).config_version < version:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            advanced = self._advanced.setdefault(environment, asyncio.Event())
            try:
                async with asyncio.timeout(remaining):
                    await advanced.wait()
            except TimeoutError:
                return self.get(environment).config_version >= version
        return True

    def require_store(self, environment: str) -> None:
        """Raise `Unavailable` at once while the change feed finds the store unreachable: a write
        would only wait out its deadline to fail the same way.  The feed clears this as soon as it
        reaches the store again (within about a poll interval)."""
        error = self._errors.get(environment)
        since = self._unreachable_since.get(environment)
        if error is None or since is None:
            return
        at = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        reason = error if len(error) <= 200 else error[:199] + "…"
        raise Unavailable(
            f"store unavailable since {at}: {reason}; nothing was written, retry when the server"
            " reports SERVING again"
        )

    # -- the write side ------------------------------------------------------------------------

    async def load(self) -> None:
        """Load every environment (start-up: health says SERVING only after this)."""
        for env in self.environments:
            await self.reload(env)

    async def reload(self, environment: str) -> Snapshot:
        """Rebuild the snapshot from a full read of the store, unless the store went backwards
        (then the served snapshot stays, see the module docstring)."""
        adopted = drifted = False
        async with self._locks[environment]:
            env, flags = await self.store.load_environment(environment)
            large = heap.large(len(flags))
            old = self._snapshots.get(environment)
            fresh = await assemble(env, flags, heap.settle if large else None, previous=old)
            if old is None:
                self._adoptions[environment] = await self.store.adoption(environment)
            elif (backwards := _went_backwards(old, fresh)) or environment in self._regressed:
                adoption = await self.store.adoption(environment)
                if not adoption or adoption == self._adoptions.get(environment):
                    self._hold(environment, backwards)
                    return old
                log.warning(
                    "%s: adopting the store's state (adoption %s): config_version %d with %d flags",
                    environment,
                    adoption,
                    fresh.config_version,
                    len(fresh.entries),
                )
                self._adoptions[environment] = adoption
                adopted = True
            elif (drifted := await _drifted(old, fresh)) and await self._bridged(old, fresh):
                self._errors.pop(environment, None)
                return self._snapshots[environment]
            self._snapshots[environment] = fresh
            self._errors.pop(environment, None)
            self._regressed.pop(environment, None)
            self._advance(environment)
        if old is not None and (adopted or drifted):
            log.info("full reload of %s found changes outside the change log; resyncing", environment)
            self.hub.resync_all(environment)
        if old is not None and large:
            replaced: list[object] = list(old.entries.values())
            del old
            await heap.release(replaced)
        return fresh

    async def _bridged(self, old: Snapshot, fresh: Snapshot) -> bool:
        """A reload that differs from the snapshot while writes land (the store read ahead of it,
        or a flag read newer than the environment item): apply the logged changes in order,
        publishing each, as the feed would.  True when that explains the reload (same flags at
        its version) or went past it (the next reload compares); False when nothing was logged
        or the flags still differ at the same version: drift, take the reload and resync."""
        environment = fresh.environment.name
        changes = await self.store.list_changes(environment, since_version=old.config_version)
        if not changes or changes[0].config_version != old.config_version + 1:
            return False
        current = old
        for change in changes:
            current = await advance(current, change)
            self._swap(current, change)
        if current.config_version != fresh.config_version:
            return current.config_version > fresh.config_version
        return not await _drifted(current, fresh)

    def _hold(self, environment: str, backwards: str) -> None:
        """Keep the last-known-good snapshot of a store that went backwards, and say so.

        `backwards` is "" when the store no longer looks behind but has not been adopted
        either: the hold and its first reason stay."""
        if not backwards:
            return
        if environment not in self._regressed:
            where = getattr(self.store, "table", self.store.name)
            log.error(
                "store %s went backwards for environment %s: %s; serving the last-known-good"
                " snapshot until an operator adopts the store's state (vexil dynamodb adopt --env %s)",
                where,
                environment,
                backwards,
                environment,
            )
        self._regressed[environment] = (
            f"store went backwards: {backwards}; serving the last-known-good snapshot"
            f" (adopt the store's state with `vexil dynamodb adopt --env {environment}`)"
        )

    async def apply(self, change: Change) -> None:
        """Apply a change acknowledged by the store (a local write).  Not while the store is
        behind the served snapshot: the write is stored and served once that state is adopted."""
        environment = change.environment_name
        async with self._locks[environment]:
            current = self._snapshots[environment]
            if change.config_version <= current.config_version or environment in self._regressed:
                return
            if change.config_version == current.config_version + 1:
                self._swap(await advance(current, change), change)
                return
        await self.catch_up(environment)

    async def catch_up(self, environment: str) -> int:
        """Apply every logged change newer than the snapshot; returns how many were applied.

        When the log has nothing new, one read of the stored `config_version` tells a quiet
        store from one that went backwards (which a full reload then confirms and holds off)."""
        trimmed = behind = False
        changes: list[Change] = []
        async with self._locks[environment]:
            current = self._snapshots[environment]
            if environment in self._regressed:
                behind = await self._newly_adopted(environment)
            else:
                changes = await self.store.list_changes(environment, since_version=current.config_version)
                if changes and changes[0].config_version != current.config_version + 1:
                    trimmed = True
                elif changes:
                    for change in changes:
                        current = await advance(current, change)
                        self._swap(current, change)
                elif await self.store.stored_config_version(environment) < current.config_version:
                    behind = True
                else:
                    self._snapshots[environment] = current.refreshed()
            self._errors.pop(environment, None)
        if behind:
            await self.reload(environment)
        elif trimmed:
            log.warning("change log of %s no longer reaches our version; full reload", environment)
            await self.reload(environment)
            self.hub.resync_all(environment)
        return len(changes)

    async def _newly_adopted(self, environment: str) -> bool:
        """While a store is behind, one cheap read per poll (not a full reload): has an operator
        adopted its state?  Nothing else releases the hold: a table that has grown past the
        served version again (rebuilt by writes, or data put back) is still another history,
        which only an operator can vouch for."""
        return await self.store.adoption(environment) != self._adoptions.get(environment)

    def _swap(self, snapshot: Snapshot, change: Change) -> None:
        self._snapshots[change.environment_name] = snapshot
        self._advance(change.environment_name)
        self.hub.publish(change)
        for listener in self.listeners:
            listener(change)

    # -- background feed -----------------------------------------------------------------------

    def start_feed(self) -> None:
        for env in self.environments:
            self._tasks.append(asyncio.create_task(self._follow(env), name=f"feed:{env}"))

    async def stop_feed(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()

    def poll_now(self, environment: str) -> bool:
        """Run the environment's next change-log poll now instead of at the end of the interval
        (a poke: another replica wrote).  Pokes arriving meanwhile fold into that one poll, so
        at most one extra read is in flight per environment.  False when a poll was already due."""
        wake = self._wakes.setdefault(environment, asyncio.Event())
        if wake.is_set():
            return False
        wake.set()
        return True

    async def _follow(self, environment: str) -> None:
        next_reload = time.monotonic()  # the first full reload at the first poll (see module doc)
        wake = self._wakes.setdefault(environment, asyncio.Event())
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await wake.wait()
            wake.clear()
            try:
                await self.catch_up(environment)
                if time.monotonic() >= next_reload:
                    await self.reload(environment)
                    next_reload = time.monotonic() + self.reload_interval
            except VexilError as exc:
                self._note_error(environment, exc.message, unreachable=isinstance(exc, Unavailable))
            except Exception as exc:  # the feed must outlive any store fault
                log.exception("change feed of %s failed", environment)
                self._note_error(environment, f"{type(exc).__name__}: {exc}")

    def _advance(self, environment: str) -> None:
        """Wake whoever waits for this environment's next version (`wait_for_version`)."""
        advanced = self._advanced.pop(environment, None)
        if advanced is not None:
            advanced.set()

    def _note_error(self, environment: str, message: str, *, unreachable: bool = False) -> None:
        first = environment not in self._errors
        if first:
            log.warning("store unreachable for %s, serving last snapshot: %s", environment, message)
        self._errors[environment] = message
        if not unreachable:
            self._unreachable_since.pop(environment, None)
        elif first or environment not in self._unreachable_since:
            self._unreachable_since[environment] = time.time()


async def assemble(
    environment: Environment,
    flags: Iterable[Flag],
    settle: Callable[[], None] | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """`Snapshot.build`, giving the event loop back as it goes (`Pacer`): compiling took about
    0.1 ms a flag (0.05 ms since a type's answers are built on first use), so a build of 10,000
    flags in one go held every call for a second.
    `settle` runs at every pause and at the end (`heap.settle` for a large environment).

    `previous`: the snapshot served so far.  A flag it holds unchanged (`same_flag`), compiled
    against the same `$evaluators` and flag-set metadata, keeps its compiled entry: a periodic
    full reload of an environment that did not change compiles nothing (a compiled entry is
    immutable, so two snapshots may share it)."""
    entries: dict[str, Entry] = {}
    clock = time.perf_counter
    reusable: Mapping[str, Entry] = {}
    if previous is not None and same_compile_inputs(previous.environment, environment):
        reusable = previous.entries
    async with Pacer() as pacer:
        for flag in flags:
            if clock() >= pacer.deadline:
                if settle is not None:
                    settle()
                await pacer.pause()
            known = reusable.get(flag.key)
            if known is not None and same_flag(known.flag, flag):
                entries[flag.key] = known
            else:
                entries[flag.key] = compile_entry(flag, environment)
    if settle is not None:
        settle()
    return Snapshot(environment, entries)


async def advance(snapshot: Snapshot, change: Change) -> Snapshot:
    """`snapshot.apply(change)`, except for an environment change that recompiles every flag (new
    `$evaluators` or flag-set metadata): that one is built by `assemble`, giving the loop back,
    where `Snapshot.apply` would compile 50,000 flags in one step (about 10 s)."""
    environment = change.environment
    if (
        change.kind is not ChangeKind.ENVIRONMENT
        or environment is None
        or same_compile_inputs(snapshot.environment, environment)
    ):
        return snapshot.apply(change)
    if environment.config_version != change.config_version:
        environment = replace(environment, config_version=change.config_version)
    large = heap.large(len(snapshot.entries))
    return await assemble(environment, snapshot.flags(), heap.settle if large else None)


def _went_backwards(served: Snapshot, stored: Snapshot) -> str:
    """Why adopting `stored` would move `served` backwards ("" when it would not)."""
    if stored.config_version < served.config_version:
        return (
            f"it holds config_version {stored.config_version} with {len(stored.entries)} flags,"
            f" below the {served.config_version} served (with {len(served.entries)} flags)"
        )
    if served.entries and not stored.entries and stored.config_version == served.config_version:
        return (
            f"it holds no flags at config_version {stored.config_version},"
            f" where {len(served.entries)} were served"
        )
    return ""


async def _drifted(old: Snapshot, new: Snapshot) -> bool:
    """True when a reload shows flags that the change log never told us about.  The flags are
    compared a slice at a time (`Pacer`): comparing 50,000 of them held the loop for 45 ms."""
    if old.config_version != new.config_version:
        return True  # jumped over changes that were never published
    if old.entries.keys() != new.entries.keys():
        return True
    clock = time.perf_counter
    fresh = new.entries
    async with Pacer() as pacer:
        for key, entry in old.entries.items():
            if clock() >= pacer.deadline:
                await pacer.pause()
            if not same_flag(entry.flag, fresh[key].flag):
                return True
    return False
