"""SIGTERM under load: in-flight calls complete, streams end cleanly, no traceback, exit 0."""

from __future__ import annotations

import asyncio
import signal

import grpc

from tests.integration.test_lifecycle import bool_flag
from tests.support.servers import ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

WORKERS = 16
CALLS_PER_WORKER = 400


async def test_sigterm_during_load(tmp_path) -> None:
    server = ServerProcess(tmp_path, "--shutdown-grace", "5").start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=bool_flag("load", default="on")))
            watch = evaluation.Watch(evaluation_pb2.WatchRequest())
            assert (await watch.read()).type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT

            ok = 0
            refused: list[grpc.StatusCode] = []
            unexpected: list[str] = []
            started = asyncio.Event()

            async def worker() -> None:
                nonlocal ok
                for _ in range(CALLS_PER_WORKER):
                    try:
                        res = await evaluation.Evaluate(
                            evaluation_pb2.EvaluateRequest(flag_key="load"), timeout=10
                        )
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                            # Sent after shutdown began: refused by the server before any handler
                            # ran (gRPC reports those as UNAVAILABLE or CANCELLED); safe to retry.
                            refused.append(exc.code())
                            return
                        unexpected.append(f"{exc.code()}: {exc.details()}")
                        return
                    assert res.bool_value is True
                    ok += 1
                    if ok == 200:
                        started.set()

            tasks = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            await asyncio.wait_for(started.wait(), 30)
            server.signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*tasks), 60)

            # The Watch stream is ended by the server cleanly (status OK), not torn down.
            while (await asyncio.wait_for(watch.read(), 30)) is not grpc.aio.EOF:
                pass
            assert await watch.code() == grpc.StatusCode.OK

        assert unexpected == [], unexpected[:3]
        assert ok >= 200
        assert len(refused) <= WORKERS  # each worker stops at its first refusal
        assert server.wait(30) == 0
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.stop()
