"""SIGTERM under load drains: health NOT_SERVING and /readyz 503 at once while calls, and new
connections, are still served for `drain_seconds`; then in-flight calls complete OK within the
grace and later calls are refused with UNAVAILABLE, never CANCELLED (a client cannot tell whether
a cancelled call ran); streams end UNAVAILABLE so clients reconnect elsewhere; exit 0."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

RUNS = 3
WORKERS = 16
MAX_CALLS_PER_WORKER = 20_000
"""Bounds each worker; in practice a worker stops at its first refusal, when the drain ends."""
DRAIN_S = 0.5
WAIT_S = 30.0

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Run:
    ok: int = 0
    ok_while_draining: int = 0
    refused: int = 0
    cancelled: int = 0
    unexpected: list[str] = field(default_factory=list)
    drain_seen_after_s: float = 0.0
    fresh_connection_code: grpc.StatusCode | None = None
    readyz_status: int = 0
    watch_code: grpc.StatusCode | None = None
    exit_code: int | None = None


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening any more


async def one_run(tmp_path) -> tuple[Run, str]:
    run = Run()
    server = ServerProcess(tmp_path, "--shutdown-grace", "5", "--drain-seconds", str(DRAIN_S)).start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("load", default="on")))
            watch = evaluation.Watch(evaluation_pb2.WatchRequest())
            assert (await watch.read()).type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT

            started = asyncio.Event()
            draining = asyncio.Event()

            async def worker() -> None:
                for _ in range(MAX_CALLS_PER_WORKER):
                    try:
                        res = await evaluation.Evaluate(
                            evaluation_pb2.EvaluateRequest(flag_key="load"), timeout=10
                        )
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() == grpc.StatusCode.UNAVAILABLE:
                            run.refused += 1  # refused before any handler ran: safe to retry
                        elif exc.code() == grpc.StatusCode.CANCELLED:
                            run.cancelled += 1
                        else:
                            run.unexpected.append(f"{exc.code()}: {exc.details()}")
                        return
                    assert res.bool_value is True
                    run.ok += 1
                    if draining.is_set():
                        run.ok_while_draining += 1
                    if run.ok == 200:
                        started.set()

            tasks = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            await asyncio.wait_for(started.wait(), WAIT_S)
            server.signal(signal.SIGTERM)
            signalled = time.monotonic()

            # A connection opened after the signal: health says NOT_SERVING at once, yet the
            # server still answers on it (load balancers need that window to move away).
            async with grpc.aio.insecure_channel(server.target) as fresh:
                health = health_pb2_grpc.HealthStub(fresh)
                while (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status != NOT_SERVING:
                    assert time.monotonic() - signalled < WAIT_S, "health never said NOT_SERVING"
                    await asyncio.sleep(0.01)
                run.drain_seen_after_s = time.monotonic() - signalled
                draining.set()

                async def evaluate_fresh() -> None:
                    try:
                        await evaluation_pb2_grpc.EvaluationServiceStub(fresh).Evaluate(
                            evaluation_pb2.EvaluateRequest(flag_key="load"), timeout=5
                        )
                        run.fresh_connection_code = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as exc:
                        run.fresh_connection_code = exc.code()

                run.readyz_status, _ = await asyncio.gather(
                    asyncio.to_thread(readyz, server.http_port), evaluate_fresh()
                )

            await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S * 2)
            try:
                while (await asyncio.wait_for(watch.read(), WAIT_S)) is not grpc.aio.EOF:
                    pass
            except grpc.aio.AioRpcError:
                pass
            run.watch_code = await watch.code()
        run.exit_code = server.wait(WAIT_S)
        return run, server.stderr
    finally:
        server.stop()


async def test_sigterm_during_load(tmp_path) -> None:
    runs: list[Run] = []
    for i in range(RUNS):
        run_dir = tmp_path / f"run{i}"
        run_dir.mkdir()
        run, stderr = await one_run(run_dir)
        print(f"run {i}: {run}")
        runs.append(run)
        assert "Traceback" not in stderr, stderr
    for run in runs:
        assert run.cancelled == 0, f"calls ended CANCELLED: {runs}"
        assert run.unexpected == [], run.unexpected[:3]
        assert run.ok >= 200 and run.refused <= WORKERS
        assert run.fresh_connection_code == grpc.StatusCode.OK, "a new connection was refused while draining"
        assert run.ok_while_draining > 0, "nothing was served after health said NOT_SERVING"
        assert run.readyz_status == 503
        assert run.watch_code == grpc.StatusCode.UNAVAILABLE, "streams must end so clients reconnect"
        assert run.exit_code == 0


def test_a_second_signal_cuts_the_drain_short(tmp_path) -> None:
    """Someone at a terminal pressing Ctrl-C twice does not wait out the drain window."""
    server = ServerProcess(tmp_path, "--drain-seconds", "120").start()
    try:
        server.signal(signal.SIGINT)
        deadline = time.monotonic() + WAIT_S
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != NOT_SERVING:
                assert time.monotonic() < deadline, "the first signal did not start the drain"
                time.sleep(0.02)
        second = time.monotonic()
        server.signal(signal.SIGINT)
        assert server.wait(WAIT_S) == 0
        print(f"exited {time.monotonic() - second:.2f} s after the second signal (drain: 120 s)")
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.stop()
