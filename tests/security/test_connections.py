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


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """An HTTP/2 frame (RFC 9113, 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _hpack_literal(name: str, value: str) -> bytes:
    """A header field, literal and not indexed (RFC 7541, 6.2.2), both strings shorter than 127."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def _settings_of(received: bytes) -> dict[int, int]:
    """The parameters of the first non-ACK SETTINGS frame (type 4) among `received` frames."""
    at = 0
    while at + 9 <= len(received):
        size, kind, flags = int.from_bytes(received[at : at + 3], "big"), received[at + 3], received[at + 4]
        payload = received[at + 9 : at + 9 + size]
        if kind == 4 and not flags & 1:
            return {
                int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
                for i in range(0, size, 6)
            }
        at += 9 + size
    raise AssertionError(f"no SETTINGS frame in {received[:60]!r}")


def test_calls_that_never_send_a_message_are_bounded(plain: ServerProcess) -> None:
    """Each call that sends its headers and never a message is held open by gRPC; 20,000 of them
    on one connection took 135 MB.  The server now holds at most twice its connection limit
    (here 16), past which calls are RESOURCE_EXHAUSTED; one connection may hold them all."""
    headers = b"".join(
        _hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        )
    )
    with socket.create_connection(("127.0.0.1", plain.port), timeout=5) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b""))
        time.sleep(0.3)
        raw.settimeout(2)
        settings = _settings_of(raw.recv(65536))
        assert settings.get(0x3, 2**31) >= 2 * LIMIT + 4  # SETTINGS_MAX_CONCURRENT_STREAMS
        end_headers = 0x4  # and no END_STREAM: the message never comes
        raw.sendall(b"".join(_h2_frame(1, end_headers, 2 * i + 1, headers) for i in range(2 * LIMIT + 4)))
        time.sleep(0.5)
        assert _health(plain.target) == "RESOURCE_EXHAUSTED"
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


@pytest.mark.parametrize(
    ("soft", "setting", "expected"),
    [(1024, 0, 20_000), (1 << 20, 0, 20_000), (1024, 8, 16), (1024, 50_000, 100_000)],
)
def test_the_call_limit_is_twice_the_connection_setting_whatever_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch, soft: int, setting: int, expected: int
) -> None:
    """A call holds no descriptor, and a load balancer carries many clients' calls on a few
    connections: a replica at 1,024 open files still takes 20,000 calls."""
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    assert connections.call_limit(setting) == expected
