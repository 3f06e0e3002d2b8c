"""Real vexil servers for the client tests, on an event loop of their own.

The blocking `Client` would deadlock against a server running on the test's own loop (its calls
block the thread that loop needs), so these servers run on a background loop thread; the tests
talk to them over loopback gRPC like any other process would.  Several `App`s can share one
`MemoryStore`, which models replicas of one database (the store is only ever touched from the
one server loop, as it requires).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
from google.protobuf import struct_pb2

from tests.support.servers import server_settings
from vexil.app import App
from vexil.client import RetryPolicy
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc, flag_pb2

T = TypeVar("T")

# Reconnect within tens of milliseconds, and allow loaded CI machines a generous deadline (the
# deadline itself is tested against a server that answers late on purpose).
FAST: dict[str, Any] = {
    "retry": RetryPolicy(initial_backoff=0.02, max_backoff=0.2),
    "deadline": 5.0,
}


class LoopThread:
    """An asyncio loop on a daemon thread; `run` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop (not closed: grpc's poller may still hold it until the process exits)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class Replica:
    """One in-process server (`App`) on the loop thread, restartable on the same port."""

    def __init__(self, loop: LoopThread, store: MemoryStore, port: int = 0, **settings: Any) -> None:
        self.loop = loop
        self.store = store
        self.settings = settings
        self.port = port
        self.app: App | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Replica:
        overrides = dict(self.settings)
        if self.port:
            overrides["port"] = self.port
        settings = server_settings(**overrides)

        async def start() -> App:
            app = App(settings, self.store)  # grpc.aio binds the server to the loop it is built on
            await app.start()
            return app

        self.app = self.loop.run(start())
        self.port = self.app.port
        return self

    def stop(self) -> None:
        """Graceful shutdown: streams end UNAVAILABLE (clients reconnect) before the port closes."""
        if self.app is not None:
            self.loop.run(self.app.stop(grace=0.5))
            self.app = None

    def kill(self) -> None:
        """Abrupt shutdown, as when the process dies: every in-flight call is cut at once."""
        if self.app is not None:
            app = self.app

            async def kill() -> None:
                await app.server.stop(None)  # None: abort every RPC now, no grace
                await app.stop(grace=0)

            self.loop.run(kill())
            self.app = None


class Admin:
    """Blocking admin calls to one server (what an operator or the CLI would do)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.evaluation = evaluation_pb2_grpc.EvaluationServiceStub(self.channel)

    def create(self, flag: flag_pb2.Flag, reason: str = "") -> int:
        return self.stub.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag, reason=reason), timeout=10
        ).config_version

    def update(self, flag: flag_pb2.Flag, reason: str = "") -> int:
        return self.stub.UpdateFlag(
            admin_pb2.UpdateFlagRequest(flag=flag, reason=reason), timeout=10
        ).config_version

    def delete(self, key: str) -> int:
        return self.stub.DeleteFlag(admin_pb2.DeleteFlagRequest(key=key), timeout=10).config_version

    def kill_environment(self, killed: bool) -> int:
        request = admin_pb2.SetKillSwitchRequest(killed=killed, reason="test")
        return self.stub.SetKillSwitch(request, timeout=10).config_version

    def evaluators(self, evaluators: Mapping[str, Any]) -> int:
        request = admin_pb2.UpdateEnvironmentRequest(evaluators=struct(evaluators))
        return self.stub.UpdateEnvironment(request, timeout=10).config_version

    def close(self) -> None:
        self.channel.close()


def struct(obj: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(obj))
    return out


@contextmanager
def replica(loop: LoopThread, store: MemoryStore | None = None, **settings: Any) -> Iterator[Replica]:
    server = Replica(loop, store if store is not None else MemoryStore(), **settings).start()
    try:
        yield server
    finally:
        server.stop()


class FakeEvaluation(evaluation_pb2_grpc.EvaluationServiceServicer):
    """A stand-in server that misbehaves on purpose: refuses with a status, or answers late.

    It records the metadata of every call so tests can check what the client sends.
    """

    def __init__(
        self,
        code: grpc.StatusCode | None = None,
        delay: float = 0.0,
        *,
        heartbeat: float = 0.0,
        heartbeats: bool = True,
    ) -> None:
        """`heartbeat`: the interval Watch states (`heartbeat_ms`) and, with `heartbeats`, keeps."""
        self.code = code
        self.delay = delay
        self.heartbeat = heartbeat
        self.heartbeats = heartbeats
        self.metadata: list[dict[str, str]] = []
        self.watches: list[float] = []
        """When each Watch call came (`time.monotonic()`)."""

    async def _gate(self, context: grpc.aio.ServicerContext) -> None:
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.code is not None:
            await context.abort(self.code, f"refused by the fake server ({self.code.name})")

    async def Evaluate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._gate(context)
        return evaluation_pb2.EvaluateResponse(
            flag_key=request.flag_key,
            bool_value=True,
            variant="on",
            reason=evaluation_pb2.REASON_STATIC,
            flag_version=7,
            config_version=9,
        )

    async def EvaluateAll(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._gate(context)
        return evaluation_pb2.EvaluateAllResponse(config_version=9)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.watches.append(time.monotonic())
        await self._gate(context)
        stated = round(self.heartbeat * 1000)
        WatchEvent = evaluation_pb2.WatchEvent
        yield WatchEvent(type=WatchEvent.TYPE_SNAPSHOT, config_version=9, heartbeat_ms=stated)
        if not (self.heartbeat and self.heartbeats):
            await asyncio.sleep(3600)
        for _ in range(3600):
            await asyncio.sleep(self.heartbeat)
            yield WatchEvent(type=WatchEvent.TYPE_HEARTBEAT, config_version=9, heartbeat_ms=stated)


class FakeServer:
    """A `FakeEvaluation` listening on loopback (plaintext, or TLS with the given key pair)."""

    def __init__(
        self, loop: LoopThread, servicer: FakeEvaluation, tls: tuple[bytes, bytes] | None = None
    ) -> None:
        self.loop = loop
        self.servicer = servicer

        async def start() -> tuple[grpc.aio.Server, int]:
            server = grpc.aio.server()
            evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
            if tls is None:
                port = server.add_insecure_port("127.0.0.1:0")
            else:
                creds = grpc.ssl_server_credentials([(tls[0], tls[1])])
                port = server.add_secure_port("127.0.0.1:0", creds)
            await server.start()
            return server, port

        self.server, self.port = loop.run(start())

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loop.run(self.server.stop(0))


def self_signed(host: str = "localhost") -> tuple[bytes, bytes]:
    """A throw-away (key PEM, certificate PEM) for `host` and 127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until true or `timeout` (returns its last value)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)
