"""`MemoryStore`: the embedded default store, everything in process memory.

Why it is safe without locks: every method does all of its reading, checking and mutating with no
`await` in between, so on one event loop each write is atomic (nothing else can run halfway
through it).  Do not call it from several threads.  What a write stores (and whether it may) is
decided by the builders of `records`, through `writes.StoreWrites`, as for DynamoDB; this module
only keeps the result in its dictionaries.

Bounds: the change log keeps the newest `max_changes` entries per environment, and none older than
`change_retention` seconds, as the DynamoDB store does (the protocol allows trimming; a consumer
notices by the first entry's `config_version` not being `since + 1` and reloads).  Flag history is
kept in full, one revision per write, for as long as the process runs:
memory grows with the number of writes, which is fine for local work and tests and is one reason
production uses DynamoDB.

Values handed in are copied (their JSON fields go through a strict JSON round trip), so a caller
mutating its own dicts afterwards cannot change what is stored.  Values handed out are the stored
objects themselves: treat them as read-only, as the model asks.
"""

from __future__ import annotations

import bisect
import itertools
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace

from vexil.model import Change, Environment, Flag, FlagRevision, Page, check_environment_name
from vexil.store import paging, records
from vexil.store.base import FlagStore
from vexil.store.replicas import ReplicaRecord, live
from vexil.store.writes import BuildEnvironmentWrite, BuildFlagWrite

DEFAULT_MAX_CHANGES = 10_000
DEFAULT_CHANGE_RETENTION_S = 7 * 24 * 3600.0


@dataclass(slots=True)
class _EnvironmentState:
    """Everything one environment holds; mutated only inside a single synchronous step."""

    environment: Environment
    flags: dict[str, Flag] = field(default_factory=dict)
    sorted_keys: list[str] = field(default_factory=list)
    history: dict[str, list[FlagRevision]] = field(default_factory=dict)
    changes: deque[Change] = field(default_factory=deque)


