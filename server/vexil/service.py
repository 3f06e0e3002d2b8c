"""The service core: flag management on top of a store, the snapshot cache and the hub.

Every protocol adapter (vexil admin RPCs, flag-file sync, import) goes through here, so a write
is validated the same way whatever door it came in by: identity and size checks, then a compile
with the real engine (a definition the engine would reject never reaches the store), then one
atomic store write, then the change is applied to the local snapshot and fanned out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from vexil import identity
from vexil.cache import SnapshotCache
from vexil.engine import FlagValidationError, compile_flag, fractional
from vexil.errors import (
    Conflict,
    EnvironmentNotServed,
    FlagDeleted,
    FlagLimitReached,
    FlagNotFound,
    InvalidArgument,
    KillSwitchAdminOnly,
    VersionNotFound,
    VexilError,
)
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision, FlagState, Page, check_flag_key
from vexil.store import records
from vexil.store.base import FlagStore

MAX_DEFINITION_BYTES = 300 * 1024
MAX_PAGE_SIZE = 1000
WRITE_ATTEMPTS = 5
"""How often a write that did not name a version re-reads and tries again when another write
lands between its read and its conditional write (each attempt is one read and one write)."""


def definition_size(flag: Flag) -> int:
    body = {
        "definition": flag.definition(),
        "description": flag.description,
        "owner": flag.owner,
        "tags": list(flag.tags),
    }
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def page_size(requested: int, default: int = 100) -> int:
    if requested < 0:
        raise InvalidArgument("must not be negative", "page_size")
    return min(requested or default, MAX_PAGE_SIZE)


def check_fractional_hashing(metadata: Mapping[str, Any]) -> None:
    """The environment's `fractionalHashing`, if set, must name a hashing the engine has (a
    flags file's unknown value is served as the default, with a warning, as flagd would)."""
    if fractional.hashing_of(metadata) is None:
        raise InvalidArgument(
            f"is one of {', '.join(map(repr, fractional.HASHINGS))} "
            f"(default {fractional.STRING!r}: flagd's; {fractional.CBOR!r}: the Python flagd core's)",
            f"metadata.{fractional.HASHING_KEY}",
        )


def check_definition(flag: Flag) -> None:
    """The checks of a definition that need neither the environment nor the engine: values every
    reader can get back, the definition's size and the lengths of its text fields.  `validate`
    runs them on every write; `vexil flags import` (and its dry run) runs the same on a file
    before writing anything, so the two can never disagree.  `InvalidArgument` names the field
    under `flag`."""
    records.check_portable(flag.variants, "flag.variants", depth=0)
    records.check_portable(flag.targeting, "flag.targeting")
    records.check_portable(flag.metadata, "flag.metadata")
    records.check_portable(flag.description, "flag.description")
    records.check_portable(flag.owner, "flag.owner")
    records.check_portable(list(flag.tags), "flag.tags")
    size = definition_size(flag)
    if size > MAX_DEFINITION_BYTES:
        raise InvalidArgument(
            f"definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES} bytes", "flag"
        )
    if len(flag.description) > 4096:
        raise InvalidArgument("at most 4096 characters", "flag.description")
    if len(flag.owner) > 256:
        raise InvalidArgument("at most 256 characters", "flag.owner")
    for i, tag in enumerate(flag.tags):
        if not tag or len(tag) > 128:
            raise InvalidArgument("tags must be 1-128 characters", f"flag.tags[{i}]")


def require_reason(killed: bool, reason: str) -> None:
    """Killing is an incident action: the audit trail must say why."""
    if killed and not reason.strip():
        raise InvalidArgument("say why (it is recorded in the change log)", "reason")


