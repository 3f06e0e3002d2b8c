"""The Node client example (clients/node) against a real `vexil serve`: evaluate, Watch, errors.

The example loads proto/vexil/v1 at run time with the pinned @grpc/grpc-js and
@grpc/proto-loader (installed with `npm ci` from its lock file) and prints one JSON line per
step.  The test makes the change the example's Watch must see, and compares every line with
values written here from the API's contract.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc

from tests.support.flags import flag_pb
from tests.support.npm import npm_ci, tool
from tests.support.servers import ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
LINE_SECONDS = 30.0

GREETING = flag_pb(
    "greeting", {"hi": "hello", "yo": "yo!"}, "hi", {"if": [{"==": [{"var": "country"}, "JP"]}, "yo", None]}
)


async def line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), LINE_SECONDS)
    assert raw, "the example ended early"
    return json.loads(raw)


async def test_the_node_example_evaluates_watches_and_reads_error_details(tmp_path: Path) -> None:
    npm_ci(NODE_DIR)
    with ServerProcess(tmp_path, "--store", "memory") as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=GREETING))
            proc = await asyncio.create_subprocess_exec(
                tool("node"),
                str(NODE_DIR / "example.js"),
                server.target,
                "greeting",
                cwd=NODE_DIR,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                # The context (country JP) reached the server as a Struct: targeting matched.
                assert await line(proc) == {
                    "step": "evaluate",
                    "flag_key": "greeting",
                    "value": "yo!",
                    "variant": "yo",
                    "reason": "REASON_TARGETING_MATCH",
                    "flag_version": "1",
                }
                watching = await line(proc)
                assert watching["step"] == "watching" and watching["flags"] == ["greeting"], watching

                changed = flag_pb("greeting", {"hi": "hello", "yo": "yo!"}, "hi", None)
                await admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=changed))
                change = await line(proc)
                assert change == {
                    "step": "change",
                    "type": "TYPE_UPSERT",
                    "flag_key": "greeting",
                    "flag_version": "2",
                    "config_version": change["config_version"],
                }
                assert int(change["config_version"]) > int(watching["config_version"])

                assert await line(proc) == {
                    "step": "error-not-found",
                    "code": "NOT_FOUND",
                    "message": "flag 'greeting-missing' does not exist in environment 'local'",
                    "reason": "FLAG_NOT_FOUND",
                    "details": {"ErrorInfo": {"reason": "FLAG_NOT_FOUND", "domain": "vexil.dev"}},
                }
                invalid = await line(proc)
                assert (invalid["step"], invalid["code"], invalid["reason"]) == (
                    "error-invalid-argument",
                    "INVALID_ARGUMENT",
                    "INVALID_ARGUMENT",
                )
                violations = invalid["details"]["BadRequest"]["field_violations"]
                assert [v["field"] for v in violations] == ["flag_key"]
                assert await asyncio.wait_for(proc.wait(), LINE_SECONDS) == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
