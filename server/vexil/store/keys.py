"""API key storage: the `ApiKey` record, the `KeyStore` protocol and the in-memory `MemoryKeyStore`.

A stored key never holds its secret, only a salted hash of it (`vexil.security.apikeys` makes
and checks them), so a leaked table or a log of stored records gives nobody a usable credential.
Keys live beside flags (the same DynamoDB table, `APIKEY#<id>` items; see `keys_dynamodb`) but
behind their own protocol: `FlagStore` stays about flags, and a deployment can keep its keys
elsewhere without touching the flag store.

Concurrent changes to one key (two admins rotating at once) are serialised by `revision`:
`replace_key` is conditional on the revision read, so the loser gets `Conflict` instead of
silently undoing the winner's rotation or revocation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from vexil.errors import ApiKeyAlreadyExists, ApiKeyNotFound, Conflict

ALL_ENVIRONMENTS = "*"
"""The environment scope of a key that may act in every environment (bootstrap admin keys)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as stored.  Timestamps are seconds since the epoch (UTC); 0 means "never".

    `secret_hash` is `vexil.security.apikeys`' self-describing hash string of the current
    secret; `previous_hash` the one it replaced at the last rotation, accepted until
    `previous_expires_at` (the rotation's overlap window)."""

    id: str
    environment: str
    role: str
    secret_hash: str
    created_at: float
    expires_at: float
    created_by: str = ""
    description: str = ""
    last_used_at: float = 0.0
    revoked_at: float = 0.0
    revoked_by: str = ""
    revoked_reason: str = ""
    rotated_at: float = 0.0
    previous_hash: str = ""
    previous_expires_at: float = 0.0
    revision: int = 1

    @property
    def revoked(self) -> bool:
        return self.revoked_at > 0

    def __repr__(self) -> str:  # hashes are not secrets, but they have no business in logs either
        return (
            f"ApiKey(id={self.id!r}, environment={self.environment!r}, role={self.role!r},"
            f" revoked={self.revoked}, revision={self.revision})"
        )


@runtime_checkable
class KeyStore(Protocol):
    """Persistence for API keys (see the module docstring)."""

    name: str

    async def start(self) -> None:
        """Open connections (no table is created here)."""

    async def close(self) -> None:
        """Release connections; idempotent."""

    async def create_key(self, key: ApiKey) -> None:
        """Store a new key; `AlreadyExists` if its id is taken."""

    async def get_key(self, key_id: str) -> ApiKey | None:
        """The key as stored now (read consistently), or None."""

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked and expired ones included, ordered by id."""

    async def replace_key(self, key: ApiKey, *, expected_revision: int) -> ApiKey:
        """Write `key` over the stored one if that is still at `expected_revision` (`Conflict`
        otherwise, `NotFound` if it is gone); returns it with `revision = expected_revision + 1`."""

    async def record_use(self, key_id: str, used_at: float) -> None:
        """Move `last_used_at` forward (never back); best effort, a missing key is ignored."""


class MemoryKeyStore:
    """Keys in a dictionary, for the embedded memory store and tests.

    Every method completes without an `await` in between its read and its write, so on one
    event loop each is atomic (as in `MemoryStore`).  Keys vanish with the process: with the
    memory store the first admin key comes from `VEXIL_BOOTSTRAP_ADMIN_KEY` at every start."""

    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release."""

    async def create_key(self, key: ApiKey) -> None:
        if key.id in self._keys:
            raise ApiKeyAlreadyExists(f"API key {key.id} already exists")
        self._keys[key.id] = replace(key, revision=1)

    async def get_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def list_keys(self) -> list[ApiKey]:
        return [self._keys[k] for k in sorted(self._keys)]

    async def replace_key(self, key: ApiKey, *, expected_revision: int) -> ApiKey:
        current = self._keys.get(key.id)
        if current is None:
            raise ApiKeyNotFound(f"API key {key.id} does not exist")
        if current.revision != expected_revision:
            raise Conflict(
                f"API key {key.id} changed concurrently (revision {current.revision}, not "
                f"{expected_revision}); read it again",
                current_version=current.revision,
            )
        stored = replace(key, revision=expected_revision + 1)
        self._keys[key.id] = stored
        return stored

    async def record_use(self, key_id: str, used_at: float) -> None:
        current = self._keys.get(key_id)
        if current is not None and used_at > current.last_used_at:
            self._keys[key_id] = replace(current, last_used_at=used_at)