class FlagService:
    """Admin operations; reads come from the store (authoritative), evaluations from the cache."""

    def __init__(
        self, store: FlagStore, cache: SnapshotCache, default_environment: str, max_flags: int = 10000
    ) -> None:
        self.store = store
        self.cache = cache
        self.default_environment = default_environment
        self.max_flags = max_flags
        self.written: list[Callable[[Change], None]] = []
        """Called with each change written through this service, once applied here (the fleet
        pokes the other replicas); must not block."""

    def environment(self, name: str) -> str:
        """The environment a request means: the one it names, else the one its credentials are
        scoped to (when exactly one), else the server's default; must be served here and within the
        calling credentials' scope (PERMISSION_DENIED otherwise).  Every adapter reaches an
        environment through here, so an empty one reads the same on every RPC and page."""
        env = name or identity.default_environment() or self.default_environment
        if not self.cache.serves(env):
            raise EnvironmentNotServed(
                f"environment '{env[:70]}' is not served by this server "
                f"(serves: {', '.join(self.cache.environments)})"
            )
        identity.require_environment(env)
        return env

    def _writable(self, environment: str) -> str:
        """`environment(environment)`, refused unless it is served from a store (writes need one).
        An environment write goes to the store as it is stored, not as cached (the cache may not
        have applied a kill yet): `StoreWrites.change_environment` applies the change to what it
        reads, so an incident's kill switch never loses to routine writes of other flags."""
        env = self.environment(environment)
        self.cache.require_store(env)
        return env

    def validate(
        self, flag: Flag, evaluators: Mapping[str, Any] | None = None, *, lenient: bool = False
    ) -> Flag:
        """Check a definition completely before it is stored; returns it with its environment set.

        `evaluators` replaces the environment's current `$evaluators` for the compile check (a
        file or import that brings new evaluators along with the flags that use them).
        `lenient`: accept what flagd loads (a flags file), whose mistakes answer at evaluation
        time as flagd answers; the admin API is always strict."""
        check_flag_key(flag.key, "flag.key")
        flag = replace(flag, environment=self.environment(flag.environment))
        check_definition(flag)
        if evaluators is None:
            evaluators = self.cache.get(flag.environment).environment.evaluators
        try:
            compile_flag(flag, evaluators, strict=not lenient)
        except FlagValidationError as exc:
            raise InvalidArgument(exc.message, f"flag.{exc.path}" if exc.path else "flag") from None
        return flag

    async def _applied(self, change: Change) -> Change:
        await self.cache.apply(change)
        for written in self.written:
            written(change)
        return change

    # -- flags ---------------------------------------------------------------------------------

    async def create_flag(
        self,
        flag: Flag,
        *,
        actor: str,
        reason: str = "",
        lenient: bool = False,
        keep_state: bool = False,
    ) -> Change:
        """Store a new flag. A key that was deleted comes back with its history, and with the
        state it had then: deleting a killed flag and creating it again must not revive it (nor
        the reverse kill it), since only `set_flag_killed` kills or revives.

        `keep_state`: the request did not say a state, so a deleted flag's is taken (a new key
        gets `flag.state`). Otherwise a state that differs from the deleted flag's is refused."""
        flag = self.validate(flag, lenient=lenient)
        self.cache.require_store(flag.environment)
        held = len(self.cache.get(flag.environment).entries)
        if held >= self.max_flags:
            raise FlagLimitReached(
                f"environment '{flag.environment}' holds {held} flags, the cache profile's limit; "
                "raise cache_maxsize (or use a larger profile) to add more"
            )

        async def attempt() -> Change:
            history = await self.store.get_history(flag.environment, flag.key, page_size=1)
            last = history.items[0] if history.items else None
            written = flag
            if last is not None and last.deleted:
                if keep_state:
                    written = replace(flag, state=last.flag.state)
                elif flag.state != last.flag.state:
                    raise KillSwitchAdminOnly(
                        f"flag '{flag.key}' was {last.flag.state} when it was deleted, and a create "
                        "continues its history in that state: only SetKillSwitch (an admin's "
                        "`vexil flags kill`) kills or revives it; leave state out to keep it"
                    )
            return await self.store.create_flag(
                written, actor=actor, reason=reason, after_version=last.flag.version if last else 0
            )

        return await self._conditionally(attempt, named=False)

    async def update_flag(
        self,
        flag: Flag,
        *,
        expected_version: int | None,
        actor: str,
        reason: str = "",
        keep_state: bool = False,
        lenient: bool = False,
    ) -> Change:
        """Replace a flag's definition; its state (the kill switch) is not part of it.

        `keep_state`: the request did not say a state, so the stored one is kept. Otherwise a state
        that differs from the stored one is refused: only `set_flag_killed` kills or revives."""
        try:
            flag = self.validate(flag, lenient=lenient)
        except InvalidArgument:
            # A definition read back from a flag its store could not read has no variants: say
            # why the stored flag cannot be written over, not that the copy lacks variants.
            try:
                stored = await self.store.get_flag(self.environment(flag.environment), flag.key)
            except VexilError:
                stored = None  # the request's own error says more
            if stored is not None:
                records.check_usable(stored)
            raise
        self.cache.require_store(flag.environment)
        return await self._write_definition(
            flag,
            expected_version=expected_version,
            kind=ChangeKind.UPDATE,
            actor=actor,
            reason=reason,
            keep_state=keep_state,
        )

    async def _write_definition(
        self,
        flag: Flag,
        *,
        expected_version: int | None,
        kind: ChangeKind,
        actor: str,
        reason: str,
        keep_state: bool,
    ) -> Change:
        """Write a validated definition over the stored flag without touching its state.

        The state check and the write must see the same flag: the write is conditional on the
        version read, so a kill landing in between makes it fail (Conflict) instead of being
        undone. A caller that named no version gets a bounded number of fresh tries; one that
        named a version gets the Conflict, as with any other concurrent write."""

        async def attempt() -> Change:
            current = await self.store.get_flag(flag.environment, flag.key)
            if current is None:
                raise FlagNotFound(f"flag '{flag.key}' does not exist in environment '{flag.environment}'")
            written = flag
            if keep_state:
                written = replace(flag, state=current.state)
            elif flag.state != current.state:
                raise KillSwitchAdminOnly(
                    f"flag '{flag.key}' is {current.state} and {kind} does not change a flag's state: "
                    "that is the kill switch, turned on and off only by SetKillSwitch (an admin's "
                    "`vexil flags kill`); leave state out to keep it"
                )
            return await self.store.update_flag(
                written,
                expected_version=current.version if expected_version is None else expected_version,
                kind=kind,
                actor=actor,
                reason=reason,
            )

        return await self._conditionally(attempt, named=expected_version is not None)

    async def _conditionally(self, attempt: Callable[[], Awaitable[Change]], *, named: bool) -> Change:
        """Run `attempt` (a read, then a write conditional on what it read) and apply its change.

        A Conflict means another write landed between the two: a caller that `named` the version
        it expected gets it, as with any other concurrent write; one that did not gets a bounded
        number of fresh tries."""
        for tries in range(WRITE_ATTEMPTS):
            try:
                change = await attempt()
            except Conflict:
                if named or tries == WRITE_ATTEMPTS - 1:
                    raise
                continue
            return await self._applied(change)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def delete_flag(
        self, environment: str, key: str, *, expected_version: int | None, actor: str, reason: str = ""
    ) -> Change:
        check_flag_key(key)
        env = self._writable(environment)
        change = await self.store.delete_flag(
            env, key, expected_version=expected_version, actor=actor, reason=reason
        )
        return await self._applied(change)

    async def get_flag(self, environment: str, key: str) -> Flag:
        check_flag_key(key)
        env = self.environment(environment)
        flag = await self.store.get_flag(env, key)
        if flag is None:
            raise FlagNotFound(f"flag '{key}' does not exist in environment '{env}'")
        return flag

    async def list_flags(
        self, environment: str, *, owner: str = "", tag: str = "", size: int = 0, token: str = ""
    ) -> Page[Flag]:
        env = self.environment(environment)
        return await self.store.list_flags(
            env, owner=owner, tag=tag, page_size=page_size(size), page_token=token
        )

    async def history(
        self, environment: str, key: str, *, size: int = 0, token: str = ""
    ) -> Page[FlagRevision]:
        check_flag_key(key)
        env = self.environment(environment)
        page = await self.store.get_history(env, key, page_size=page_size(size, 50), page_token=token)
        if not page.items and not token:
            raise VersionNotFound(f"flag '{key}' has no history in environment '{env}'")
        return page

    async def rollback(
        self,
        environment: str,
        key: str,
        to_version: int,
        *,
        expected_version: int | None,
        actor: str,
        reason: str = "",
    ) -> Change:
        check_flag_key(key)
        env = self.environment(environment)
        if to_version <= 0:
            raise InvalidArgument("name the version to roll back to (1 or more)", "to_version")
        self.cache.require_store(env)
        revision = await self.store.get_revision(env, key, to_version)
        if revision is None:
            raise VersionNotFound(f"flag '{key}' has no version {to_version} in environment '{env}'")
        if revision.deleted:
            raise FlagDeleted(
                f"version {to_version} of '{key}' records its deletion; pick a version that had a definition"
            )
        if await self.store.get_flag(env, key) is None:
            raise FlagDeleted(
                f"flag '{key}' is deleted; create it again (its history continues) instead of rolling back"
            )
        self.validate(revision.flag)
        return await self._write_definition(
            revision.flag,
            expected_version=expected_version,
            kind=ChangeKind.ROLLBACK,
            actor=actor,
            reason=reason or f"rollback to version {to_version}",
            keep_state=True,  # a rollback restores a definition, never an old kill state
        )

    async def set_flag_killed(
        self, environment: str, key: str, killed: bool, *, actor: str, reason: str
    ) -> Change:
        """The one way a flag's state changes (a KILL change in the log).  The store applies the
        state to the flag as each of its attempts reads it, so a concurrent definition update is
        neither lost nor able to undo the kill, and however busy the flag is, the kill costs
        retries inside the store's write deadline, never a refusal."""
        require_reason(killed, reason)
        check_flag_key(key)
        env = self._writable(environment)
        state = FlagState.DISABLED if killed else FlagState.ENABLED
        try:
            change = await self.store.set_flag_state(env, key, state, actor=actor, reason=reason)
        except FlagNotFound:
            raise FlagNotFound(f"flag '{key}' does not exist in environment '{env}'") from None
        return await self._applied(change)

    # -- environments --------------------------------------------------------------------------

    def get_environment(self, environment: str) -> Environment:
        return self.cache.get(self.environment(environment)).environment

    async def set_environment_killed(
        self, environment: str, killed: bool, *, actor: str, reason: str
    ) -> Change:
        """The one way the environment kill switch changes."""
        require_reason(killed, reason)
        change = await self.store.change_environment(
            self._writable(environment),
            lambda current: replace(current, kill_switch=killed, kill_reason=reason if killed else ""),
            expected_config_version=None,
            actor=actor,
            reason=reason,
        )
        return await self._applied(change)

    async def update_environment(
        self,
        environment: str,
        *,
        evaluators: dict | None,
        metadata: dict | None,
        expected_config_version: int | None,
        actor: str,
        reason: str = "",
        check_flags: bool = True,
    ) -> Change:
        """Replace `$evaluators` / metadata; the kill switch stays as stored. `check_flags=False`
        skips checking that current flags still compile: for callers that replace those flags
        right after (file sync, import)."""
        records.check_portable(evaluators, "evaluators")
        records.check_portable(metadata, "metadata")

        def change(current: Environment) -> Environment:
            updated = replace(
                current,
                evaluators=current.evaluators if evaluators is None else evaluators,
                metadata=current.metadata if metadata is None else metadata,
            )
            if check_flags:
                check_fractional_hashing(updated.metadata)
                self._check_evaluators(updated)
            return updated

        written = await self.store.change_environment(
            self._writable(environment),
            change,
            expected_config_version=expected_config_version,
            actor=actor,
            reason=reason,
        )
        return await self._applied(written)

    def _check_evaluators(self, environment: Environment) -> None:
        """New `$evaluators` must keep every current flag compilable.  A flag that already does
        not (loaded from a file or a hand-written item, served as flagd serves it) is no reason
        to refuse."""
        current = self.cache.get(environment.name).environment.evaluators
        for flag in self.cache.get(environment.name).flags():
            try:
                compile_flag(flag, environment.evaluators)
            except FlagValidationError as exc:
                try:
                    compile_flag(flag, current)
                except FlagValidationError:
                    continue
                raise InvalidArgument(
                    f"flag '{flag.key}' would no longer compile: {exc.message}", "evaluators"
                ) from None

    async def list_changes(
        self, environment: str, *, since_version: int = 0, size: int = 0, flag_key: str = ""
    ) -> list[Change]:
        env = self.environment(environment)
        limit = page_size(size)
        if not flag_key:
            return await self.store.list_changes(env, since_version=since_version, limit=limit)
        found: list[Change] = []
        since = since_version
        while len(found) < limit:
            batch = await self.store.list_changes(env, since_version=since, limit=MAX_PAGE_SIZE)
            if not batch:
                break
            found.extend(c for c in batch if c.flag_key == flag_key)
            since = batch[-1].config_version
        return found[:limit]
