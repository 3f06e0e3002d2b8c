"""A client never goes back in time when it lands on a replica that lags behind it.

Two replicas serve one DynamoDB table (the emulator); a local-mode client reaches them through a
TCP forwarder standing in for a load balancer.  One replica is cut off from the table (it keeps
serving, by design, the version it had), a change is written through the other, the client
follows it, and then the balancer moves the client onto the lagging replica.  The README's
"never backwards" and the client's resume contract say: the client keeps the newer data (STALE
while it cannot confirm it), takes no snapshot from the lagging replica, and carries on once that
replica has caught up.  It used to take the lagging replica's snapshot: a change written through
another replica (a kill, say) was undone on the client.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable

from tests.support.client import FAST
from tests.support.flags import flag_pb
from tests.support.proxy import FaultProxy
from tests.support.servers import connected, running_app, server_settings
from vexil.client import AsyncClient, ChangeEvent, ChangeKind, ConnectionState
from vexil.v1 import admin_pb2


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def test_a_client_moved_onto_a_lagging_replica_keeps_the_newer_data(
    dynamo_table: tuple[str, str],
) -> None:
    endpoint, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint)
    table_link = await FaultProxy(str(upstream.hostname), int(upstream.port or 0)).start()
    store = {"store": "dynamodb", "dynamodb_table": table}
    lagging_settings = server_settings(**store, dynamodb_endpoint=table_link.endpoint)
    current_settings = server_settings(**store, dynamodb_endpoint=endpoint)
    async with (
        running_app(lagging_settings) as lagging,
        running_app(current_settings) as current,
        connected(current) as writer,
    ):
        balancer = await FaultProxy("127.0.0.1", current.port).start()
        changes: list[ChangeEvent] = []
        try:
            created = await writer.admin.CreateFlag(
                admin_pb2.CreateFlagRequest(flag=flag_pb("bw", {"old": "old", "new": "new"}, "old"))
            )
            old = created.config_version
            await until(lambda: lagging.cache.get("local").config_version >= old, 10, "both replicas at old")

            table_link.set("cut")  # the lagging replica keeps serving what it has
            updated = await writer.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(
                    flag=flag_pb("bw", {"old": "old", "new": "new"}, "new"), expected_version=1
                )
            )
            new = updated.config_version
            async with AsyncClient(target=f"127.0.0.1:{balancer.port}", mode="local", **FAST) as client:
                client.on_change(changes.append)
                assert await client.wait_for_ready(10)
                await until(lambda: client.status().config_version == new, 10, "the client at new")
                assert await client.string_value("bw", "?") == "new"

                balancer.upstream = ("127.0.0.1", lagging.port)  # the balancer moves the client
                balancer.cut()
                for _ in range(40):  # 4 s on the lagging replica: reconnects, and the newer data kept
                    assert client.status().config_version == new
                    assert await client.string_value("bw", "?") == "new"
                    await asyncio.sleep(0.1)
                assert client.state is not ConnectionState.READY  # it cannot confirm its data there
                assert lagging.cache.get("local").config_version == old  # it did lag all along

                table_link.set("pass")  # the replica catches up; the client confirms and follows
                await until(lambda: client.state is ConnectionState.READY, 15, "READY on the replica")
                later = await writer.admin.UpdateFlag(
                    admin_pb2.UpdateFlagRequest(
                        flag=flag_pb("bw", {"old": "old", "new": "new", "newer": "newer"}, "newer"),
                        expected_version=2,
                    )
                )
                await until(lambda: client.status().config_version == later.config_version, 15, "followed")
                assert await client.string_value("bw", "?") == "newer"
            assert ChangeKind.SNAPSHOT not in {c.kind for c in changes}, changes
            # The first data (new) is no change; the one change after it arrived once.
            assert [c.config_version for c in changes] == [later.config_version], changes
        finally:
            await balancer.stop()
            await table_link.stop()
