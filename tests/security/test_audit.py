"""Security events are audited - key created/rotated/revoked, authentication failures - and no log
line or audit record the server writes ever holds a key secret or a token.

Two ways: in process with caplog (every record, every logger, DEBUG), and end to end with
`vexil serve` over TLS and the `vexil keys` CLI in subprocesses (the server's stderr, and the
CLI's, which prints a token only once, on stdout, when it is issued).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from tests.support.pki import PkiFiles
from tests.support.secure import Secure, open_secure
from tests.support.servers import VEXIL, ServerProcess
from vexil.security.redaction import CredentialFilter
from vexil.v1 import admin_pb2, evaluation_pb2, keys_pb2

BOOTSTRAP = "vxk_0000000000000b00_" + "Zq9" * 15


def secret_part(token: str) -> str:
    return token.split("_", 2)[2] if token.startswith("vxk_") else token


def leaks(text: str, tokens: list[str]) -> list[str]:
    return [t[:12] + "..." for t in tokens if t in text or secret_part(t) in text]


async def attempt(call: Any) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call


async def test_key_changes_over_grpc_are_audited_with_the_actor_and_its_peer(
    secure: Secure, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vexil.security.audit")
    md = secure.md("root")
    made = await secure.key_service.CreateKey(
        keys_pb2.CreateKeyRequest(role=keys_pb2.ROLE_EVALUATOR), metadata=md
    )
    await secure.key_service.RotateKey(keys_pb2.RotateKeyRequest(id=made.key.id), metadata=md)
    await secure.key_service.RevokeKey(keys_pb2.RevokeKeyRequest(id=made.key.id, reason="test"), metadata=md)
    records = [r.audit for r in caplog.records if r.name == "vexil.security.audit"]  # type: ignore[attr-defined]
    changes = {r["event"]: r for r in records if r.get("key_id") == made.key.id}
    assert sorted(changes) == ["key.created", "key.revoked", "key.rotated"]
    for event, record in changes.items():
        assert record["actor"] == f"key:{secure.tokens['root'][4:20]}", event
        assert record["peer"].startswith("ipv4:127.0.0.1:"), event


async def test_key_operations_and_failures_are_audited_without_secrets(
    pki: PkiFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_file = tmp_path / "jwt"
    secret_file.write_text("j" * 40)
    async with open_secure(
        pki, jwt_secret_file=str(secret_file), jwt_issuer="idp", jwt_audience="vexil"
    ) as server:
        root = await server.issue("admin", "*")
        md = (("authorization", f"Bearer {root}"),)
        made = await server.key_service.CreateKey(
            keys_pb2.CreateKeyRequest(role=keys_pb2.ROLE_EVALUATOR), metadata=md
        )
        rotated = await server.key_service.RotateKey(keys_pb2.RotateKeyRequest(id=made.key.id), metadata=md)
        await server.key_service.RevokeKey(
            keys_pb2.RevokeKeyRequest(id=made.key.id, reason="test"), metadata=md
        )
        now = int(time.time())
        expired_jwt = jwt.encode(
            {
                "iss": "idp",
                "aud": "vexil",
                "sub": "eve",
                "iat": now - 900,
                "exp": now - 600,
                "roles": ["admin"],
            },
            "j" * 40,
            algorithm="HS256",
        )
        forged = made.token[:-3] + "xyz"
        tokens = [root, made.token, rotated.token, expired_jwt, forged]
        request = evaluation_pb2.EvaluateRequest(flag_key="f")
        for token in (made.token, rotated.token, expired_jwt, forged, "Bearer-less garbage"):
            await attempt(
                server.evaluation.Evaluate(request, metadata=(("authorization", f"Bearer {token}"),))
            )
        evaluator = await server.issue("evaluator")
        tokens.append(evaluator)
        await attempt(
            server.admin.ListFlags(
                admin_pb2.ListFlagsRequest(), metadata=(("authorization", f"Bearer {evaluator}"),)
            )
        )
        await server.keys.flush_usage()

    audit = [r for r in caplog.records if r.name == "vexil.security.audit"]
    events = [r.audit["event"] for r in audit]  # type: ignore[attr-defined]
    created = [r.audit for r in audit if r.audit["event"] == "key.created"]  # type: ignore[attr-defined]
    assert any(c["key_id"] == made.key.id and c["actor"] == f"key:{root[4:20]}" for c in created)
    assert "key.rotated" in events and "key.revoked" in events
    failures = [r.getMessage() for r in audit if r.audit["event"] == "auth.failed"]  # type: ignore[attr-defined]
    assert len(failures) >= 6
    assert any(f"key_id={made.key.id}" in f and "API key revoked" in f for f in failures)
    assert any("token expired" in f for f in failures) and any("role too low" in f for f in failures)
    assert all("peer=ipv4:127.0.0.1:" in f for f in failures)
    everything = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {getattr(r, 'audit', '')} {r.exc_text or ''}"
        for r in caplog.records
    )
    assert not leaks(everything, tokens)


def cli(*args: str, token: str, ca: str, target: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VEXIL_TOKEN": token, "VEXIL_CA_CERT": ca, "VEXIL_TARGET": target}
    return subprocess.run([VEXIL, *args], capture_output=True, text=True, timeout=60, env=env)


def ofrep_status(url: str, token: str = "", ca: str = "") -> int:

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def raw_tls(port: int, ca: str, header: bytes) -> bytes:
    """One HTTP/1.1 request over TLS with `header` as raw bytes (no client library sends them)."""
    context = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as conn,
    ):
        conn.sendall(
            b"POST /ofrep/v1/evaluate/flags/f HTTP/1.1\r\nHost: localhost\r\n"
            + header
            + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        return conn.recv(4096)


def test_cli_and_server_over_tls_keep_secrets_out_of_their_logs(pki: PkiFiles, tmp_path: Path) -> None:
    args = ("--tls-cert", pki.server_cert, "--tls-key", pki.server_key, "--log-level", "DEBUG")
    server = ServerProcess(tmp_path, *args, env={"VEXIL_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP}, ca_cert=pki.ca)
    outputs: list[str] = []
    with server:

        def run(*command: str, token: str = BOOTSTRAP) -> subprocess.CompletedProcess[str]:
            result = cli(*command, token=token, ca=pki.ca, target=server.target)
            outputs.append(result.stderr)
            return result

        created = run("keys", "create", "--role", "evaluator", "--description", "web", "--json")
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)
        first = key["token"]
        listed = run("keys", "list", "--json")
        assert listed.returncode == 0 and key["id"] in listed.stdout
        outputs.append(listed.stdout)  # a listing must not show secrets either
        rotated = run("keys", "rotate", key["id"], "--overlap-hours", "0", "--json")
        assert rotated.returncode == 0, rotated.stderr
        second = json.loads(rotated.stdout)["token"]
        assert run("evaluate", "f", token=second).returncode == 0
        assert run("evaluate", "f", token=first).returncode == 5
        assert run("keys", "revoke", key["id"], "--reason", "done").returncode == 0
        refused = run("evaluate", "f", token=second)
        assert refused.returncode == 5 and "UNAUTHENTICATED: API key revoked" in refused.stderr
        assert run("keys", "list", token=second).returncode == 5
        url = f"https://localhost:{server.http_port}/ofrep/v1/evaluate/flags/f"
        assert ofrep_status(url, ca=pki.ca) == 401
        assert ofrep_status(url, second, ca=pki.ca) == 401
        assert ofrep_status(url, BOOTSTRAP, ca=pki.ca) == 404  # allowed; the flag does not exist
        plain = subprocess.run(
            [VEXIL, "flags", "list", "--target", server.target], capture_output=True, text=True, timeout=60
        )
        assert plain.returncode == 6  # a plaintext client cannot talk to the TLS port
        # Headers the HTTP server cannot parse: it logs the line it refused, credential and all.
        for line in (f"Authorization: Bearer {BOOTSTRAP}\x01", f"Authorization: Bearer\r\n {BOOTSTRAP}"):
            answer = raw_tls(server.http_port, pki.ca, line.encode())
            assert b" 400 " in answer.split(b"\r\n", 1)[0], answer[:80]
    log = server.stderr + server.stdout_path.read_text()
    for event in ("key.created", "key.rotated", "key.revoked", "auth.failed"):
        assert event in log
    assert f"key_id={key['id']}" in log
    assert not leaks(log, [BOOTSTRAP, first, second])
    assert not leaks("\n".join(outputs), [BOOTSTRAP, first, second])


def test_bootstrap_with_the_memory_store_prints_a_token_for_the_server(tmp_path: Path) -> None:
    result = subprocess.run(
        [VEXIL, "keys", "create", "--bootstrap", "--store", "memory", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["token"].startswith("vxk_") and "VEXIL_BOOTSTRAP_ADMIN_KEY" in data["hint"]


def test_bootstrap_writes_an_admin_key_straight_to_dynamodb(dynamo_table: tuple[str, str]) -> None:
    from vexil.store.keys_dynamodb import DynamoKeyStore

    endpoint, table = dynamo_table
    result = subprocess.run(
        [
            VEXIL,
            "keys",
            "create",
            "--bootstrap",
            "--store",
            "dynamodb",
            "--table",
            table,
            "--dynamodb-endpoint",
            endpoint,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["environment"] == "*" and data["role"] == "admin"

    async def stored() -> Any:
        store = DynamoKeyStore(table, endpoint_url=endpoint)
        await store.start()
        try:
            return await store.get_key(data["id"])
        finally:
            await store.close()

    key = asyncio.run(stored())
    assert key is not None and key.role == "admin" and key.environment == "*"
    assert secret_part(data["token"]) not in key.secret_hash and "bootstrap" in key.created_by
    assert secret_part(data["token"]) not in result.stderr


async def test_audit_failures_are_sampled_under_a_flood(
    secure: Secure, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vexil.security.audit")
    request = evaluation_pb2.EvaluateRequest(flag_key="f")
    await asyncio.gather(
        *(
            attempt(secure.evaluation.Evaluate(request, metadata=(("authorization", "Bearer nope"),)))
            for _ in range(200)
        )
    )
    written = [r for r in caplog.records if r.name == "vexil.security.audit"]
    assert 1 <= len(written) <= 60  # at most 20 a second (the flood spans at most a couple of seconds)


def test_every_field_stays_on_its_own_line_and_in_its_own_field(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever a field holds (an actor is whatever name the identity provider signed), a record
    is one line, and a value cannot pass for another field."""
    from vexil.security import audit

    caplog.set_level(logging.INFO, logger="vexil.security.audit")
    forged = "jwt:eve\n2026-12-07 00:00:00,000 INFO vexil.security.audit: key.revoked key_id=0f65 actor=key:1"
    audit.key_created("1373", environment="local", role="evaluator", actor=forged, peer="ipv4:127.0.0.1:1")
    audit.key_revoked("1373", reason="incident 42 actor=key:admin", actor="key:abc", peer="")
    created, revoked = (r.getMessage() for r in caplog.records if r.name == "vexil.security.audit")
    assert "\n" not in created and created.endswith("peer=ipv4:127.0.0.1:1"), created
    assert "actor='jwt:eve\\n2026-12-07" in created, created
    assert revoked == "key.revoked key_id=1373 reason='incident 42 actor=key:admin' actor=key:abc", revoked


def test_what_libraries_log_is_redacted_jwts_included() -> None:
    """grpc logs a metadata value it cannot decode ("Invalid encoding on b'Bearer ...'"), JWTs
    included; the filter on the server's log handlers takes the credential out of any record."""
    token = jwt.encode({"sub": "alice", "role": "admin"}, "s" * 32, algorithm="HS256")
    sent = f"Bearer {token}\xff".encode("latin-1")
    record = logging.LogRecord("grpc", logging.ERROR, __file__, 1, "Invalid encoding on %r", (sent,), None)
    CredentialFilter().filter(record)
    assert token not in record.getMessage() and token.split(".")[1] not in record.getMessage()
    assert "Invalid encoding on b'Bearer <redacted>" in record.getMessage(), record.getMessage()
