"""`StoreWrites`: the writes of the `FlagStore` contract, written once for every backend.

Each write validates its input (its `reason` too: the writes of every door pass here), then hands
the backend a builder from `records` with the caller's request already bound.  The backend reads
what the builder needs (the current flag, the newest history version, the environment as stored),
calls it, and persists the records it returns atomically: the memory store in one
synchronous step, DynamoDB in one conditional transaction (calling the builder again after a lost
race, so the answer to a stale caller comes from the same checks).  So the backends differ only in
how they read and persist, never in what a write means.
The versioning rules every write keeps are in `base`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial

from vexil.model import (
    Change,
    ChangeKind,
    Environment,
    Flag,
    FlagState,
    check_environment_name,
    check_flag_key,
)
from vexil.store import records

BuildFlagWrite = Callable[[records.FlagRead], records.FlagWrite]
"""A flag-write builder of `records` with the request bound: what remains is what was read."""

BuildEnvironmentWrite = Callable[[Environment, float], records.EnvironmentWrite]
"""`records.environment_write` with the request bound: it takes the environment as read (its
config version included) and the write's timestamp."""


class StoreWrites(ABC):
    """The write half of `FlagStore`; a backend provides `_write_flag` and `_write_environment`."""

    async def create_flag(
        self, flag: Flag, *, actor: str, reason: str = "", after_version: int | None = None
    ) -> Change:
        """Store a new flag (its `version` is ignored and assigned); `AlreadyExists` if present.
        `after_version`: the key's history must still end at that version (`Conflict` if not;
        0 for a key without history)."""
        records.check_reason(reason)
        flag = records.normalize_flag(flag)
        build = partial(records.create_write, flag, actor=actor, reason=reason, after_version=after_version)
        return await self._flag("creating", flag.environment, flag.key, build)

    async def update_flag(
        self,
        flag: Flag,
        *,
        expected_version: int | None,
        kind: ChangeKind = ChangeKind.UPDATE,
        actor: str,
        reason: str = "",
    ) -> Change:
        """Replace an existing flag's definition (`created_at` and `managed_by` are kept); `NotFound`
        if absent.

        `kind` records why in the change log: UPDATE, ROLLBACK or KILL."""
        records.check_reason(reason)
        flag = records.normalize_flag(flag)
        build = partial(
            records.update_write,
            flag,
            expected_version=expected_version,
            kind=kind,
            actor=actor,
            reason=reason,
        )
        return await self._flag("updating", flag.environment, flag.key, build)

    async def set_flag_state(
        self, env: str, key: str, state: FlagState, *, actor: str, reason: str = ""
    ) -> Change:
        """Kill or revive a flag: its stored definition with `state`, a KILL change; `NotFound` if
        absent.  The state is applied to the flag each attempt reads, so concurrent definition
        writes neither undo it nor make it fail (they cost a retry inside the store)."""
        check_environment_name(env)
        check_flag_key(key)
        records.check_reason(reason)
        build = partial(records.state_write, env, key, state, actor=actor, reason=reason)
        return await self._flag("setting the state of", env, key, build)

    async def delete_flag(
        self, env: str, key: str, *, expected_version: int | None, actor: str, reason: str = ""
    ) -> Change:
        """Remove a flag; its history stays.  `NotFound` if absent."""
        check_environment_name(env)
        check_flag_key(key)
        records.check_reason(reason)
        build = partial(
            records.delete_write, env, key, expected_version=expected_version, actor=actor, reason=reason
        )
        return await self._flag("deleting", env, key, build)

    async def update_environment(
        self,
        environment: Environment,
        *,
        expected_config_version: int | None,
        actor: str,
        reason: str = "",
    ) -> Change:
        """Replace the environment's evaluators, kill switch and metadata (an ENVIRONMENT change)."""
        records.normalize_environment(environment)  # refused before anything is read
        return await self.change_environment(
            environment.name,
            lambda current: environment,
            expected_config_version=expected_config_version,
            actor=actor,
            reason=reason,
        )

    async def change_environment(
        self,
        name: str,
        change: Callable[[Environment], Environment],
        *,
        expected_config_version: int | None,
        actor: str,
        reason: str = "",
    ) -> Change:
        """Write `change` applied to the environment as stored (an ENVIRONMENT change).  It is
        applied to what each attempt read, and the write is conditional on that, so a write that
        landed in between (a kill, a revive) is kept, and one that only moved the config version
        (any flag's write) costs a retry, never the request."""
        records.check_reason(reason)
        check_environment_name(name)
        build = partial(
            records.environment_write,
            change,
            expected_config_version=expected_config_version,
            actor=actor,
            reason=reason,
        )
        return await self._write_environment(name, build, f"updating environment {name}")

    async def _flag(self, doing: str, env: str, key: str, build: BuildFlagWrite) -> Change:
        return await self._write_flag(env, key, build, f"{doing} flag {env}/{key}")

    @abstractmethod
    async def _write_flag(self, env: str, key: str, build: BuildFlagWrite, doing: str) -> Change:
        """Read what `build` needs for flag `env/key`, call it, persist its records atomically and
        return the change; `doing` describes the write for error messages."""

    @abstractmethod
    async def _write_environment(self, env: str, build: BuildEnvironmentWrite, doing: str) -> Change:
        """Read the environment's config version, call `build`, persist its records atomically."""
