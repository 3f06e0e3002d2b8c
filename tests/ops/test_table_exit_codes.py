"""The commands that work on the DynamoDB table directly, against the emulator, exit with the
README's codes when the table is missing (3) or there are no AWS credentials (5), as `vexil serve`
does at start: the store calls both UNAVAILABLE, which would read as exit 6, "try again later"."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import VEXIL

# The README's exit-code table ("Configuration reference", "Exit codes"), written out here.
NOT_FOUND = 3
"""3: not found (a flag, a backup, the table)."""
NOT_ALLOWED = 5
"""5: not allowed: missing or refused credentials."""

MISSING = "no-such-table"

TABLE_COMMANDS = {
    "backup export --from table": ["backup", "export", "{tmp}/out.json", "--from", "table", "--quiet"],
    "backup verify": ["backup", "verify", f"table:{MISSING}", f"table:{MISSING}-2", "--quiet"],
    "backup create": ["backup", "create", "--quiet"],
    "backup list": ["backup", "list"],
    "backup pitr status": ["backup", "pitr", "status"],
    "dynamodb describe": ["dynamodb", "describe"],
    "keys create --bootstrap": ["keys", "create", "--bootstrap", "--store", "dynamodb"],
}


def run(
    args: list[str], env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in {**os.environ, "NO_COLOR": "1", **(env or {})}.items() if k not in drop}
    return subprocess.run([VEXIL, *args], capture_output=True, text=True, timeout=90, env=environ)


def command(name: str, tmp: Path, endpoint: str) -> list[str]:
    args = [arg.replace("{tmp}", str(tmp)) for arg in TABLE_COMMANDS[name]]
    return [*args, "--env", "dev", "--table", MISSING, "--dynamodb-endpoint", endpoint]


def one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("vexil:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(set(TABLE_COMMANDS) - {"backup list"}))  # lists none, as AWS
def test_a_missing_table_is_not_found(name: str, tmp_path: Path, dynamo_endpoint: str) -> None:
    done = run(command(name, tmp_path, dynamo_endpoint))
    line = one_line(done)
    assert done.returncode == NOT_FOUND, line
    assert MISSING in line and "create it first" in line and "UNAVAILABLE" not in line, line


@pytest.mark.parametrize("name", ["backup list", "dynamodb describe", "keys create --bootstrap"])
def test_no_aws_credentials_is_not_allowed(name: str, tmp_path: Path, dynamo_endpoint: str) -> None:
    nothing = str(tmp_path / "none")
    done = run(
        command(name, tmp_path, dynamo_endpoint),
        env={
            "AWS_SHARED_CREDENTIALS_FILE": nothing,
            "AWS_CONFIG_FILE": nothing,
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"),
    )
    line = one_line(done)
    assert done.returncode == NOT_ALLOWED, line
    assert "no AWS credentials" in line, line
