"""Real TLS servers with authentication for the security tests, and ways to drive them.

`open_secure` starts an in-process server with TLS and authentication required, serving `local`
and `beta`; `Secure` holds it, a TLS channel to it and tokens by name.  `freeze` gives a server's
rate limiter a clock the test moves by hand.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from tests.support.pki import PkiFiles
from tests.support.servers import bearer, running_app, secure_settings, tls_channel
from vexil.app import App
from vexil.security.keys import KeyManager
from vexil.store.keys import KeyStore
from vexil.v1 import admin_pb2_grpc, evaluation_pb2_grpc, keys_pb2_grpc


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


class Clock:
    """A clock the test moves by hand: no refill happens unless the test says so."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def freeze(server: Secure) -> Clock:
    clock = Clock()
    limiter = server.app.security.limiter
    assert limiter is not None
    limiter.clock = clock
    return clock


async def code_of(call: Any) -> tuple[grpc.StatusCode, dict[str, str]]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), dict(exc.trailing_metadata() or ())
    return grpc.StatusCode.OK, {}
