"""Admin JWTs: HS256 over a real TLS server, RS256/ES256/JWKS and the attacks (expired, too long
lived, tampered, `alg: none`, algorithm confusion, wrong issuer/audience/environment)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.pki import PkiFiles
from tests.support.secure import Secure, open_secure
from vexil.errors import Unauthenticated
from vexil.security.authn import Authenticator
from vexil.security.jwt_verifier import JwtConfigError, JwtVerifier
from vexil.security.keys import KeyManager
from vexil.store.keys import MemoryKeyStore
from vexil.v1 import admin_pb2, keys_pb2

ISSUER = "https://idp.example.test"
AUDIENCE = "vexil"
SECRET = "an-hs256-shared-secret-of-at-least-32-bytes!"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
        "environments": ["local"],
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, as an attacker would: any header, an HMAC signature (or none)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


@pytest.fixture
async def jwt_server(pki: PkiFiles, tmp_path: Path) -> AsyncIterator[Secure]:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(SECRET + "\n")
    async with open_secure(
        pki, jwt_secret_file=str(secret_file), jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_clock_skew=5
    ) as server:
        yield server


async def status_of(server: Secure, token: str, call: str = "ListFlags", **fields: Any) -> tuple[str, str]:
    md = (("authorization", f"Bearer {token}"),)
    request = getattr(admin_pb2, f"{call}Request")(**fields)
    try:
        await getattr(server.admin, call)(request, metadata=md)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


async def test_valid_tokens_act_with_their_role_and_environments(jwt_server: Secure) -> None:
    assert await status_of(jwt_server, hs256()) == ("OK", "")
    assert (await status_of(jwt_server, hs256(), environment="beta"))[0] == "PERMISSION_DENIED"
    assert await status_of(jwt_server, hs256(environments="*"), environment="beta") == ("OK", "")
    editor = hs256(roles=["evaluator", "editor"])
    assert await status_of(jwt_server, editor) == ("OK", "")
    assert (await status_of(jwt_server, editor, "SetKillSwitch", killed=False))[0] == "PERMISSION_DENIED"
    assert (await status_of(jwt_server, hs256(roles=None, role="admin"), "SetKillSwitch", killed=False))[
        0
    ] == "OK"
    assert (await status_of(jwt_server, hs256(roles=["owner"])))[0] == "PERMISSION_DENIED"
    assert (await status_of(jwt_server, hs256(environments=None)))[0] == "PERMISSION_DENIED"
    # A JWT admin creates keys; the actor recorded is the token's subject.
    made = await jwt_server.key_service.CreateKey(
        keys_pb2.CreateKeyRequest(role=keys_pb2.ROLE_EVALUATOR),
        metadata=(("authorization", f"Bearer {hs256()}"),),
    )
    assert made.key.created_by == "jwt:alice" and made.key.environment == "local"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: hs256(exp=int(time.time()) - 60), "token expired"),
        (lambda: hs256(exp=int(time.time()) + 3700), "lifetime exceeds 3600"),
        (lambda: hs256(exp=None), "lacks the 'exp' claim"),
        (lambda: hs256(iat=None), "lacks the 'iat' claim"),
        (lambda: hs256(iat=int(time.time()) + 120, exp=int(time.time()) + 600), "not valid yet"),
        (lambda: hs256(nbf=int(time.time()) + 120), "not valid yet"),
        (lambda: hs256(iss="https://evil.example"), "issuer not accepted"),
        (lambda: hs256(aud="someone-else"), "audience not accepted"),
        (
            lambda: jwt.encode(claims(), "another-secret-that-is-also-32-bytes-long", algorithm="HS256"),
            "signature",
        ),
        (lambda: forged({"alg": "none", "typ": "JWT"}, claims(), None), "algorithm not allowed"),
        (lambda: forged({"alg": "HS512", "typ": "JWT"}, claims(), SECRET.encode()), "algorithm not allowed"),
        (lambda: "not.a.jwt", "malformed token"),
        (lambda: "e30.e30.e30", "algorithm not allowed"),
        # JSON escapes can spell a lone surrogate; the subject is every change's recorded author.
        (lambda: hs256(sub="ops-\ud800"), "'sub' must be a non-empty string"),
        (lambda: hs256(sub="x" * 257), "at most 256 characters"),
        # A line break in the author's name would let it write audit lines of its own.
        (lambda: hs256(sub="eve\n2026-12-07 INFO vexil.security.audit: key.revoked"), "'sub' must be"),
    ],
    ids=[
        "expired",
        "too-long-lived",
        "no-exp",
        "no-iat",
        "iat-future",
        "nbf-future",
        "issuer",
        "audience",
        "other-key",
        "alg-none",
        "alg-switch",
        "garbage",
        "empty-json",
        "sub-not-unicode",
        "sub-too-long",
        "sub-with-a-line-break",
    ],
)
async def test_refused_tokens(jwt_server: Secure, token: Any, message: str) -> None:
    code, details = await status_of(jwt_server, token())
    assert code == "UNAUTHENTICATED" and message in details


async def test_a_tampered_token_is_refused(jwt_server: Secure) -> None:
    header, payload, signature = hs256(roles=["evaluator"]).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["roles"] = ["admin"]
    tampered = f"{header}.{b64(json.dumps(body).encode())}.{signature}"
    assert await status_of(jwt_server, tampered) == ("UNAUTHENTICATED", "token signature invalid")


async def test_small_clock_skew_is_tolerated(jwt_server: Secure) -> None:
    now = int(time.time())
    assert (await status_of(jwt_server, hs256(iat=now + 3, exp=now + 600)))[0] == "OK"
    assert (await status_of(jwt_server, hs256(iat=now - 600, exp=now - 2)))[0] == "OK"
    assert (await status_of(jwt_server, hs256(iat=now - 600, exp=now - 30)))[0] == "UNAUTHENTICATED"


# -- asymmetric keys and JWKS (unit level: the same verifier the server builds) --------------------


def pem_public(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def verifier(**kwargs: Any) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, **kwargs)


def test_rs256_with_a_public_key_and_algorithm_confusion(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    public = tmp_path / "rsa.pem"
    public.write_bytes(pem_public(rsa_key))
    rs = verifier(public_key_file=str(public))
    assert rs.verify(jwt.encode(claims(), rsa_key, algorithm="RS256")).role == "admin"
    # The classic confusion attack: HS256 "signed" with the server's own public key as the secret.
    with pytest.raises(Unauthenticated, match="algorithm not allowed"):
        rs.verify(forged({"alg": "HS256", "typ": "JWT"}, claims(), pem_public(rsa_key)))
    with pytest.raises(Unauthenticated, match="algorithm not allowed"):
        rs.verify(forged({"alg": "none"}, claims(), None))
    with pytest.raises(Unauthenticated, match="algorithm not allowed"):
        rs.verify(jwt.encode(claims(), rsa_key, algorithm="PS256"))


def test_es256_keys_from_a_jwks_file_by_kid(tmp_path: Path) -> None:
    keys = {kid: ec.generate_private_key(ec.SECP256R1()) for kid in ("k1", "k2")}
    jwks = {"keys": []}
    for kid, key in keys.items():
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwks["keys"].append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    es = verifier(jwks_file=str(path))
    for kid, key in keys.items():
        token = jwt.encode(claims(sub=kid), key, algorithm="ES256", headers={"kid": kid})
        assert es.verify(token).subject == kid
    stray = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthenticated, match="unknown key"):
        es.verify(jwt.encode(claims(), stray, algorithm="ES256", headers={"kid": "k3"}))
    with pytest.raises(Unauthenticated, match="signature"):
        es.verify(jwt.encode(claims(), stray, algorithm="ES256", headers={"kid": "k1"}))
    with pytest.raises(Unauthenticated, match="unknown key"):
        es.verify(jwt.encode(claims(), keys["k1"], algorithm="ES256"))


def test_unusable_key_material_is_refused_at_start(tmp_path: Path) -> None:
    weak = tmp_path / "weak.pem"
    weak.write_bytes(pem_public(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(pem_public(ec.generate_private_key(ec.SECP384R1())))
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    for kwargs, message in (
        ({"public_key_file": str(weak)}, "2048 bits"),
        ({"public_key_file": str(p384)}, "P-256"),
        ({"jwks_file": str(garbage)}, "RSA .* or P-256"),
        ({"secret": "short"}, "at least 32 bytes"),
        ({}, "exactly one"),
        ({"secret": SECRET, "jwks_file": str(garbage)}, "exactly one"),
    ):
        with pytest.raises(JwtConfigError, match=message):
            verifier(**kwargs)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer \udcff\udcfe",  # bytes that are not UTF-8, as an HTTP server hands them on
        "Bearer eyJ\u00e9.x.y",  # a non-ASCII letter
        "Bearer a\x01b",
    ],
)
async def test_a_credential_no_api_key_or_jwt_can_be_is_refused_as_such(value: str) -> None:
    """An `Authorization` value that is not printable ASCII reached the JWT library, which could
    not encode it: HTTP 500 with a traceback on OFREP, /metrics and /readyz, and no audit record."""
    authenticator = Authenticator(KeyManager(MemoryKeyStore()), verifier(secret=SECRET))
    with pytest.raises(Unauthenticated, match="characters no API key or JWT has"):
        await authenticator.authenticate([value], peer="ipv4:127.0.0.1:1", method="/x")
