"""Fixtures for the security tests: a test-time PKI and real TLS loopback servers with keys.

`secure` is an in-process server with TLS and authentication required, serving `local` and
`beta`, holding one API key per role in `local`, the same in `beta`, and a `root` admin key for
every environment.  `open_secure` starts others with different settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.pki import PkiFiles, make_pki
from tests.support.servers import bearer, running_app, secure_settings, tls_channel
from vexil.app import App
from vexil.security.keys import KeyManager
from vexil.security.roles import ROLES
from vexil.store.keys import KeyStore
from vexil.v1 import admin_pb2_grpc, evaluation_pb2_grpc, keys_pb2_grpc

PRINCIPALS = ("evaluator", "editor", "admin")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@dataclass
class Secure:
    """A running TLS server with authentication, a TLS channel to it and tokens by name."""

    app: App
    channel: grpc.aio.Channel
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    @property
    def keys(self) -> KeyManager:
        return self.app.security.keys

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.channel)

    @property
    def evaluation(self) -> evaluation_pb2_grpc.EvaluationServiceStub:
        return evaluation_pb2_grpc.EvaluationServiceStub(self.channel)

    @property
    def key_service(self) -> keys_pb2_grpc.KeyServiceStub:
        return keys_pb2_grpc.KeyServiceStub(self.channel)

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        """Metadata for the named credential ("anonymous": none)."""
        return () if who == "anonymous" else bearer(self.tokens[who])

    async def issue(self, role: str, environment: str = "local", **kwargs: Any) -> str:
        return (await self.keys.create(environment=environment, role=role, actor="test", **kwargs)).token


@contextlib.asynccontextmanager
async def open_secure(
    pki: PkiFiles, *, key_store: KeyStore | None = None, mtls: bool = False, **overrides: Any
) -> AsyncIterator[Secure]:
    values: dict[str, Any] = {"environments": "local,beta", "heartbeat_seconds": 0.5}
    values.update(overrides)
    async with (
        running_app(secure_settings(pki, mtls=mtls, **values), key_store=key_store) as app,
        tls_channel(f"127.0.0.1:{app.port}", pki, client_cert=mtls) as channel,
    ):
        yield Secure(app, channel)


@pytest.fixture
async def secure(pki: PkiFiles) -> AsyncIterator[Secure]:
    async with open_secure(pki) as server:
        for role in ROLES:
            server.tokens[role] = await server.issue(role)
            server.tokens[f"beta-{role}"] = await server.issue(role, "beta")
        server.tokens["root"] = await server.issue("admin", "*")
        yield server
