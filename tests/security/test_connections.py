"""Connections are bounded: idle, slow or never-finished ones cannot take the server down.

Before, one client could open a thousand connections and send nothing: at the open-file limit
neither port accepted anything (a single `vexil serve` at `ulimit -n 1024` stopped answering
both gRPC and HTTP), and aiohttp kept an idle connection, or a request head sent a byte at a
time, for an hour.  Each test drives a real `vexil serve` over loopback with raw sockets.
"""

from __future__ import annotations

import http.client
import json
import resource
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.pki import PkiFiles
from tests.support.servers import ServerProcess
from vexil import connections

LIMIT = 8
CLIENT_TIMEOUT = 2.0
HANDSHAKE = 10.0
"""The handshake bound the server promises (written here, not read from the code)."""


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("connections")
    args = ("--max-connections", str(LIMIT), "--http-client-timeout", str(CLIENT_TIMEOUT))
    with ServerProcess(tmp, *args) as server:
        yield server


def _flood(port: int, count: int) -> list[socket.socket]:
    """`count` connections that send nothing."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _fill(port: int, limit: int) -> list[socket.socket]:
    """Connections that send nothing, enough to hold all `limit` places: a second round after a
    pause takes any place an earlier connection of the test (a health check's) freed late."""
    held = _flood(port, limit)
    time.sleep(0.5)
    return held + _flood(port, limit)


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float | None]:
    """What the server sent, and after how many seconds it closed (None: still open)."""
    start = time.monotonic()
    received = b""
    while (left := within - (time.monotonic() - start)) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, time.monotonic() - start
        if not chunk:
            return received, time.monotonic() - start
        received += chunk
    return received, None


def _health(target: str, credentials: grpc.ChannelCredentials | None = None) -> str:
    """gRPC health of a fresh connection: SERVING, or the status code of the failure."""
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def _healthz(port: int, context: ssl.SSLContext | None = None) -> int:
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def _eventually(check: object, expected: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (got := check()) != expected:  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still {got!r}, not {expected!r}, after {within} s"
        time.sleep(0.2)


def test_an_http_flood_is_refused_with_503_and_grpc_keeps_serving(plain: ServerProcess) -> None:
    flood = _fill(plain.http_port, LIMIT)
    try:
        one_more = socket.create_connection(("127.0.0.1", plain.http_port), timeout=5)
        answer, closed_after = _read_until_closed(one_more, 5)
        one_more.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), answer
        assert b"\r\nRetry-After: 1\r\n" in head
        assert f"({LIMIT})" in json.loads(body)["errorDetails"]
        assert closed_after is not None
        assert _health(plain.target) == "SERVING"
    finally:
        _close(flood)
    _eventually(lambda: _healthz(plain.http_port), 200)


def test_a_grpc_flood_is_refused_and_http_keeps_serving(plain: ServerProcess) -> None:
    flood = _fill(plain.port, LIMIT)
    try:
        assert _health(plain.target) == "UNAVAILABLE"
        assert _healthz(plain.http_port) == 200
    finally:
        _close(flood)
    _eventually(lambda: _health(plain.target), "SERVING")


def test_http_clients_that_send_no_whole_head_in_time_are_cut_off(plain: ServerProcess) -> None:
    silent, partial, dripping, kept = _flood(plain.http_port, 4)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    start = time.monotonic()
    dripped = 0
    with dripping:
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200
        try:
            for byte in head:  # a byte every 0.1 s: 20 s for the head, were it let through
                dripping.sendall(bytes([byte]))
                dripped += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
    drip_cut_after = time.monotonic() - start
    assert dripped < len(head), "the server took a head dripped over 20 s"
    assert drip_cut_after < CLIENT_TIMEOUT + 3
    for sock in (silent, partial, kept):
        with sock:
            answer, closed_after = _read_until_closed(sock, CLIENT_TIMEOUT + 3)
            assert closed_after is not None, f"still open after {CLIENT_TIMEOUT + 3} s: {answer[:60]!r}"
    assert b" 200 OK\r\n" in answer  # the kept-alive one was answered, then closed when idle


def test_a_body_that_does_not_arrive_in_time_is_answered_408(plain: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", plain.http_port), timeout=5) as sock:
        sock.sendall(
            b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        start = time.monotonic()
        sock.settimeout(CLIENT_TIMEOUT + 5)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - start < CLIENT_TIMEOUT + 3
    # A body that comes in pieces, but in time, is read as always.
    with socket.create_connection(("127.0.0.1", plain.http_port), timeout=5) as sock:
        body = b'{"context": {"targetingKey": "' + b"u" * 40 + b'"}}'
        sock.sendall(
            b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        for start in range(0, len(body), 10):
            sock.sendall(body[start : start + 10])
            time.sleep(0.1)
        answer, _ = _read_until_closed(sock, 5)
        assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_tls_connections_count_from_accept_and_must_finish_their_handshake(
    tmp_path: Path, pki: PkiFiles
) -> None:
    limit = 4
    tls = ("--tls-cert", pki.server_cert, "--tls-key", pki.server_key, "--max-connections", str(limit))
    credentials = grpc.ssl_channel_credentials(pki.read("ca"))
    trusting = ssl.create_default_context(cafile=pki.ca)
    with ServerProcess(tmp_path, *tls, ca_cert=pki.ca) as server:
        start = time.monotonic()
        floods = _fill(server.http_port, limit) + _fill(server.port, limit)  # no ClientHello, ever
        try:
            one_more = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
            answer, closed_after = _read_until_closed(one_more, 3)
            one_more.close()
            assert (answer, closed_after is not None) == (b"", True), "refused before any handshake"
            assert _health(server.target, credentials) == "UNAVAILABLE"
            for sock in floods:
                _, closed_after = _read_until_closed(sock, HANDSHAKE + 5 - (time.monotonic() - start))
                assert closed_after is not None, "a connection that never began its handshake was kept"
            assert time.monotonic() - start >= HANDSHAKE - 1, "closed before its handshake time was up"
        finally:
            _close(floods)
        assert _healthz(server.http_port, trusting) == 200
        assert _health(server.target, credentials) == "SERVING"


def test_a_flood_at_the_open_file_limit_leaves_grpc_serving(tmp_path: Path) -> None:
    """No `--max-connections`: the default comes from the open-file limit, leaving gRPC its share."""
    with ServerProcess(tmp_path, open_files=(1024, 1024)) as server:
        flood: list[socket.socket] = []
        try:
            for _ in range(1100):
                flood.append(socket.create_connection(("127.0.0.1", server.http_port), timeout=5))
            time.sleep(0.5)
            assert _health(server.target) == "SERVING"
        finally:
            _close(flood)
        assert "Too many open files" not in server.stderr


def test_serve_raises_its_open_file_limit_to_the_hard_limit(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, open_files=(1024, 4096)) as server:
        assert server.proc is not None
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert row.split()[3:5] == ["4096", "4096"], row


@pytest.mark.parametrize(
    ("soft", "setting", "expected"),
    [
        (1024, 0, 384),  # (1024 - 256 reserved) / 2 listeners
        (4096, 0, 1920),
        (1 << 20, 0, 10_000),
        (resource.RLIM_INFINITY, 0, 10_000),
        (300, 0, 22),
        (100, 0, 1),
        (1024, 50, 50),
        (1 << 20, 20_000, 20_000),
    ],
)
def test_the_default_limit_is_each_ports_share_of_open_files(
    monkeypatch: pytest.MonkeyPatch, soft: int, setting: int, expected: int
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    assert connections.connection_limit(setting) == expected
