"""JWTs for admins: verified against one configured key, with one algorithm per key.

Key sources (exactly one): a shared secret (HS256), a PEM public key (RS256 for RSA, ES256 for
P-256), or a JWKS file (RSA and P-256 keys, chosen by `kid`).  The algorithm comes from the key,
never from the token: a token whose header names another algorithm is refused before its
signature is looked at.  That closes `alg: none` and algorithm confusion (an RS256 public key
used as an HS256 secret) regardless of the library's own defences, which stay on as well.

Claims: `exp`, `iat`, `iss`, `aud` and `sub` are required; `exp` may be at most one hour after
`iat` (longer-lived tokens are refused, however well signed); `iss` and `aud` must match the
configuration; `nbf` is honoured.  `roles` (a list, the highest known one counts) or `role`
give the role; `environments` (a list of names, or `"*"` for all) the scope; a token without
`environments` may touch none.  Clock skew tolerance (`leeway`) is small and configurable.

Messages are vexil's own and never repeat the token or any claim taken from it unverified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from vexil.errors import Unauthenticated
from vexil.security.roles import highest
from vexil.store.keys import ALL_ENVIRONMENTS

MAX_LIFETIME = 3600
MIN_SECRET_BYTES = 32
MAX_TOKEN_BYTES = 8192


class JwtConfigError(ValueError):
    """The configured key material cannot be used (said at start-up, naming the setting)."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    role: str
    environments: frozenset[str] | None
    """None: every environment."""
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Key:
    key: Any
    algorithm: str


def _algorithm_for(public_key: Any, where: str) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise JwtConfigError(f"{where}: RSA keys must have at least 2048 bits")
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise JwtConfigError(f"{where}: only P-256 EC keys (ES256) are supported")
        return "ES256"
    raise JwtConfigError(f"{where}: use an RSA (RS256) or P-256 EC (ES256) public key")


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise JwtConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def load_public_key(path: str) -> _Key:
    try:
        key = serialization.load_pem_public_key(_read(path, "jwt_public_key"))
    except ValueError:
        raise JwtConfigError(f"jwt_public_key: {path} is not a PEM public key") from None
    return _Key(key, _algorithm_for(key, "jwt_public_key"))


def load_jwks(path: str) -> dict[str, _Key]:
    """Keys of a JWKS file by `kid` ("" for a single key without one)."""
    try:
        data = json.loads(_read(path, "jwt_jwks_file"))
        entries = data["keys"]
        jwks = [(entry, jwt.PyJWK(entry)) for entry in entries]
    except (ValueError, KeyError, TypeError, jwt.PyJWKError, jwt.InvalidKeyError) as exc:
        raise JwtConfigError(f"jwt_jwks_file: {path} is not a usable JWKS: {exc}") from None
    keys: dict[str, _Key] = {}
    for entry, jwk in jwks:
        algorithm = _algorithm_for(jwk.key, f"jwt_jwks_file {path}")
        declared = entry.get("alg")
        if declared and declared != algorithm:
            raise JwtConfigError(
                f"jwt_jwks_file: key {jwk.key_id!r} declares {declared}, expected {algorithm}"
            )
        keys[jwk.key_id or ""] = _Key(jwk.key, algorithm)
    if not keys:
        raise JwtConfigError(f"jwt_jwks_file: {path} holds no keys")
    if len(keys) > 1 and "" in keys:
        raise JwtConfigError("jwt_jwks_file: with several keys, every key needs a 'kid'")
    return keys


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        secret: str = "",
        public_key_file: str = "",
        jwks_file: str = "",
        leeway: float = 30.0,
        max_lifetime: int = MAX_LIFETIME,
    ) -> None:
        sources = [s for s in (secret, public_key_file, jwks_file) if s]
        if len(sources) != 1:
            raise JwtConfigError("configure exactly one of jwt_secret, jwt_public_key, jwt_jwks_file")
        if not issuer or not audience:
            raise JwtConfigError("jwt_issuer and jwt_audience are required with JWT authentication")
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise JwtConfigError(f"jwt_secret: use at least {MIN_SECRET_BYTES} bytes (HS256 key strength)")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        if secret:
            self._keys = {"": _Key(secret.encode(), "HS256")}
        elif public_key_file:
            self._keys = {"": load_public_key(public_key_file)}
        else:
            self._keys = load_jwks(jwks_file)

    def _key_for(self, header: dict[str, Any]) -> _Key:
        kid = header.get("kid")
        if len(self._keys) == 1 and "" in self._keys:
            return self._keys[""]
        if not isinstance(kid, str) or kid not in self._keys:
            raise Unauthenticated("token signed with an unknown key")
        return self._keys[kid]

    def verify(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        key = self._key_for(header)
        if header.get("alg") != key.algorithm:
            raise Unauthenticated(f"token algorithm not allowed (this server accepts {key.algorithm})")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature invalid") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated("invalid token") from None
        return self._claims(claims)

    def _claims(self, claims: dict[str, Any]) -> Claims:
        exp, iat, sub = claims.get("exp"), claims.get("iat"), claims.get("sub")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise Unauthenticated("token 'exp' and 'iat' must be numbers")
        if exp - iat > self.max_lifetime:
            raise Unauthenticated(f"token lifetime exceeds {self.max_lifetime} s; issue shorter-lived tokens")
        if not isinstance(sub, str) or not sub or len(sub) > 256 or not _is_plain_name(sub):
            raise Unauthenticated("token 'sub' must be a non-empty string of at most 256 characters")
        role = highest(claims.get("roles", claims.get("role")))
        scope = claims.get("environments")
        environments: frozenset[str] | None
        if scope == ALL_ENVIRONMENTS or (isinstance(scope, list) and ALL_ENVIRONMENTS in scope):
            environments = None
        elif isinstance(scope, list):
            environments = frozenset(e for e in scope if isinstance(e, str))
        else:
            environments = frozenset()
        return Claims(subject=sub, role=role, environments=environments, expires_at=float(exp))


def _is_plain_name(text: str) -> bool:
    """The subject names the author of every change it makes: text that is not Unicode (a lone
    surrogate, which JSON escapes can spell) could not be stored or sent back, and a control
    character (a line break) has no place in a name that logs and tables print."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()
