"""Change delivery: fan-out to 1,000 Watch subscribers, and propagation between replicas.

Fan-out: 1,000 `Watch` streams (over 10 connections) on one server; each admin write is timed
from the moment the `UpdateFlag` call is made to the moment the *last* subscriber has received
the event.  The floor runs the same client code: its `UpdateFlag` puts the event straight on
every subscriber's queue, so the difference is vexil's write path and hub.  Subscribers read raw
bytes (no decoding while timing: the client's own CPU is part of what is measured, for both
servers alike); every event is decoded and checked after the timing.  Writes are one at a time,
each after the previous one reached everybody, so each figure is one write's fan-out.

Propagation: two replicas on the DynamoDB emulator with the product's change-log poll interval;
writes through A at randomized spacing (so they land at every phase of B's poll), each timed
from the call to the moment B's `Watch` stream delivers it.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import grpc

from bench.load import percentile
from bench.servers import rss_kib
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc, flag_pb2

WATCH = "/vexil.v1.EvaluationService/Watch"
UPDATE = "/vexil.v1.AdminService/UpdateFlag"
CHANNELS = 10
WatchEvent = evaluation_pb2.WatchEvent


def bool_flag(key: str, on: bool) -> flag_pb2.Flag:
    flag = flag_pb2.Flag(key=key, default_variant="on" if on else "off", description="benchmark flag")
    flag.variants["on"].bool_value = True
    flag.variants["off"].bool_value = False
    return flag


def connections(address: str, count: int = CHANNELS) -> list[grpc.aio.Channel]:
    """Separate TCP connections (gRPC would otherwise share one between equal channels)."""
    return [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]


async def open_streams(
    channels: list[grpc.aio.Channel], count: int, flag_keys: list[str], timeout: float = 60.0
) -> list[Any]:
    """`count` Watch streams (raw bytes out), each past its first message (the snapshot)."""
    request = evaluation_pb2.WatchRequest(flag_keys=flag_keys)
    methods = [
        ch.unary_stream(WATCH, request_serializer=evaluation_pb2.WatchRequest.SerializeToString)
        for ch in channels
    ]
    calls = [methods[i % len(methods)](request) for i in range(count)]
    firsts = await asyncio.wait_for(asyncio.gather(*(c.read() for c in calls)), timeout)
    for first in firsts:
        event = WatchEvent.FromString(first)
        if event.type != WatchEvent.TYPE_SNAPSHOT:
            raise RuntimeError(
                f"a Watch stream began with {WatchEvent.Type.Name(event.type)}, not a snapshot"
            )
    return calls


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "count": len(ms),
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1],
        "samples_ms": [round(v, 2) for v in ms],
    }


class Fanout:
    """1,000 subscribers on one server, and timed writes to them (see the module docstring).

    Two of these (floor and vexil) are open at once and their writes alternate, so both see the
    same machine load; idle streams cost nothing while the other server is being measured."""

    def __init__(self, name: str, address: str, pid: int, *, subscribers: int, writes: int) -> None:
        self.name = name
        self.address = address
        self.pid = pid
        self.subscribers = subscribers
        self.writes = writes
        self.channels: list[grpc.aio.Channel] = []
        self.calls: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.received: list[list[bytes]] = []
        self.counts = [0] * writes
        self.done = [asyncio.Event() for _ in range(writes)]
        self.finished_at = [0.0] * writes
        self.delays: list[float] = []
        self.acks: list[float] = []
        self.versions: list[int] = []
        self.rss_idle = self.rss_streams = 0
        self.update: Any = None

    async def open(self, create: bool) -> None:
        self.channels = connections(self.address)
        if create:
            admin = admin_pb2_grpc.AdminServiceStub(self.channels[0])
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=bool_flag("fan", False)), timeout=10)
        self.rss_idle = rss_kib(self.pid)
        self.calls = await open_streams(self.channels, self.subscribers, ["fan"])
        self.rss_streams = rss_kib(self.pid)
        self.received = [[] for _ in self.calls]
        self.readers = [asyncio.create_task(self._read(i, c)) for i, c in enumerate(self.calls)]
        self.update = self.channels[0].unary_unary(
            UPDATE,
            request_serializer=admin_pb2.UpdateFlagRequest.SerializeToString,
            response_deserializer=admin_pb2.FlagResponse.FromString,
        )

    async def _read(self, i: int, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            k = len(self.received[i])
            self.received[i].append(message)
            if k < self.writes:
                self.counts[k] += 1
                if self.counts[k] == len(self.calls):
                    self.finished_at[k] = time.perf_counter()
                    self.done[k].set()

    async def write(self, k: int) -> float:
        """Write number `k`; returns the seconds until the last subscriber had it."""
        began = time.perf_counter()
        request = admin_pb2.UpdateFlagRequest(flag=bool_flag("fan", k % 2 == 0))
        response = await self.update(request, timeout=10)
        self.acks.append(time.perf_counter() - began)
        self.versions.append(response.config_version)
        await asyncio.wait_for(self.done[k].wait(), 30)
        self.delays.append(self.finished_at[k] - began)
        return self.delays[-1]

    def verify(self) -> None:
        """After the timing: every subscriber got every write, in order, as an UPSERT."""
        for messages in self.received:
            events = [WatchEvent.FromString(m) for m in messages[: self.writes]]
            if [e.config_version for e in events] != self.versions or any(
                e.type != WatchEvent.TYPE_UPSERT for e in events
            ):
                raise RuntimeError(f"{self.name}: a subscriber missed, reordered or mistyped a change")

    def figures(self) -> dict[str, Any]:
        return {
            "subscribers": self.subscribers,
            "writes": len(self.delays),
            "publish_to_last": latency_summary(self.delays),
            "write_ack": latency_summary(self.acks),
            "rss_idle_mib": self.rss_idle / 1024,
            "rss_streams_mib": self.rss_streams / 1024,
        }

    async def close(self) -> None:
        for call in self.calls:
            call.cancel()
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


async def fanout(
    servers: dict[str, tuple[str, int, bool]],
    *,
    subscribers: int,
    writes: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """`servers`: name -> (address, pid, whether the flag must be created first)."""
    sessions = {
        name: Fanout(name, address, pid, subscribers=subscribers, writes=writes)
        for name, (address, pid, _) in servers.items()
    }
    try:
        for name, session in sessions.items():
            await session.open(create=servers[name][2])
            say(
                f"  {name}: {subscribers} streams open; RSS {session.rss_idle // 1024} -> "
                f"{session.rss_streams // 1024} MiB"
            )
        for k in range(writes):
            for session in sessions.values():
                await session.write(k)
                await asyncio.sleep(0.05)
        for session in sessions.values():
            session.verify()
        return {name: session.figures() for name, session in sessions.items()}
    finally:
        for session in sessions.values():
            await session.close()


async def propagation(
    writer: str, readers: list[str], *, writes: int, say: Callable[[str], None], receipts: bool = False
) -> dict[str, Any]:
    """Write through replica `writer`, time until each of `readers` delivers each write on its
    Watch stream (p50/p99 over every write and reader): from the write's acknowledgement (the
    write exists; propagation proper) and from sending it (the write's own time included).  With
    `receipts`, also time each write's propagation receipt (WaitForPropagation complete, from
    sending the write)."""
    rng = random.Random(7)
    channels = [grpc.aio.insecure_channel(address) for address in (writer, *readers)]
    admin = admin_pb2_grpc.AdminServiceStub(channels[0])
    watches: list[Any] = []
    try:
        await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=bool_flag("propagated", False)), timeout=10)
        for channel in channels[1:]:
            watch = evaluation_pb2_grpc.EvaluationServiceStub(channel).Watch(
                evaluation_pb2.WatchRequest(flag_keys=["propagated"])
            )
            watches.append(watch)
            # Each reader converges on the created flag first (in its snapshot, or as a change).
            event = await asyncio.wait_for(watch.read(), 15)
            while not (event.flags or event.type == WatchEvent.TYPE_UPSERT):
                event = await asyncio.wait_for(watch.read(), 15)

        arrived: list[dict[int, float]] = [{} for _ in readers]
        started: dict[int, float] = {}
        acked: dict[int, float] = {}

        async def follow(watch: Any, seen: dict[int, float]) -> None:
            while len(seen) < writes or not set(started) <= set(seen):
                e = await watch.read()
                if e is grpc.aio.EOF:
                    return
                if e.type == WatchEvent.TYPE_UPSERT:
                    seen[e.config_version] = time.perf_counter()

        followers = [asyncio.create_task(follow(w, seen)) for w, seen in zip(watches, arrived, strict=True)]
        acks: list[float] = []
        receipt_times: list[float] = []
        incomplete = 0
        for k in range(writes):
            began = time.perf_counter()
            flag = bool_flag("propagated", k % 2 == 0)
            response = await admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag), timeout=10)
            acked[response.config_version] = time.perf_counter()
            acks.append(acked[response.config_version] - began)
            started[response.config_version] = began
            if receipts:
                receipt = await admin.WaitForPropagation(
                    admin_pb2.WaitForPropagationRequest(
                        config_version=response.config_version, timeout_seconds=5
                    ),
                    timeout=10,
                )
                receipt_times.append(time.perf_counter() - began)
                incomplete += not receipt.complete
            await asyncio.sleep(rng.uniform(0.15, 0.35))
        try:
            await asyncio.wait_for(asyncio.gather(*followers), 20)
        except TimeoutError:
            missing = sorted({v for seen in arrived for v in set(started) - set(seen)})
            raise RuntimeError(f"a replica never delivered config versions {missing[:10]}") from None
        delays = [seen[v] - began for seen in arrived for v, began in started.items()]
        after_ack = [seen[v] - at for seen in arrived for v, at in acked.items()]
        say(
            f"  {writes} writes through one replica reached {len(readers)} others: "
            f"p50 {statistics.median(after_ack) * 1000:.0f} ms after the ack"
        )
        result = {
            "writes": writes,
            "replicas": len(readers) + 1,
            "ack_to_other_replica": latency_summary(after_ack),
            "write_to_other_replica": latency_summary(delays),
            "write_ack": latency_summary(acks),
        }
        if receipts:
            result["receipt"] = {**latency_summary(receipt_times), "incomplete": incomplete}
        return result
    finally:
        for watch in watches:
            watch.cancel()
        for channel in channels:
            await channel.close()
