"""API key tokens: their format, how their secrets are hashed, and when a stored key accepts one.

A token is `vxk_<id>_<secret>`: `id` is 16 hex digits (public: it names the key in listings, logs
and audit records), `secret` 32 random bytes in URL-safe base64.  Carrying the id lets the server
find the key with one point read instead of hashing against every stored key.

Hashing.  The store keeps `hmac-sha256$<salt>$<digest>`: HMAC-SHA256 keyed with a per-key random
salt.  Why not a slow password hash (scrypt, argon2): those exist to make guessing *low-entropy*
passwords expensive.  A 256-bit random secret cannot be guessed at any hashing speed, so a slow
hash would only cost CPU on every authenticated call (or force caching plaintext secrets in
memory) without adding security.  The salt still makes every stored hash unique, so equal
secrets (there are none, but a bootstrap token reused across deployments) never show as equal
hashes, and the prefix leaves room to change the scheme later.  Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from vexil.store.keys import ApiKey

PREFIX = "vxk_"
SCHEME = "hmac-sha256"
TOKEN_PATTERN = re.compile(r"vxk_([0-9a-f]{16})_([A-Za-z0-9_\-]{32,128})")
ID_PATTERN = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class ParsedToken:
    key_id: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"ParsedToken(key_id={self.key_id!r}, secret=***)"


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def format_token(key_id: str, secret: str) -> str:
    return f"{PREFIX}{key_id}_{secret}"


def new_token() -> tuple[str, str]:
    """A fresh `(key_id, token)`."""
    key_id = new_key_id()
    return key_id, format_token(key_id, new_secret())


def parse_token(token: str) -> ParsedToken | None:
    """The id and secret of a well-formed token, None for anything else."""
    match = TOKEN_PATTERN.fullmatch(token)
    return ParsedToken(match.group(1), match.group(2)) if match else None


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (as opposed to a JWT)."""
    return token.startswith(PREFIX)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.digest(salt, secret.encode(), hashlib.sha256)
    return f"{SCHEME}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    """Constant-time check of `secret` against a stored hash string (False if malformed)."""
    scheme, _, rest = stored.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    if scheme != SCHEME or not salt_hex or not digest_hex:
        return False
    try:
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    return hmac.compare_digest(hmac.digest(salt, secret.encode(), hashlib.sha256), expected)


def matching_hash(key: ApiKey, secret: str) -> str:
    """Which of the key's stored hashes (current or previous) `secret` matches, "" if neither.

    Both are always checked, so timing does not tell which one matched."""
    current = secret_matches(secret, key.secret_hash)
    previous = bool(key.previous_hash) and secret_matches(secret, key.previous_hash)
    if current:
        return key.secret_hash
    return key.previous_hash if previous else ""


def rejection(key: ApiKey, matched_hash: str, now: float) -> str:
    """Why a key no longer accepts the secret that matched `matched_hash`, "" if it does.

    Used at every authentication and again for open streams, so a stream opened with a secret
    that is later revoked, expires or is rotated out ends just like a new call would fail."""
    if key.revoked:
        return "API key revoked"
    if now >= key.expires_at:
        return "API key expired"
    if matched_hash and matched_hash == key.secret_hash:
        return ""
    if matched_hash and matched_hash == key.previous_hash:
        if now < key.previous_expires_at:
            return ""
        return "API key secret was rotated out; use the new secret"
    return "invalid credentials"
