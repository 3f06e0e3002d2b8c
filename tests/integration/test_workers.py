"""`vexil serve --workers 2` on the DynamoDB emulator: two processes share one port, both answer, a
write through one reaches the other through the change log, and SIGTERM to the parent stops both.

Which worker a connection reached is told apart without any test hook: a Watch stream is opened on
one connection, and `GetStatus` reports the open streams of the process that answers it, so
connections to that process say 1 and connections to the other say 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

CONNECTIONS = 16
"""Separate TCP connections; the kernel spreads them over the workers by their 4-tuple hash, so
all 16 landing on one worker (2 in 65,536) would mean the second worker is not listening."""


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux, like SO_REUSEPORT itself)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def own_connection(target: str) -> grpc.aio.Channel:
    """A channel with its own TCP connection (gRPC otherwise shares one between equal channels)."""
    return grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


async def subscribers(channel: grpc.aio.Channel) -> int:
    status = await admin_pb2_grpc.AdminServiceStub(channel).GetStatus(admin_pb2.GetStatusRequest(), timeout=5)
    return sum(env.subscribers for env in status.environments)


def test_memory_store_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--store", "memory", "--workers", "2")
    with pytest.raises(RuntimeError):
        server.start(timeout=10)
    assert server.wait(10) == 2
    assert "need a shared store" in server.stderr


async def test_two_workers_share_the_port_and_the_store(tmp_path: Path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    server = ServerProcess(
        tmp_path,
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        endpoint,
        "--dynamodb-table",
        table,
        "--poll-interval",
        "0.2",
        "--workers",
        "2",
    )
    with server:
        assert server.proc is not None
        deadline = time.monotonic() + 20
        while len(children_of(server.proc.pid)) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        [child] = children_of(server.proc.pid)

        watcher = own_connection(server.target)
        channels: list[grpc.aio.Channel] = []
        try:
            watch = evaluation_pb2_grpc.EvaluationServiceStub(watcher).Watch(evaluation_pb2.WatchRequest())
            first = await asyncio.wait_for(watch.read(), 10)
            assert first.type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT

            # The child may not listen yet when the parent is SERVING (connections made before it
            # binds all reach the parent), or may still be loading: fresh connections each round.
            same: list[grpc.aio.Channel] = []
            other: list[grpc.aio.Channel] = []
            while time.monotonic() < deadline:
                for channel in channels:
                    await channel.close()
                channels = [own_connection(server.target) for _ in range(CONNECTIONS)]
                same, other = [], []
                for channel in channels:
                    try:
                        (same if await subscribers(channel) else other).append(channel)
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                if same and other:
                    break
                await asyncio.sleep(0.2)
            assert same and other, f"every connection reached one worker: {server.stderr[-3000:]}"

            # Written through the other worker, seen by the watcher's worker: the change log carried it.
            admin = admin_pb2_grpc.AdminServiceStub(other[0])
            created = await admin.CreateFlag(
                admin_pb2.CreateFlagRequest(flag=flag_pb("shared", default="on"))
            )
            event = await asyncio.wait_for(watch.read(), 10)
            assert event.type == evaluation_pb2.WatchEvent.TYPE_UPSERT
            assert event.flag.key == "shared" and event.config_version == created.config_version
            for channel in (*same, *other):
                stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
                result = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="shared"), timeout=5)
                assert result.bool_value is True and result.flag_version == created.flag.version
            watch.cancel()
        finally:
            for channel in [watcher, *channels]:
                await channel.close()

        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert children_of(server.proc.pid) == []
        assert not Path(f"/proc/{child}").exists(), "the worker child outlived its parent"
        assert "Traceback" not in server.stderr
        assert "exited" not in server.stderr  # no worker died early or stopped with an error
