"""API key lifecycle (create, rotate, revoke) and the cached lookups that authenticate every call.

Lookups.  Authenticating a call reads the key by id through a `cachetools.TTLCache` (at most 60 s,
`key_cache_ttl`), so the store sees about one read per key per TTL per replica, not one per call.
That TTL is how long a revocation made on another replica can take to arrive; on the replica that
revokes, the cache is updated at once.  A secret the cached record does not accept re-reads the
key (at most once a `RECHECK_SECONDS` per key), so a key created or rotated on another replica
works everywhere at once: only taking access away may wait for the TTL, never granting it.
Unknown ids are cached too (as None), so random tokens cannot turn into a flood of store reads;
concurrent misses for one id share one read.  When the store is unreachable, the last record seen
for a key keeps answering (like the flag snapshots), so a short DynamoDB outage does not log every
client out, but only for `LAST_KNOWN_SECONDS` after it was read: a replica cut off from the table
cannot learn of a revocation made on another one, and must not honour a leaked key for as long as
the cut lasts.  After that the key's calls fail `UNAVAILABLE` until the store answers again.

`last_used_at` is recorded without a write per call: uses are noted in a dict and flushed to the
store every `usage_flush_seconds`, so it is accurate to about a minute.

Changes to a key (rotate, revoke) are reported to `on_change`, which ends the streams that the
change invalidates (`streams.StreamRegistry.recheck`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypedDict

from cachetools import LRUCache, TTLCache

from vexil import identity
from vexil.background import BackgroundTask
from vexil.errors import (
    AlreadyExists,
    ApiKeyNotFound,
    AuthDisabled,
    EnvironmentNotAllowed,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from vexil.model import ENVIRONMENT_PATTERN
from vexil.security import apikeys, audit
from vexil.security.roles import ADMIN, ROLES
from vexil.store.keys import ALL_ENVIRONMENTS, ApiKey, KeyStore

log = logging.getLogger(__name__)


def may_manage(environment: str) -> bool:
    """Whether the calling admin's scope covers keys of `environment`."""
    principal = identity.current_principal.get()
    if principal is None or principal.environments is None:
        return True
    return environment != ALL_ENVIRONMENTS and environment in principal.environments


def key_environment(requested: str, served: Callable[[str], str]) -> str:
    """The environment a new key is for, as the key API and the console read it: '*' (every
    environment) as it is, else a served environment, an empty one meaning the credentials' own.
    `served` is `FlagService.environment` (not served, or out of the caller's scope: refused)."""
    if requested == ALL_ENVIRONMENTS:
        return requested
    if requested and not ENVIRONMENT_PATTERN.fullmatch(requested):
        raise InvalidArgument(f"'{requested[:70]}' is not an environment name (or '*')", "environment")
    return served(requested)


def require_key_scope(environment: str) -> None:
    """PERMISSION_DENIED (reason ENVIRONMENT_NOT_ALLOWED) unless the caller may manage keys of
    `environment`, through either adapter."""
    if not may_manage(environment):
        raise EnvironmentNotAllowed(
            "these credentials may not manage keys of "
            + ("every environment" if environment == ALL_ENVIRONMENTS else f"environment '{environment}'")
        )


AUTH_OFF = (
    "API keys are managed only with authentication on (this server runs open); start it with "
    "auth_mode required (--auth-mode required or VEXIL_AUTH_MODE=required) and a first admin key "
    "from `vexil keys create --bootstrap` (VEXIL_BOOTSTRAP_ADMIN_KEY)"
)


class Author(TypedDict):
    """Who makes a key change, as `KeyManager` records it in the audit trail (each adapter says
    it from its own request: `**author` into `create`, `rotate` and `revoke`)."""

    actor: str
    peer: str


def require_auth(auth_required: bool) -> None:
    """FAILED_PRECONDITION (reason AUTH_DISABLED) when the server runs open: API keys are managed
    only with authentication on, through either adapter."""
    if not auth_required:
        raise AuthDisabled(AUTH_OFF)


