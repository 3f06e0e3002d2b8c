"""Fan-out: 1,000 Watch streams on one server all receive every change; a subscriber that never
reads delays nobody, is told to resync, and the server's memory stays bounded."""

from __future__ import annotations

import asyncio
import time

import grpc

from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

SUBSCRIBERS = 1000
CHANNELS = 10
CHANGES = 30
QUEUE = 8

WatchEvent = evaluation_pb2.WatchEvent


async def test_thousand_subscribers_and_one_that_never_reads(tmp_path) -> None:
    with ServerProcess(tmp_path, "--watch-queue-size", str(QUEUE)) as server:
        channels = [grpc.aio.insecure_channel(server.target) for _ in range(CHANNELS)]
        # The stalled subscriber announces a tiny receive window, so the server's writes to it
        # block almost at once: everything after that piles up on the server side.
        stalled_channel = grpc.aio.insecure_channel(
            server.target, options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
        )
        try:
            admin = admin_pb2_grpc.AdminServiceStub(channels[0])
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("fan", description="x" * 200)))
            stubs = [evaluation_pb2_grpc.EvaluationServiceStub(c) for c in channels]
            streams = [stubs[i % CHANNELS].Watch(evaluation_pb2.WatchRequest()) for i in range(SUBSCRIBERS)]
            firsts = await asyncio.wait_for(asyncio.gather(*(s.read() for s in streams)), 60)
            assert all(e.type == WatchEvent.TYPE_SNAPSHOT for e in firsts)
            start_version = firsts[0].config_version

            stalled = evaluation_pb2_grpc.EvaluationServiceStub(stalled_channel).Watch(
                evaluation_pb2.WatchRequest()
            )
            assert (await stalled.read()).type == WatchEvent.TYPE_SNAPSHOT  # then it never reads again
            rss_before = server.rss_kib()

            target = start_version + CHANGES

            async def drain(stream) -> list[int]:
                versions = []
                while True:
                    event = await stream.read()
                    if event.type == WatchEvent.TYPE_HEARTBEAT:
                        continue
                    versions.append(event.config_version)
                    if event.config_version >= target:
                        return versions

            readers = asyncio.gather(*(drain(s) for s in streams))
            began = time.monotonic()
            for i in range(CHANGES):
                flag = flag_pb("fan", default="on" if i % 2 else "off", description="x" * 200)
                await admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag))
            received = await asyncio.wait_for(readers, 120)
            elapsed = time.monotonic() - began
            expected = list(range(start_version + 1, target + 1))
            assert all(versions == expected for versions in received), "a subscriber missed or reordered"
            rss_after = server.rss_kib()
            # Bounded: the stalled subscriber holds at most QUEUE changes, not CHANGES.
            assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)
            print(
                f"{SUBSCRIBERS} subscribers x {CHANGES} changes in {elapsed:.2f}s; "
                f"RSS {rss_before // 1024} -> {rss_after // 1024} MiB"
            )

            # The stalled subscriber was not dropped: reading now, it is told to resync.
            saw_resync = False
            for _ in range(CHANGES + 5):
                event = await asyncio.wait_for(stalled.read(), 10)
                if event.type == WatchEvent.TYPE_SNAPSHOT:
                    assert event.reason.startswith("resync")
                    assert event.config_version == target
                    saw_resync = True
                    break
            assert saw_resync
            for s in streams:
                s.cancel()
            stalled.cancel()
        finally:
            for c in [*channels, stalled_channel]:
                await c.close()
