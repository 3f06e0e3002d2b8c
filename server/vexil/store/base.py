"""The store interface: what every persistence backend (memory, DynamoDB) provides.

The service never talks to a database directly; it calls these methods, and the evaluation path
never calls them at all (it reads immutable snapshots built from `load_environment` and the change
log).  Every write is atomic: the flag (or environment) item, the environment's `config_version`
bump, the change-log entry and the history entry land together or not at all.

Versioning rules, identical for every backend:
- a flag's `version` starts at 1 and grows by one per write; a flag deleted and created again
  continues its sequence (its history is never overwritten);
- every write bumps the environment's `config_version` by exactly one, and the change-log entry
  carries that number, so `list_changes(env, since_version=n)` returns a gap-free sequence;
- `expected_version=None` means "no optimistic check" (the write still applies atomically on top
  of whatever is current); an integer is checked and a mismatch raises `Conflict` carrying the
  current version, with nothing written.

Errors: `NotFound`, `AlreadyExists`, `Conflict`, `InvalidArgument` (item too large) and
`Unavailable` (backend unreachable; nothing was written) from `vexil.errors`.
"""

from __future__ import annotations

from abc import abstractmethod

from vexil.model import Change, Environment, Flag, FlagRevision, Page, check_environment_name
from vexil.store import paging
from vexil.store.replicas import ReplicaRecord
from vexil.store.writes import StoreWrites


class FlagStore(StoreWrites):
    """Persistence for flags, environments, history and the change log.

    A backend subclasses it and provides the reads below; the four writes (`create_flag`,
    `update_flag`, `delete_flag`, `update_environment`) are `StoreWrites`', written once over the
    backend's `_write_flag` and `_write_environment`."""

    name: str
    """Short backend name for logs and health ("memory", "dynamodb")."""

    @abstractmethod
    async def start(self) -> None:
        """Open connections; must not create tables (that is an explicit operator action)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; idempotent."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise `Unavailable` when the backend cannot be reached (health and readiness)."""

    @abstractmethod
    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        """Everything a snapshot needs, read consistently: the environment (a default
        `Environment(name=env)` when none is stored yet) and every flag in it."""

    @abstractmethod
    async def read_environment(self, env: str) -> Environment:
        """The environment item alone, read consistently (a default `Environment(name=env)` when
        none is stored yet): what an environment write starts from, without reading every flag."""

    @abstractmethod
    async def get_flag(self, env: str, key: str) -> Flag | None:
        """The current definition, or None when the flag does not exist."""

    async def list_flags(
        self,
        env: str,
        *,
        owner: str = "",
        tag: str = "",
        page_size: int = 100,
        page_token: str = "",
    ) -> Page[Flag]:
        """Flags of one environment in key order, optionally only one owner's or one tag's.

        The arguments are checked and the page token made here, once, so every backend refuses
        and pages alike; the backend's `_list_flags` only reads."""
        check_environment_name(env)
        size = paging.clamp_page_size(page_size, 100)
        flags, more = await self._list_flags(
            env, owner=owner, tag=tag, size=size, after=paging.decode_token(page_token, "k")
        )
        return Page(items=flags, next_token=paging.encode_token("k", flags[-1].key) if more else "")

    @abstractmethod
    async def _list_flags(
        self, env: str, *, owner: str, tag: str, size: int, after: str
    ) -> tuple[list[Flag], bool]:
        """Up to `size` of the matching flags whose keys sort after `after` (from the first when
        ""), and whether more match after them."""

    @abstractmethod
    async def get_history(
        self, env: str, key: str, *, page_size: int = 50, page_token: str = ""
    ) -> Page[FlagRevision]:
        """A flag's revisions, newest first; empty when the flag never existed."""

    @abstractmethod
    async def get_revision(self, env: str, key: str, version: int) -> FlagRevision | None:
        """One revision of a flag (for rollback), or None."""

    @abstractmethod
    async def list_changes(self, env: str, *, since_version: int = 0, limit: int = 1000) -> list[Change]:
        """Change-log entries with `config_version > since_version`, ascending, at most `limit`.

        A backend may trim old entries; callers detect that by the first entry's
        `config_version` not being `since_version + 1`."""

    @abstractmethod
    async def stored_config_version(self, env: str) -> int:
        """The environment's `config_version` as stored now (0 when it has no item): one cheap
        read that lets a replica notice a store that went backwards (a table recreated or
        restored under it) when the change log has nothing new to say."""

    @abstractmethod
    async def adoption(self, env: str) -> str:
        """The id of the operator's latest adoption of the store's state for `env` ("" if none).

        A replica whose store went backwards keeps serving its last-known-good snapshot until
        this id changes: that is how an operator tells every replica at once to take the new
        state (`vexil dynamodb adopt`)."""

    @abstractmethod
    async def adopt(self, env: str, *, actor: str) -> str:
        """Record a new adoption of the store's current state for `env`; returns its id."""

    @abstractmethod
    async def put_replica(self, record: ReplicaRecord) -> None:
        """Record (or refresh) one replica's registry record; never bumps `config_version` and
        never enters the change log (`vexil.store.replicas`)."""

    @abstractmethod
    async def list_replicas(self, env: str, *, expired_within: float = 0.0) -> list[ReplicaRecord]:
        """The live registry records of `env`, by replica id; those expired more than
        `expired_within` seconds ago left out (a receipt also wants the recently silent)."""

    @abstractmethod
    async def delete_replica(self, env: str, replica_id: str) -> None:
        """Remove one replica's record (a replica stopping on purpose); absent is fine."""
