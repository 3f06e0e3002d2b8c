"""The commands that work on the DynamoDB table directly, against the emulator, exit with the
README's codes when the table is missing (3) or there are no AWS credentials (5), as `vexil serve`
does at start: the store calls both UNAVAILABLE, which would read as exit 6, "try again later"."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import VEXIL

# The README's exit-code table ("Configuration reference", "Exit codes"), written out here.
USAGE = 2
"""2: bad usage, invalid argument or input."""
NOT_FOUND = 3
"""3: not found (a flag, a backup, the table)."""
CONFLICT = 4
"""4: conflict: stale version, already exists, failed precondition."""
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


def test_a_restore_into_a_table_that_exists_is_a_conflict(tmp_path: Path, dynamo_endpoint: str) -> None:
    """DynamoDB answers TableAlreadyExistsException: the operator picks another name (exit 4, as
    "already exists" is everywhere), not "unavailable, try again later" (6)."""
    where = ["--env", "dev", "--dynamodb-endpoint", dynamo_endpoint]
    for table in ("exit-source", "exit-taken"):
        assert run(["dynamodb", "create-table", "--table", table, *where]).returncode == 0
    made = run(["backup", "create", "--table", "exit-source", "--json", *where])
    assert made.returncode == 0, made.stderr
    arn = json.loads(made.stdout)["arn"]
    done = run(["backup", "restore", arn, "--to", "exit-taken", "--table", "exit-source", *where])
    line = one_line(done)
    assert done.returncode == CONFLICT, line
    assert "exit-taken" in line and "ALREADY_EXISTS" in line, line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["backup", "list", "--table", "ab"], "(from --table)"),
        (["backup", "restore", "some-backup", "--to", "ab", "--table", "exit-source"], "argument --to"),
        (["backup", "pitr", "restore", "--to", "flags/prod", "--table", "exit-source"], "argument --to"),
        (["dr", "drill", "--restore-to", "flags prod", "--table", "exit-source"], "argument --restore-to"),
        (["backup", "verify", "table:exit-source", "table:ab", "--table", "exit-source"], "table:ab: 'ab'"),
    ],
)
def test_a_name_dynamodb_cannot_take_is_refused_before_any_request(
    args: list[str], named: str, tmp_path: Path
) -> None:
    """Table names follow DynamoDB's rule (3 to 255 of A-Z a-z 0-9 _ . -); a name outside it is
    bad usage naming the option, found before anything is sent (the endpoint answers nothing)."""
    done = run([*args, "--env", "dev", "--dynamodb-endpoint", "http://127.0.0.1:9"])
    assert done.returncode == USAGE, done.stderr
    assert "Traceback" not in done.stderr and named in done.stderr, done.stderr
    assert "is not a table name" in done.stderr and "3 to 255 characters" in done.stderr, done.stderr
