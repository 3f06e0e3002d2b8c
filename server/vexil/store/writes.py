"""`StoreWrites`: the four writes of `FlagStore`, written once for every backend.

Each write validates its input, then hands the backend a builder from `records` with the caller's
request already bound.  The backend reads what the builder needs (the current flag, the newest
history version, the environment's config version), calls it, and persists the records it returns
atomically: the memory store in one synchronous step, DynamoDB in one conditional transaction
(calling the builder again after a lost race, so the answer to a stale caller comes from the same
checks).  So the backends differ only in how they read and persist, never in what a write means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial

from vexil.model import Change, ChangeKind, Environment, Flag
from vexil.store import records

BuildFlagWrite = Callable[[records.FlagRead], records.FlagWrite]
"""A flag-write builder of `records` with the request bound: what remains is what was read."""

BuildEnvironmentWrite = Callable[[int, float], records.EnvironmentWrite]
"""`records.environment_write` with the request bound: it takes the config version read and the
write's timestamp."""


class StoreWrites(ABC):
    """The write half of `FlagStore`; a backend provides `_write_flag` and `_write_environment`."""

    async def create_flag(self, flag: Flag, *, actor: str, reason: str = "") -> Change:
        flag = records.normalize_flag(flag)
        build = partial(records.create_write, flag, actor=actor, reason=reason)
        doing = f"creating flag {flag.environment}/{flag.key}"
        return await self._write_flag(flag.environment, flag.key, build, doing)

    async def update_flag(
        self,
        flag: Flag,
        *,
        expected_version: int | None,
        kind: ChangeKind = ChangeKind.UPDATE,
        actor: str,
        reason: str = "",
    ) -> Change:
        flag = records.normalize_flag(flag)
        build = partial(
            records.update_write,
            flag,
            expected_version=expected_version,
            kind=kind,
            actor=actor,
            reason=reason,
        )
        doing = f"updating flag {flag.environment}/{flag.key}"
        return await self._write_flag(flag.environment, flag.key, build, doing)

    async def delete_flag(
        self, env: str, key: str, *, expected_version: int | None, actor: str, reason: str = ""
    ) -> Change:
        records.check_environment_name(env)
        records.check_flag_key(key)
        build = partial(
            records.delete_write, env, key, expected_version=expected_version, actor=actor, reason=reason
        )
        return await self._write_flag(env, key, build, f"deleting flag {env}/{key}")

    async def update_environment(
        self,
        environment: Environment,
        *,
        expected_config_version: int | None,
        actor: str,
        reason: str = "",
    ) -> Change:
        environment = records.normalize_environment(environment)
        build = partial(
            records.environment_write,
            environment,
            expected_config_version=expected_config_version,
            actor=actor,
            reason=reason,
        )
        return await self._write_environment(
            environment.name, build, f"updating environment {environment.name}"
        )

    @abstractmethod
    async def _write_flag(self, env: str, key: str, build: BuildFlagWrite, doing: str) -> Change:
        """Read what `build` needs for flag `env/key`, call it, persist its records atomically and
        return the change; `doing` describes the write for error messages."""

    @abstractmethod
    async def _write_environment(self, env: str, build: BuildEnvironmentWrite, doing: str) -> Change:
        """Read the environment's config version, call `build`, persist its records atomically."""
