"""The CLI's one connection layer: where the HTTP side is assumed to be, and that TLS options
mean TLS for it too (unit test of `vexil.ops.connection` with the parser of `vexil.cli`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.servers import VEXIL
from vexil.cli.main import build_parser
from vexil.ops.connection import Connection, ConnectionOptionsError

URLS = [
    # (connection, expected metrics URL)
    (Connection(target="vexil.internal:50051"), "http://vexil.internal:3001/metrics"),
    (Connection(target="vexil.internal:50051", ca_cert="ca.pem"), "https://vexil.internal:3001/metrics"),
    (Connection(target="vexil.internal:50051", tls=True), "https://vexil.internal:3001/metrics"),
    (Connection(target=":50051"), "http://127.0.0.1:3001/metrics"),
    (Connection(target="h:1", ca_cert="ca.pem", http_url="https://h:9443/"), "https://h:9443/metrics"),
    # gRPC's other spellings of the same address: the HTTP side is on the host they dial.
    (Connection(target="dns:///127.0.0.1:50051"), "http://127.0.0.1:3001/metrics"),
    (
        Connection(target="dns://8.8.8.8/vexil.internal:50051", tls=True),
        "https://vexil.internal:3001/metrics",
    ),
    (Connection(target="ipv4:10.0.0.7:50051,10.0.0.8:50051"), "http://10.0.0.7:3001/metrics"),
    (Connection(target="ipv6:[::1]:50051"), "http://[::1]:3001/metrics"),
    (Connection(target="[::1]:50051"), "http://[::1]:3001/metrics"),
    (Connection(target="vexil.internal"), "http://vexil.internal:3001/metrics"),
    (Connection(target="unix:/run/vexil.sock"), "http://127.0.0.1:3001/metrics"),
]


@pytest.mark.parametrize(("connection", "expected"), URLS)
def test_metrics_url(connection: Connection, expected: str) -> None:
    assert connection.metrics_url() == expected


def test_half_a_client_certificate_is_a_usage_error() -> None:
    with pytest.raises(ConnectionOptionsError, match="--client-cert and --client-key go together"):
        Connection(client_cert="c.pem").channel()


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["ops", "check", "daily"],
        ["backup", "export", "f.json"],
        ["backup", "import", "f.json"],
        ["flags", "list"],
        ["keys", "list"],
        ["watch"],
        ["evaluate", "k"],
    ],
)
def test_every_server_command_takes_the_same_connection_options(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEXIL_TOKEN", "from-env")
    args = build_parser().parse_args(
        [*command, "--target", "t:1", "--ca-cert", "ca.pem", "--client-cert", "c", "--client-key", "k"]
    )
    assert (args.target, args.ca_cert, args.client_cert, args.client_key, args.token) == (
        "t:1",
        "ca.pem",
        "c",
        "k",
        "from-env",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--http-url", "http://127.0.0.1:1"],
        ["status"],
        ["ops", "check", "daily", "--http-url", "http://127.0.0.1:1"],
        ["flags", "list"],
    ],
)
def test_an_unreadable_ca_file_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-ca.pem")
    done = subprocess.run(
        [VEXIL, *command, "--ca-cert", missing, "--timeout", "1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "missing-ca.pem" in done.stderr, done.stderr
