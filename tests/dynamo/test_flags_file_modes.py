"""A flags file on a shared DynamoDB table is a source, not the master of the table.

Replicas run as `vexil serve` subprocesses on the emulator.  The file manages only the flags it
created: flags made through the API stay, and an operator's kill switch stays on whatever the file
says, across restarts and file edits.  Without `--flags-mode` a DynamoDB server refuses to start.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from tests.support.flags import flag_definition, flag_pb
from tests.support.servers import VEXIL, dynamodb_replica, free_port
from vexil.v1 import admin_pb2, admin_pb2_grpc, flag_pb2

ENABLED, DISABLED = flag_pb2.FLAG_STATE_ENABLED, flag_pb2.FLAG_STATE_DISABLED


def write_file(path: Path, flags: dict[str, dict[str, Any]]) -> str:
    path.write_text(json.dumps({"flags": flags}))
    return str(path)


def get(admin: admin_pb2_grpc.AdminServiceStub, key: str) -> flag_pb2.Flag | None:
    try:
        return admin.GetFlag(admin_pb2.GetFlagRequest(key=key), timeout=10)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def warned(log: str, key: str) -> bool:
    """Whether the server's log has a WARNING line naming flag `key`."""
    return any(" WARNING " in line and f"flag {key} " in line for line in log.splitlines())


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (bounded) until `check()` holds: the file is polled, so edits land a moment later."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_flags_file_without_a_mode_is_refused_on_dynamodb(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    path = write_file(tmp_path / "flags.json", {"from-file": flag_definition(default="on")})
    port = str(free_port())
    args = [VEXIL, "serve", "--store", "dynamodb", "--dynamodb-endpoint", endpoint, "--dynamodb-table", table]
    args += ["--port", port, "--http-port", "0", "--flags", path]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server started instead of refusing the flags file") from None
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--flags-mode seed" in lines[0] and "--flags-mode sync" in lines[0]


def test_sync_never_deletes_or_revives_what_it_does_not_manage(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    path = tmp_path / "flags.json"
    write_file(path, {"from-file": flag_definition(default="on"), "to-kill": flag_definition(default="on")})
    sync = ("--flags", str(path), "--flags-mode", "sync")
    with dynamodb_replica(tmp_path, endpoint, table) as a, grpc.insecure_channel(a.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("api-made", default="on")), timeout=10)
        api_version = get(admin, "api-made").version

        with dynamodb_replica(tmp_path, endpoint, table, *sync):
            pass  # a replica with the file starts (and stops again)
        assert get(admin, "api-made") is not None, "a replica with a flags file deleted an API flag"
        assert get(admin, "api-made").version == api_version
        assert get(admin, "from-file").managed_by == "file:flags.json"
        assert get(admin, "api-made").managed_by == ""

        admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="to-kill", killed=True, reason="incident"), timeout=10
        )
        with dynamodb_replica(tmp_path, endpoint, table, *sync) as b:  # restart with the same file
            assert get(admin, "to-kill").state == DISABLED, "a restart revived a killed flag"
            assert warned(b.stderr, "to-kill")

            # Edit the file: the definition follows it, the kill stays.
            write_file(
                path, {"from-file": flag_definition(default="on"), "to-kill": flag_definition(default="off")}
            )
            eventually(lambda: get(admin, "to-kill").default_variant == "off")
            assert get(admin, "to-kill").state == DISABLED, "a file edit revived a killed flag"

            # Remove a flag from the file: the file's own flag goes, the API's stays.
            write_file(path, {"to-kill": flag_definition(default="off")})
            eventually(lambda: get(admin, "from-file") is None)
            assert get(admin, "api-made").version == api_version
            assert get(admin, "to-kill").state == DISABLED

        # Revived on purpose, it stays revived.
        admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(flag_key="to-kill", killed=False), timeout=10)
        with dynamodb_replica(tmp_path, endpoint, table, *sync):
            assert get(admin, "to-kill").state == ENABLED


def test_sync_leaves_a_same_named_api_flag_alone(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    path = write_file(tmp_path / "flags.json", {"shared-name": flag_definition(default="off")})
    with dynamodb_replica(tmp_path, endpoint, table) as a, grpc.insecure_channel(a.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("shared-name", default="on")), timeout=10)
        before = get(admin, "shared-name")
        with dynamodb_replica(tmp_path, endpoint, table, "--flags", path, "--flags-mode", "sync") as b:
            assert warned(b.stderr, "shared-name")
        assert get(admin, "shared-name") == before


def test_seed_creates_missing_flags_and_changes_nothing_existing(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    path = tmp_path / "flags.json"
    write_file(path, {"kept": flag_definition(default="on"), "killed": flag_definition(default="on")})
    with dynamodb_replica(tmp_path, endpoint, table) as a, grpc.insecure_channel(a.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        with dynamodb_replica(tmp_path, endpoint, table, "--flags", str(path), "--flags-mode", "sync"):
            pass
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("api-made", default="on")), timeout=10)
        admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="killed", killed=True, reason="x"), timeout=10
        )
        before = {key: get(admin, key) for key in ("kept", "killed", "api-made")}

        # Every existing flag differs from the file, "kept" is gone from it, "fresh" is new.
        write_file(
            path,
            {
                "killed": flag_definition(default="off"),
                "api-made": flag_definition(default="off"),
                "fresh": flag_definition(default="on"),
            },
        )
        with dynamodb_replica(tmp_path, endpoint, table, "--flags", str(path), "--flags-mode", "seed") as b:
            write_file(
                path, {"fresh": flag_definition(default="off")}
            )  # an edit while it runs changes nothing either
            eventually(lambda: "reloaded" in b.stderr)
        assert {key: get(admin, key) for key in before} == before
        fresh = get(admin, "fresh")
        assert fresh is not None and fresh.default_variant == "on" and fresh.managed_by == "file:flags.json"
