"""Every start-up failure of `vexil serve` is one line a person can act on and a documented exit
code (the README's table): bad configuration 2, missing table 3, address in use 4, no AWS
credentials 5, DynamoDB unreachable 6; never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import VEXIL, free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def serve(
    *args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run(
        [VEXIL, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--http-port", "0", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=environ,
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    """The failure's single line of standard error (anything else logged is a failure)."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vexil serve: "), lines
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def test_grpc_port_in_use(taken_port: int) -> None:
    done = serve("--port", str(taken_port))
    line = one_line(done)
    assert done.returncode == 4 and f"127.0.0.1:{taken_port}" in line and "in use" in line, line


def test_http_port_in_use(taken_port: int) -> None:
    done = serve("--http-port", str(taken_port))
    line = one_line(done)
    assert done.returncode == 4 and f"127.0.0.1:{taken_port}" in line and "in use" in line, line


def test_bad_configuration() -> None:
    done = serve("--env", "moon")
    line = one_line(done)
    assert done.returncode == 2 and "env" in line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"flags": {}}\xff\xfe', "not UTF-8 text (byte 0xff at offset 13)"),
        (
            b'{"flags": {"f": {"variants": {"a": ' + b"9" * 5000 + b'}, "defaultVariant": "a"}}}',
            "4300 digits",
        ),
    ],
    ids=["not-utf8", "5000-digit-number"],
)
def test_a_flags_file_that_cannot_be_read(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "flags.json"
    path.write_bytes(content)
    done = serve("--flags", str(path), "--log-level", "WARNING")
    line = one_line(done)
    assert done.returncode == 2 and "flags.json" in line and says in line, line


def test_missing_table(dynamo_endpoint: str) -> None:
    done = serve(
        "--store", "dynamodb", "--dynamodb-endpoint", dynamo_endpoint, "--dynamodb-table", "no-such-table"
    )
    line = one_line(done)
    assert done.returncode == 3, line
    assert "no-such-table" in line and "vexil dynamodb create-table" in line, line


def test_no_aws_credentials(dynamo_endpoint: str, tmp_path: Path) -> None:
    nothing = str(tmp_path / "none")
    no_files = {"AWS_SHARED_CREDENTIALS_FILE": nothing, "AWS_CONFIG_FILE": nothing}
    done = serve(
        "--store", "dynamodb", "--dynamodb-endpoint", dynamo_endpoint,
        env={**no_files, "AWS_EC2_METADATA_DISABLED": "true"},  # never ask an instance metadata service
        drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"),
    )  # fmt: skip
    line = one_line(done)
    assert done.returncode == 5, line
    assert "AWS credentials" in line and "unreachable" not in line, line


def test_dynamodb_unreachable() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = serve(
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        closed,
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    line = one_line(done)
    assert done.returncode == 6 and "unreachable" in line, line


def test_the_readme_documents_these_exit_codes() -> None:
    text = README.read_text()
    section = text[text.index("Exit codes of `vexil serve`") :]
    for code, words in (
        (2, "configuration"),
        (3, "table"),
        (4, "in use"),
        (5, "credentials"),
        (6, "unreachable"),
    ):
        row = next(line for line in section.splitlines() if line.startswith(f"| {code} |"))
        assert words in row, row