class MemoryStore(FlagStore):
    """A complete `FlagStore` in dictionaries; see the module docstring for its guarantees."""

    name = "memory"

    def __init__(
        self,
        *,
        max_changes: int = DEFAULT_MAX_CHANGES,
        change_retention: float = DEFAULT_CHANGE_RETENTION_S,
    ) -> None:
        if max_changes < 1:
            raise ValueError("max_changes must be at least 1")
        if change_retention <= 0:
            raise ValueError("change_retention must be greater than 0")
        self._max_changes = max_changes
        self._change_retention = change_retention
        self._environments: dict[str, _EnvironmentState] = {}
        self._adoptions: dict[str, str] = {}
        self._replicas: dict[tuple[str, str], ReplicaRecord] = {}

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release; the data stays readable (the process owns it)."""

    async def ping(self) -> None:
        """Always reachable."""

    # --- reads ----------------------------------------------------------------------------

    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        check_environment_name(env)
        state = self._environments.get(env)
        if state is None:
            return Environment(name=env), []
        return state.environment, [state.flags[key] for key in state.sorted_keys]

    async def read_environment(self, env: str) -> Environment:
        check_environment_name(env)
        state = self._environments.get(env)
        return Environment(name=env) if state is None else state.environment

    async def get_flag(self, env: str, key: str) -> Flag | None:
        state = self._environments.get(env)
        return None if state is None else state.flags.get(key)

    async def _list_flags(
        self, env: str, *, owner: str, tag: str, size: int, after: str
    ) -> tuple[list[Flag], bool]:
        state = self._environments.get(env)
        if state is None:
            return [], False
        start = bisect.bisect_right(state.sorted_keys, after) if after else 0
        items: list[Flag] = []
        for key in itertools.islice(state.sorted_keys, start, None):
            flag = state.flags[key]
            if (owner and flag.owner != owner) or (tag and tag not in flag.tags):
                continue
            if len(items) == size:
                return items, True
            items.append(flag)
        return items, False

    async def get_history(
        self, env: str, key: str, *, page_size: int = 50, page_token: str = ""
    ) -> Page[FlagRevision]:
        size = paging.clamp_page_size(page_size, 50)
        before = paging.decode_version_token(page_token)
        state = self._environments.get(env)
        revisions = [] if state is None else state.history.get(key, [])
        # Revisions are stored oldest first with strictly increasing versions.
        end = len(revisions)
        if before is not None:
            end = bisect.bisect_left([r.flag.version for r in revisions], before)
        start = max(0, end - size)
        items = list(reversed(revisions[start:end]))
        token = paging.encode_version_token(items[-1].flag.version) if items and start > 0 else ""
        return Page(items=items, next_token=token)

    async def get_revision(self, env: str, key: str, version: int) -> FlagRevision | None:
        state = self._environments.get(env)
        if state is None:
            return None
        for revision in state.history.get(key, []):
            if revision.flag.version == version:
                return revision
        return None

    async def list_changes(self, env: str, *, since_version: int = 0, limit: int = 1000) -> list[Change]:
        state = self._environments.get(env)
        if state is not None:
            self._expire(state)
        if state is None or not state.changes or limit <= 0:
            return []
        first = state.changes[0].config_version
        start = max(0, since_version - first + 1)
        if start >= len(state.changes):  # also keeps a since_version past any int islice takes out
            return []
        return list(itertools.islice(state.changes, start, start + limit))

    async def stored_config_version(self, env: str) -> int:
        state = self._environments.get(env)
        return state.environment.config_version if state is not None else 0

    async def adoption(self, env: str) -> str:
        return self._adoptions.get(env, "")

    async def adopt(self, env: str, *, actor: str) -> str:
        check_environment_name(env)
        self._adoptions[env] = uuid.uuid4().hex
        return self._adoptions[env]

    # --- the replica registry: in one process, a registry of one -----------------------------

    async def put_replica(self, record: ReplicaRecord) -> None:
        check_environment_name(record.environment)
        self._replicas[(record.environment, record.replica_id)] = record

    async def list_replicas(self, env: str, *, expired_within: float = 0.0) -> list[ReplicaRecord]:
        return live((r for (e, _), r in self._replicas.items() if e == env), time.time(), expired_within)

    async def delete_replica(self, env: str, replica_id: str) -> None:
        self._replicas.pop((env, replica_id), None)

    # --- writes (each one synchronous from its first read to its last mutation) -------------

    async def _write_flag(self, env: str, key: str, build: BuildFlagWrite, doing: str) -> Change:
        state = self._state(env)
        read = records.FlagRead(
            current=state.flags.get(key),
            history_version=self._last_version(state, key),
            config_version=state.environment.config_version,
            at=records.now(),
        )
        write = build(read)
        state.environment = replace(state.environment, config_version=write.change.config_version)
        if write.deleted:
            del state.flags[key]
            state.sorted_keys.pop(bisect.bisect_left(state.sorted_keys, key))
        else:
            if key not in state.flags:
                bisect.insort(state.sorted_keys, key)
            state.flags[key] = write.flag
        state.history.setdefault(key, []).append(write.revision)
        self._append_change(state, write.change)
        return write.change

    async def _write_environment(self, env: str, build: BuildEnvironmentWrite, doing: str) -> Change:
        state = self._state(env)
        write = build(state.environment, records.now())
        state.environment = write.environment
        self._append_change(state, write.change)
        return write.change

    # --- helpers --------------------------------------------------------------------------

    def _state(self, env: str) -> _EnvironmentState:
        state = self._environments.get(env)
        if state is None:
            state = self._environments[env] = _EnvironmentState(Environment(name=env))
        return state

    @staticmethod
    def _last_version(state: _EnvironmentState, key: str) -> int:
        revisions = state.history.get(key)
        return revisions[-1].flag.version if revisions else 0

    def _append_change(self, state: _EnvironmentState, change: Change) -> None:
        state.changes.append(change)
        while len(state.changes) > self._max_changes:
            state.changes.popleft()
        self._expire(state)

    def _expire(self, state: _EnvironmentState) -> None:
        """Drop entries older than the retention (oldest first: the log stays gap-free)."""
        horizon = time.time() - self._change_retention
        while state.changes and state.changes[0].timestamp <= horizon:
            state.changes.popleft()
