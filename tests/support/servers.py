"""Real vexil servers for tests: in-process on a loopback port, or as a `vexil serve` subprocess.

In-process servers run on the test's own event loop (the fastest way to drive many scenarios);
subprocess servers are for what only a separate process can show: signals, memory, the CLI,
several replicas.  Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.pki import PkiFiles
from tests.support.processes import terminate
from vexil import config
from vexil.app import App
from vexil.store.base import FlagStore
from vexil.store.keys import KeyStore
from vexil.v1 import admin_pb2_grpc, evaluation_pb2_grpc

VEXIL = str(Path(sys.executable).with_name("vexil"))


_GIVEN: set[int] = set()
"""Ports `free_port` has handed out in this process: the kernel may offer a released one again,
and two listeners of one test (a gRPC and an HTTP port) must not be given the same."""


def free_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
    raise RuntimeError("no loopback port this process has not handed out already")


def server_settings(**overrides: Any) -> config.Settings:
    """Settings for a test server: loopback, any free port, a fast change feed."""
    values: dict[str, Any] = {
        "port": free_port(),
        "http_port": free_port(),
        "poll_interval": 0.2,
        "heartbeat_seconds": 15.0,
        "drain_seconds": 0.0,
    }
    values.update(overrides)
    return config.load(cli=values, environ={})


@dataclass
class Connected:
    """A running in-process server and aio stubs on one loopback channel to it."""

    app: App
    channel: grpc.aio.Channel
    admin: admin_pb2_grpc.AdminServiceStub
    evaluation: evaluation_pb2_grpc.EvaluationServiceStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"


@contextlib.asynccontextmanager
async def connected(app: App) -> AsyncIterator[Connected]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield Connected(
            app,
            channel,
            admin_pb2_grpc.AdminServiceStub(channel),
            evaluation_pb2_grpc.EvaluationServiceStub(channel),
        )


@contextlib.asynccontextmanager
async def running_app(
    settings: config.Settings, store: FlagStore | None = None, key_store: KeyStore | None = None
) -> AsyncIterator[App]:
    app = App(settings, store, key_store)
    try:
        await app.start()
        yield app
    finally:
        await app.stop(grace=1.0)


def secure_settings(pki: PkiFiles, *, mtls: bool = False, **overrides: Any) -> config.Settings:
    """`server_settings` with TLS (mutual TLS with `mtls`) and authentication required."""
    values: dict[str, Any] = {"tls_cert": pki.server_cert, "tls_key": pki.server_key, "auth_mode": "required"}
    if mtls:
        values["tls_client_ca"] = pki.ca
    values.update(overrides)
    return server_settings(**values)


def tls_channel(target: str, pki: PkiFiles, *, client_cert: bool = False) -> grpc.aio.Channel:
    """An aio channel that trusts the test CA (and presents the test client certificate)."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read("ca"),
        private_key=pki.read("client_key") if client_cert else None,
        certificate_chain=pki.read("client_cert") if client_cert else None,
    )
    return grpc.aio.secure_channel(target, credentials)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token` the way every vexil client sends it."""
    return (("authorization", f"Bearer {token}"),)


def wait_serving(
    target: str, timeout: float = 20.0, proc: subprocess.Popen | None = None, ca_cert: str = ""
) -> None:
    """Block until the server's gRPC health says SERVING (bounded); over TLS when given a CA."""
    deadline = time.monotonic() + timeout
    if ca_cert:
        credentials = grpc.ssl_channel_credentials(Path(ca_cert).read_bytes())
        opened = grpc.secure_channel(target, credentials)
    else:
        opened = grpc.insecure_channel(target)
    with opened as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited early with {proc.returncode}")
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{target} not SERVING after {timeout} s")


class ServerProcess:
    """`vexil serve` in a subprocess; stdout/stderr captured to files for assertions."""

    def __init__(
        self,
        tmp: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        ca_cert: str = "",
        open_files: tuple[int, int] | None = None,
    ) -> None:
        """`ca_cert`: the server speaks TLS (its args say so) and health is checked trusting it.
        `open_files`: the (soft, hard) limit on open files the server starts with."""
        self.ca_cert = ca_cert
        self.open_files = open_files
        self.port = port or free_port()
        self.http_port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.stdout_path = tmp / f"server-{self.port}.out"
        self.stderr_path = tmp / f"server-{self.port}.err"
        self.args = [VEXIL, "serve", "--port", str(self.port), "--http-port", str(self.http_port)]
        self.args += ["--host", "127.0.0.1", *args]
        # No drain window unless a test asks for one (`--drain-seconds`): stopping stays fast.
        self.env = {"VEXIL_DRAIN_SECONDS": "0", **os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.launch()
        return self.wait_serving(timeout)

    def launch(self) -> ServerProcess:
        """Start the process, not waiting for it to serve (`wait_serving`)."""
        self.proc = subprocess.Popen(
            self.args,
            stdout=self.stdout_path.open("w"),
            stderr=self.stderr_path.open("w"),
            env=self.env,
            preexec_fn=self._limit_open_files if self.open_files else None,
        )
        return self

    def wait_serving(self, timeout: float = 30.0) -> ServerProcess:
        wait_serving(self.target, timeout, self.proc, self.ca_cert)
        return self

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 15.0)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def started_together(*servers: ServerProcess, timeout: float = 30.0) -> Iterator[tuple[ServerProcess, ...]]:
    """Every server started at once, so their start-ups overlap (three replicas took 3.4 s one
    after the other on two cores, 1.4-2.6 s together), then each waited for; all stopped after."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_serving(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


def dynamodb_replica(tmp: Path, endpoint: str, table: str, *extra: str) -> ServerProcess:
    """A `vexil serve` replica on the DynamoDB table `table` at `endpoint` (the emulator)."""
    return ServerProcess(
        tmp, "--store", "dynamodb", "--dynamodb-endpoint", endpoint, "--dynamodb-table", table, *extra
    )
