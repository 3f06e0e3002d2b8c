"""A served process freezes what starting made out of the collector's full passes, before it says
SERVING; an app embedded in another program leaves that program's heap alone (`vexil.heap`).

A started server holds tens of thousands of tracked objects (its libraries' modules above all);
a full collection walking them held the loop for 30-38 ms.  Each case runs in a fresh Python
process, so the test process's own heap is neither read nor frozen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, gc, json, os, signal, sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.servers import server_settings
from vexil.app import App, serve


async def serving(port):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(400):
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("never SERVING")


def heap():
    return {"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}


async def main(mode):
    settings = server_settings(http_port=0)
    if mode == "served":
        task = asyncio.create_task(serve(settings))
        await serving(settings.port)
        print(json.dumps(heap()))
        os.kill(os.getpid(), signal.SIGTERM)
        await task
    else:
        app = App(settings)
        await app.start()
        print(json.dumps(heap()))
        await app.stop(grace=1.0)


asyncio.run(main(sys.argv[1]))
"""


def heap_after_start(mode: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_served_process_freezes_what_starting_made() -> None:
    heap = heap_after_start("served")
    # What starting made (modules, the server, its first snapshot) is frozen; full passes walk
    # only what came after: a health-check channel and the calls' garbage.
    assert heap["frozen"] > 20_000, heap
    assert heap["walked"] < 10_000, heap


def test_an_embedded_app_leaves_its_hosts_heap_alone() -> None:
    heap = heap_after_start("embedded")
    assert heap["frozen"] == 0, heap
    assert heap["walked"] > 20_000, heap
