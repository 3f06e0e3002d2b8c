"""`--json` agrees with itself and with the tables: times are ISO-8601 UTC strings in every
command, enums are the tables' short names (`ENABLED`, `evaluator`, `CREATE`, `STATIC`), and a
flag's own values pass through untouched."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.support.servers import VEXIL, ServerProcess

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [VEXIL, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[0] if args[0] == "watch" else done.stdout)


def test_json_uses_the_tables_names_and_iso_times(tmp_path: Path) -> None:
    token = run("keys", "create", "--bootstrap", "--store", "memory", "--json")["token"]
    with ServerProcess(tmp_path, env={"VEXIL_BOOTSTRAP_ADMIN_KEY": token}) as server:
        where = ["--target", server.target, "--token", token, "--json"]
        variants = '{"state": "FLAG_STATE_DISABLED", "role": "ROLE_ADMIN"}'  # user data, not enums
        created = run("flags", "create", "j", "--variants", variants, "--default", "state", *where)
        assert created.get("state", "ENABLED") == "ENABLED"
        assert created["variants"] == {"state": "FLAG_STATE_DISABLED", "role": "ROLE_ADMIN"}
        assert ISO_UTC.match(created["created_at"]), created
        run("flags", "kill", "j", "--reason", "json names", *where)  # the state is the kill switch
        assert run("flags", "get", "j", *where)["state"] == "DISABLED"
        assert [f["state"] for f in run("flags", "list", *where)] == ["DISABLED"]
        changes = run("flags", "changes", "--key", "j", *where)
        assert [c["kind"] for c in changes] == ["CREATE", "KILL"]
        assert all(ISO_UTC.match(c["timestamp"]) for c in changes)
        evaluated = run("evaluate", "j", *where)
        assert evaluated["reason"] == "DISABLED"
        assert run("watch", "--count", "1", *where)["type"] == "SNAPSHOT"

        key = run("keys", "create", "--role", "evaluator", "-e", "local", *where)
        assert key["role"] == "evaluator" and ISO_UTC.match(key["expires_at"]), key
        listed = {k["id"]: k for k in run("keys", "list", *where)}
        assert listed[key["id"]]["role"] == "evaluator"
        assert ISO_UTC.match(listed[key["id"]]["expires_at"])


def test_bootstrap_key_expiry_is_an_iso_time(dynamo_table: tuple[str, str]) -> None:
    endpoint, table = dynamo_table
    issued = run(
        "keys", "create", "--bootstrap", "--store", "dynamodb", "--table", table,
        "--dynamodb-endpoint", endpoint, "--json",
    )  # fmt: skip
    assert issued["role"] == "admin"
    assert isinstance(issued["expires_at"], str) and ISO_UTC.match(issued["expires_at"]), issued
