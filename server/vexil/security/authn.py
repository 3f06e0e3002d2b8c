"""Authentication: from `authorization: Bearer <credential>` to who is calling.

The same code serves gRPC metadata and the OFREP HTTP header.  A bearer credential starting with
`vxk_` is an API key (`keys.KeyManager`), anything else a JWT (`jwt_verifier`), if JWTs are
configured.  Every failure is `Unauthenticated` with vexil's own message (never an echo of the
credential) and leaves an audit record naming the peer, the method and, for API keys, the key id.

An API key this replica has not cached costs a read of the key store (DynamoDB), and a token
with a random key id is never cached: each client address may make this replica read at most
`UNKNOWN_KEY_READS` such keys a second (a burst of `UNKNOWN_KEY_BURST`), so a flood of made-up
tokens is refused (`ResourceExhausted`) instead of becoming a flood of store reads.  A key once
read is cached, so a client presenting its own keys (a gateway, hundreds) stays well within it;
a made-up id is cached as unknown, but re-read once a second, so it is counted every time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from vexil.errors import CredentialsMissing, ResourceExhausted, Unauthenticated
from vexil.identity import Principal
from vexil.security import apikeys, audit
from vexil.security.jwt_verifier import JwtVerifier
from vexil.security.keys import KeyManager
from vexil.security.ratelimit import BucketTable
from vexil.sendable import header_problem
from vexil.store.keys import ALL_ENVIRONMENTS, ApiKey
from vexil.transport.peers import peer_host

AUTHORIZATION = "authorization"
UNKNOWN_KEY_READS = 50.0
"""Key-store reads per second one client address may cause with keys this replica has not cached."""
UNKNOWN_KEY_BURST = 200.0
MAX_CREDENTIAL_BYTES = 8192
MISSING = "missing credentials: send 'authorization: Bearer <API key or JWT>'"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: its principal, and what is needed to re-check it later."""

    principal: Principal
    key_id: str = ""
    matched_hash: str = ""
    """API keys: the stored hash the secret matched (open streams re-check it)."""
    expires_at: float = 0.0
    """JWTs: when the token expires (open streams end then); 0 for API keys."""

    @property
    def client_id(self) -> str:
        """Whom rate limits count against."""
        return self.principal.subject


def bearer(values: Iterable[str]) -> str:
    """The credential of exactly one `Bearer` authorization value; `Unauthenticated` otherwise."""
    found = list(values)
    if not found:
        raise CredentialsMissing(MISSING)
    if len(found) > 1:
        raise Unauthenticated("send exactly one authorization header")
    value = found[0]
    if not isinstance(value, str) or len(value) > MAX_CREDENTIAL_BYTES:
        raise Unauthenticated("authorization header too long or not text")
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("the authorization header must be 'Bearer <credential>'")
    if header_problem(credential.strip()):  # API keys and JWTs are printable ASCII
        raise Unauthenticated("the credential holds characters no API key or JWT has")
    return credential.strip()


class Authenticator:
    def __init__(self, keys: KeyManager, jwt: JwtVerifier | None = None) -> None:
        self.keys = keys
        self.jwt = jwt
        # key id -> (the record and hash it was made from, the identity): an evaluation client
        # calls many times with one key, so its identity is built once per record, not per call.
        # Bounded by the number of valid keys (only verified keys get here).
        self._identities: dict[str, tuple[ApiKey, str, Identity]] = {}
        self._unknown_reads = BucketTable(UNKNOWN_KEY_BURST, UNKNOWN_KEY_READS)
        """Per client address: reads of keys this replica had not cached (module docstring)."""

    async def authenticate(self, values: Iterable[str], *, peer: str, method: str) -> Identity:
        """The identity behind the authorization values of one request (see module docstring)."""
        credential = ""
        try:
            credential = bearer(values)
            if apikeys.looks_like_key(credential):
                return await self._key(credential, peer)
            if self.jwt is None:
                raise Unauthenticated("this server accepts API keys only (vxk_...)")
            return self._jwt(credential)
        except Unauthenticated as exc:
            parsed = apikeys.parse_token(credential) if credential else None
            key_id = parsed.key_id if parsed is not None else ""
            audit.auth_failed(exc.message, peer=peer, method=method, key_id=key_id)
            raise

    async def _key(self, token: str, peer: str) -> Identity:
        def count_read() -> None:  # called only when the key is not cached: never on the hot path
            wait = self._unknown_reads.take(peer_host(peer), time.monotonic())
            if wait:
                seconds = max(1, math.ceil(wait))
                raise ResourceExhausted(
                    f"this client presented more API keys this server does not know than it reads"
                    f" ({UNKNOWN_KEY_READS:g} a second); retry in {seconds} s",
                    retry_after=seconds,
                )

        verified = await self.keys.verify(token, count_read)
        key, matched = verified.key, verified.matched_hash
        known = self._identities.get(key.id)
        if known is not None and known[0] is key and known[1] == matched:
            return known[2]
        environments = None if key.environment == ALL_ENVIRONMENTS else frozenset({key.environment})
        principal = Principal(subject=f"key:{key.id}", role=key.role, environments=environments)
        identity = Identity(principal, key_id=key.id, matched_hash=matched)
        self._identities[key.id] = (key, matched, identity)
        return identity

    def _jwt(self, token: str) -> Identity:
        assert self.jwt is not None
        claims = self.jwt.verify(token)
        principal = Principal(
            subject=f"jwt:{claims.subject}", role=claims.role, environments=claims.environments
        )
        return Identity(principal, expires_at=claims.expires_at)
