"""`vexil status` prints the replica registry: the embedded store's fleet is the one process."""

from __future__ import annotations

import json

from tests.support.flags import flag_pb
from tests.support.ops import server_args, vexil
from tests.support.servers import connected, running_app, server_settings
from vexil.v1 import admin_pb2


async def test_status_prints_the_replicas_with_their_applied_version() -> None:
    async with (
        running_app(server_settings(advertise_address="flags-0.internal:50051")) as app,
        connected(app) as c,
    ):
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f")))
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("g")))
        text = await vexil("status", *server_args(app))
        data = await vexil("status", *server_args(app), "--json")
    assert text.code == 0, text.out + text.err
    lines = text.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("ENVIRONMENT  REPLICA"))
    assert lines[header].split() == ["ENVIRONMENT", "REPLICA", "ADDRESS", "APPLIED", "LAG", "LAST", "SEEN"]
    row = lines[header + 1].split()
    assert row[0] == "local" and row[1] == app.fleet.replica_id and row[2] == "(this)"
    assert row[3:6] == ["flags-0.internal:50051", "2", "0"]
    (env,) = json.loads(data.out)["environments"]
    (replica,) = env["replicas"]
    assert replica["id"] == app.fleet.replica_id and replica["self"] is True
    assert replica["config_version"] == "2"  # proto JSON: uint64 as a string
