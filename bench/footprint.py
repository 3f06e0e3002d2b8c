"""Footprint: start-up time and memory of a server holding 10,000 flags with 1,000 open streams.

The flags are written straight into the emulator's table in vexil's item shape with batch writes
(25 items a call: seconds, where 10,000 audited admin writes take minutes on the emulator), with
the environment item carrying the mix's `$evaluators`.  Start-up is timed from launching
`vexil serve` to gRPC health SERVING (polled every 100 ms), which is when it has read and
compiled every flag; `store_scan_seconds`, from the server's own DynamoDB metrics, is the time its
Query and Scan requests took, added up (a load reads several parts at once, so the sum can pass
the wall time it took).  The profile's cache maxsize
(100 for `local`) is raised with `--cache-maxsize`.  RSS is the server process's resident set
(/proc), idle and then with 1,000 `Watch` streams open (each on one flag, as an application
watching its flags would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.flagset import environment, mix, stored
from bench.servers import Emulator, Vexil, dynamo_args, rss_kib, scrape
from bench.streams import connections, open_streams
from vexil.v1 import admin_pb2, admin_pb2_grpc


async def _with_streams(address: str, pid: int, streams: int, flags: int) -> dict[str, Any]:
    channels = connections(address)
    calls: list[Any] = []
    try:
        status = await admin_pb2_grpc.AdminServiceStub(channels[0]).GetStatus(admin_pb2.GetStatusRequest())
        held = sum(env.flags for env in status.environments)
        if held != flags:
            raise RuntimeError(f"the server holds {held} flags, not {flags}")
        began = time.monotonic()
        for i in range(0, streams, 100):  # in batches: 1,000 snapshots at once would be one burst
            calls += await open_streams(channels, min(100, streams - i), [f"flag-{(i // 100):04d}"])
        opened = time.monotonic() - began
        await asyncio.sleep(0.5)  # let allocations settle
        return {"rss_streams_mib": rss_kib(pid) / 1024, "streams_open_seconds": opened}
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


def run(
    emulator: Emulator,
    logs: Path,
    *,
    flags: int,
    streams: int,
    run_async: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    table = emulator.create_table("bench-footprint")
    loaded = emulator.put_flags(table, environment(), stored(mix(flags)))
    say(f"  {flags:,} flags written to the emulator in {loaded:.1f} s")
    server = Vexil(
        logs, *dynamo_args(emulator, table), "--cache-maxsize", str(flags), "--heartbeat-seconds", "300"
    )
    began = time.monotonic()
    try:
        server.start(timeout=180)
        start_seconds = time.monotonic() - began
        time.sleep(0.5)
        idle = rss_kib(server.pid) / 1024
        scans = [
            value
            for (name, labels), value in scrape(server.http_port).items()
            if name == "vexil_dynamodb_request_duration_seconds_sum"
            and (("operation", "Scan") in labels or ("operation", "Query") in labels)
        ]
        store_read = sum(scans) if scans else None
        say(f"  SERVING after {start_seconds:.2f} s; RSS {idle:.0f} MiB")
        figures = run_async(_with_streams(server.target, server.pid, streams, flags))
    finally:
        server.stop()
    return {
        "flags": flags,
        "streams": streams,
        "emulator_load_seconds": loaded,
        "start_to_serving_seconds": start_seconds,
        "store_scan_seconds": store_read,
        "rss_idle_mib": idle,
        **figures,
    }