DAY = 86400.0
DEFAULT_LIFETIME = 90 * DAY
DEFAULT_MAX_LIFETIME = 365 * DAY
"""The longest lifetime a key may be given (`key_max_lifetime_days`): a leaked key must end."""
DEFAULT_OVERLAP = 86400.0
MAX_CACHE_TTL = 60.0
CACHE_SIZE = 100_000
MAX_DESCRIPTION = 256


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key and its token: the only moment the token exists outside the caller's hands."""

    key: ApiKey
    token: str

    def __repr__(self) -> str:
        return f"IssuedKey(key={self.key!r}, token=***)"


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    key: ApiKey
    matched_hash: str
    """Which stored hash the secret matched; streams re-check that one (rotation cut-off)."""


RECHECK_SECONDS = 1.0
"""Least time between two re-reads of one key for secrets its cached record refuses."""

LAST_KNOWN_SECONDS = 300.0
"""How long after it was read from the store a key's record may stand in for it while the store
is unreachable (see the module docstring): a revocation elsewhere is honoured within this, even
by a replica that cannot reach the table."""


class KeyManager:
    def __init__(
        self,
        store: KeyStore,
        *,
        cache_ttl: float = 30.0,
        lifetime: float = DEFAULT_LIFETIME,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
        overlap: float = DEFAULT_OVERLAP,
        usage_flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < cache_ttl <= MAX_CACHE_TTL:
            raise ValueError(f"cache_ttl must be in (0, {MAX_CACHE_TTL:.0f}] seconds")
        if not 0 < lifetime <= max_lifetime:
            raise ValueError("the default key lifetime must be more than 0 and at most the maximum")
        self.store = store
        self.lifetime = lifetime
        self.max_lifetime = max_lifetime
        self.overlap = overlap
        self.usage_flush_seconds = usage_flush_seconds
        self.clock = clock
        self.on_change: Callable[[ApiKey], None] = lambda key: None
        self._cache: TTLCache[str, ApiKey | None] = TTLCache(CACHE_SIZE, cache_ttl)
        self._read_at: TTLCache[str, float] = TTLCache(CACHE_SIZE, cache_ttl)
        """Key id -> when its cached record was read (`monotonic`), for `_may_recheck`."""
        self._last_known: LRUCache[str, tuple[ApiKey, float]] = LRUCache(CACHE_SIZE)
        """Key id -> its last record read from the store, and when (`monotonic`)."""
        self._stale_until: dict[str, float] = {}
        """Key id -> until when (`monotonic`) its cached record, a last known one served while the
        store is unreachable, may answer: `LAST_KNOWN_SECONDS` after it was read, not a TTL more."""
        self._loading: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._used: dict[str, float] = {}
        self._flusher = BackgroundTask("vexil-key-usage")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        self._flusher.every(self.usage_flush_seconds, self.flush_usage)

    async def stop(self) -> None:
        await self._flusher.stop()
        await self.flush_usage()
        await self.store.close()

    # -- authentication ----------------------------------------------------------------------

    async def verify(self, token: str, before_read: Callable[[], None] | None = None) -> VerifiedKey:
        """The key a token belongs to, if it currently accepts it; `Unauthenticated` otherwise.
        `before_read` is called first when the key is not cached (its lookup may read the
        store), and may refuse by raising (`authn` limits such reads per client).

        The secret is checked before anything about the key is said, so only a holder of a
        (once) valid secret learns that a key is revoked or expired."""
        parsed = apikeys.parse_token(token)
        if parsed is None:
            raise Unauthenticated("malformed API key")
        if before_read is not None and not self.knows(parsed.key_id):
            before_read()
        key = await self.lookup(parsed.key_id)
        matched = apikeys.matching_hash(key, parsed.secret) if key is not None else ""
        if not matched and self._may_recheck(parsed.key_id):
            self._cache.pop(parsed.key_id, None)  # created or rotated elsewhere since it was read?
            key = await self.lookup(parsed.key_id)
            matched = apikeys.matching_hash(key, parsed.secret) if key is not None else ""
        if key is None or not matched:
            raise Unauthenticated("invalid credentials")
        reason = apikeys.rejection(key, matched, self.clock())
        if reason:
            raise Unauthenticated(reason)
        self._used[key.id] = self.clock()
        return VerifiedKey(key, matched)

    def knows(self, key_id: str) -> bool:
        """Whether `key_id` is a key this replica has read and cached: a token for any other id
        (unknown, or known not to exist, which is re-read once a `RECHECK_SECONDS`) may cost a
        store read."""
        return self._cache.get(key_id) is not None

    async def lookup(self, key_id: str) -> ApiKey | None:
        """The key by id, through the cache (see the module docstring)."""
        try:
            cached = self._cache[key_id]
        except KeyError:
            pass
        else:
            if not self._stale_until or time.monotonic() < self._stale_until.get(key_id, math.inf):
                return cached
            del self._cache[key_id]  # a last known record past its time: ask the store again
        loading = self._loading.get(key_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key_id))
            self._loading[key_id] = loading
            loading.add_done_callback(lambda done: self._forget_load(key_id, done))
        return await asyncio.shield(loading)

    def _forget_load(self, key_id: str, done: asyncio.Future[ApiKey | None]) -> None:
        if self._loading.get(key_id) is done:
            del self._loading[key_id]
        if not done.cancelled():
            done.exception()  # mark retrieved: callers that were cancelled never awaited it

    async def _load(self, key_id: str) -> ApiKey | None:
        me = self._loading.get(key_id)
        try:
            key = await self.store.get_key(key_id)
        except Unavailable:
            known = self._last_known.get(key_id)
            if known is None or time.monotonic() - known[1] > LAST_KNOWN_SECONDS:
                raise
            stale = known[0]
            log.warning("key store unavailable; using the last known record of key %s", key_id)
            self._cache[key_id] = stale  # retry the store after a TTL, not on every call
            self._read_at[key_id] = time.monotonic()
            self._stale_until[key_id] = known[1] + LAST_KNOWN_SECONDS
            return stale
        if self._loading.get(key_id) is me:  # a local rotate/revoke meanwhile wins over this read
            self._remember(key_id, key)
        return key

    def _may_recheck(self, key_id: str) -> bool:
        """Whether a secret the cached record refused may re-read the key: not when the record
        was read under `RECHECK_SECONDS` ago (a wrong secret sent in a loop costs one store read
        a second per key id, and a token for an unknown id one read, as before)."""
        read_at = self._read_at.get(key_id)
        return read_at is None or time.monotonic() - read_at >= RECHECK_SECONDS

    def _remember(self, key_id: str, key: ApiKey | None) -> None:
        self._stale_until.pop(key_id, None)
        self._cache[key_id] = key
        self._read_at[key_id] = time.monotonic()
        if key is not None:
            self._last_known[key_id] = (key, time.monotonic())

    # -- management --------------------------------------------------------------------------

    async def create(
        self,
        *,
        environment: str,
        role: str,
        actor: str,
        peer: str = "",
        description: str = "",
        lifetime: float | None = None,
        token: str = "",
    ) -> IssuedKey:
        """A new key; `token` is for bootstrap (a token chosen by the operator), else one is made."""
        check_role(role)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidArgument(f"at most {MAX_DESCRIPTION} characters", "description")
        lifetime = self._lifetime(lifetime)
        if token:
            parsed = apikeys.parse_token(token)
            if parsed is None:
                raise InvalidArgument("not a vexil API key token (vxk_<16 hex>_<secret>)", "token")
            key_id, secret = parsed.key_id, parsed.secret
        else:
            key_id, secret = apikeys.new_key_id(), apikeys.new_secret()
        now = self.clock()
        key = ApiKey(
            id=key_id,
            environment=environment,
            role=role,
            secret_hash=apikeys.hash_secret(secret),
            created_at=now,
            expires_at=now + lifetime,
            created_by=actor,
            description=description,
        )
        await self.store.create_key(key)
        self._remember(key_id, key)
        audit.key_created(key_id, environment=environment, role=role, actor=actor, peer=peer)
        return IssuedKey(key, apikeys.format_token(key_id, secret))

    async def rotate(
        self,
        key_id: str,
        *,
        actor: str,
        peer: str = "",
        overlap: float | None = None,
        lifetime: float | None = None,
    ) -> IssuedKey:
        """A new secret (and a fresh lifetime); the old secret keeps working for `overlap` seconds.

        Only one previous secret is kept: rotating again within the overlap ends the oldest."""
        overlap = self.overlap if overlap is None else overlap
        if overlap < 0:
            raise InvalidArgument("must not be negative", "overlap_seconds")
        key = await self.get(key_id)
        if key.revoked:
            raise InvalidArgument(f"API key {key_id} is revoked; create a new one", "id")
        now = self.clock()
        secret = apikeys.new_secret()
        rotated = replace(
            key,
            secret_hash=apikeys.hash_secret(secret),
            previous_hash=key.secret_hash if overlap > 0 and now < key.expires_at else "",
            previous_expires_at=min(now + overlap, key.expires_at) if overlap > 0 else 0.0,
            rotated_at=now,
            expires_at=now + self._lifetime(lifetime),
        )
        stored = await self.store.replace_key(rotated, expected_revision=key.revision)
        self._changed(stored)
        audit.key_rotated(key_id, overlap_seconds=overlap, actor=actor, peer=peer)
        return IssuedKey(stored, apikeys.format_token(key_id, secret))

    async def revoke(self, key_id: str, *, actor: str, peer: str = "", reason: str = "") -> ApiKey:
        """Revoke at once; revoking a revoked key is a no-op that returns it."""
        if len(reason) > MAX_DESCRIPTION:
            raise InvalidArgument(f"at most {MAX_DESCRIPTION} characters", "reason")
        key = await self.get(key_id)
        if key.revoked:
            self._changed(key)
            return key
        revoked = replace(key, revoked_at=self.clock(), revoked_by=actor, revoked_reason=reason)
        stored = await self.store.replace_key(revoked, expected_revision=key.revision)
        self._changed(stored)
        audit.key_revoked(key_id, reason=reason, actor=actor, peer=peer)
        return stored

    async def get(self, key_id: str) -> ApiKey:
        """The key as stored now (never from the cache: management acts on the truth)."""
        if not apikeys.ID_PATTERN.fullmatch(key_id):
            raise InvalidArgument("an API key id is 16 hexadecimal digits", "id")
        key = await self.store.get_key(key_id)
        if key is None:
            raise ApiKeyNotFound(f"API key {key_id} does not exist")
        return key

    async def list(self) -> list[ApiKey]:
        return await self.store.list_keys()

    async def ensure_bootstrap(self, token: str) -> None:
        """Register the operator's bootstrap admin token unless its key id already exists.

        An existing key (even a revoked one) is left alone: revoking the bootstrap key retires
        it for good on a persistent store, although the variable is still set."""
        parsed = apikeys.parse_token(token)
        if parsed is None:
            raise InvalidArgument("VEXIL_BOOTSTRAP_ADMIN_KEY is not a vexil API key token")
        if await self.store.get_key(parsed.key_id) is not None:
            log.info("bootstrap admin key %s already exists; left as it is", parsed.key_id)
            return
        try:
            await self.create(
                environment=ALL_ENVIRONMENTS,
                role=ADMIN,
                actor="bootstrap",
                description="bootstrap admin key (VEXIL_BOOTSTRAP_ADMIN_KEY)",
                token=token,
            )
        except AlreadyExists:  # another replica registered it first
            return

    def _changed(self, key: ApiKey) -> None:
        self._loading.pop(key.id, None)
        self._remember(key.id, key)
        self.on_change(key)

    def _lifetime(self, lifetime: float | None) -> float:
        """A requested lifetime (None or 0: the default), checked before anything is written."""
        lifetime = self.lifetime if lifetime is None or lifetime == 0 else lifetime
        if not 0 < lifetime <= self.max_lifetime:
            raise InvalidArgument(
                f"a key lives more than 0 and at most {self.max_lifetime:.0f} seconds "
                f"({self.max_lifetime / DAY:g} days, key_max_lifetime_days); 0 means the default, "
                f"{self.lifetime:.0f} seconds",
                "ttl_seconds",
            )
        return lifetime

    # -- last used ---------------------------------------------------------------------------

    async def flush_usage(self) -> None:
        """Write the noted uses to the store (best effort: a failure is logged and dropped)."""
        used, self._used = self._used, {}
        for key_id, at in used.items():
            try:
                await self.store.record_use(key_id, at)
            except Exception as exc:
                log.warning("could not record use of API key %s: %s", key_id, exc)


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidArgument(f"'{role[:40]}' is not a role; use one of {', '.join(ROLES)}", "role")
