"""No acknowledged write is lost: racing writers through two replicas, one of them killed with
SIGKILL mid-run and restarted.

Ten writers share a few flags and write through both `vexil serve --store dynamodb` replicas the
way a client would: read the flag, create it or update it with the version read as the expected
version, and on ABORTED / ALREADY_EXISTS / FAILED_PRECONDITION read again and retry.  A write on
the killed replica that got no answer may or may not have landed; every write that got an answer
must be in the flag's history exactly once, at the acknowledged version and config_version, with
its own content.  The change log must number 1..N with no gap or duplicate, and both replicas must
end serving the same config_version and values.

Runs on the suite's single-threaded emulator (`tests/support/moto_single.py`): moto's threaded
server loses concurrent transactions itself, so a loss seen here is vexil's.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass

import grpc

from tests.support.calls import eventually
from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess, dynamodb_replica, started_together
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

WRITERS = 10
KEYS = ("race-a", "race-b", "race-c")
MAX_ACKS = 400
"""The run stops after this many acknowledged writes ..."""
KILL_AFTER = 4.0
AFTER_RESTART = 4.0
"""... or once the restarted replica has served this long and acknowledged `RESTARTED_ACKS`
writes, or at most `AFTER_RESTART_MAX` after its restart."""
RESTARTED_ACKS = 5
AFTER_RESTART_MAX = 15.0
THINK = 0.1
"""Most a writer waits between writes (a client does other work too; it spreads the load)."""
RETRY = (grpc.StatusCode.ABORTED, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)
"""Answers that mean "someone else won; read again": a client retries them."""
GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
"""Answers of a dead or restarting replica (or its unreachable store): try the other one."""
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass(frozen=True)
class Ack:
    key: str
    version: int
    config_version: int
    tag: str
    """The write's own content (its description), unique per attempt."""
    replica: int


class Replicas:
    """The two replicas' stubs by index; the channels reconnect to a restarted replica's port."""

    def __init__(self, targets: list[str]) -> None:
        self.channels = [grpc.aio.insecure_channel(t, options=CHANNEL_OPTIONS) for t in targets]
        self.admin = [admin_pb2_grpc.AdminServiceStub(c) for c in self.channels]
        self.evaluation = [evaluation_pb2_grpc.EvaluationServiceStub(c) for c in self.channels]

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


async def writer(n: int, replicas: Replicas, acks: list[Ack], stop: asyncio.Event, stats: dict) -> None:
    """Write until told to stop: one attempt at a time, as a client retrying on races, through
    each replica in turn (a client behind a load balancer)."""
    rng = random.Random(n)
    attempt = 0
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0, THINK))
        key = rng.choice(KEYS)
        attempt += 1
        target = (n + attempt) % 2
        tag = f"writer-{n}-attempt-{attempt}"
        admin = replicas.admin[target]
        try:
            try:
                current = await admin.GetFlag(admin_pb2.GetFlagRequest(key=key), timeout=5)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                flag = flag_pb(key, default="on" if attempt % 2 else "off", description=tag)
                resp = await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag), timeout=10)
            else:
                flag = flag_pb(key, default="on" if attempt % 2 else "off", description=tag)
                resp = await admin.UpdateFlag(
                    admin_pb2.UpdateFlagRequest(flag=flag, expected_version=current.version), timeout=10
                )
            acks.append(Ack(key, resp.flag.version, resp.config_version, tag, target))
            if len(acks) >= MAX_ACKS:
                stop.set()
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRY:
                stats["raced"] += 1
            elif exc.code() in GONE:
                stats["gone"] += 1
            else:
                raise


async def change_log(admin: admin_pb2_grpc.AdminServiceStub) -> list:
    changes, since = [], 0
    for _ in range(1000):  # bounded: 1000 pages of 1000
        page = await admin.ListChanges(admin_pb2.ListChangesRequest(since_version=since, page_size=1000))
        if not page.changes:
            return changes
        changes.extend(page.changes)
        since = page.changes[-1].config_version
    raise AssertionError("change log did not end")


async def history(admin: admin_pb2_grpc.AdminServiceStub, key: str) -> list:
    revisions, token = [], ""
    for _ in range(1000):
        page = await admin.GetFlagHistory(
            admin_pb2.GetFlagHistoryRequest(key=key, page_size=1000, page_token=token)
        )
        revisions.extend(page.revisions)
        token = page.next_page_token
        if not token:
            return revisions
    raise AssertionError("history did not end")


async def test_no_acknowledged_write_is_lost_across_replicas_and_a_kill(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    fast = ("--poll-interval", "0.5")
    began = time.monotonic()
    with started_together(
        dynamodb_replica(tmp_path, endpoint, table, *fast),
        dynamodb_replica(tmp_path, endpoint, table, *fast),
    ) as (a, b):
        replicas = Replicas([a.target, b.target])
        acks: list[Ack] = []
        stats = {"raced": 0, "gone": 0}
        stop = asyncio.Event()
        tasks = [asyncio.create_task(writer(n, replicas, acks, stop, stats)) for n in range(WRITERS)]
        restarted = ServerProcess(tmp_path, *a.args[a.args.index("--host") :], port=a.port)
        try:
            await asyncio.sleep(KILL_AFTER)
            acks_before_kill = len(acks)
            a.signal(signal.SIGKILL)
            await asyncio.to_thread(a.wait, 10)
            await asyncio.to_thread(restarted.start)
            acks_at_restart, restarted_at = len(acks), time.monotonic() - began
            for _ in range(int(AFTER_RESTART_MAX / 0.1)):  # bounded by count and time
                served = time.monotonic() - began - restarted_at
                through_a = sum(1 for x in acks[acks_at_restart:] if x.replica == 0)
                if stop.is_set() or (served >= AFTER_RESTART and through_a >= RESTARTED_ACKS):
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)

            after_restart = [x for x in acks[acks_at_restart:] if x.replica == 0]
            print(
                f"{len(acks)} acknowledged writes ({acks_before_kill} before the kill, "
                f"{len(after_restart)} through the restarted replica, serving again at "
                f"{restarted_at:.1f} s), {stats['raced']} lost races retried, {stats['gone']} "
                f"UNAVAILABLE answers, {time.monotonic() - began:.1f} s"
            )
            assert acks_before_kill > 0 and after_restart, "the run did not write through both lives of A"
            assert stats["raced"] > 0, "the writers never raced each other"
            await check_nothing_lost(replicas, acks)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await replicas.close()
            restarted.stop()


async def check_nothing_lost(replicas: Replicas, acks: list[Ack]) -> None:
    admin = replicas.admin[1]
    changes = await change_log(admin)
    numbers = [c.config_version for c in changes]
    assert numbers == list(range(1, len(changes) + 1)), "change log has a gap or a duplicate"
    by_number = {c.config_version: c for c in changes}

    acked = {(x.key, x.version) for x in acks}
    assert len(acked) == len(acks), "one flag version was acknowledged to two writers"
    assert len({x.config_version for x in acks}) == len(acks), "one config_version acknowledged twice"

    revisions = {key: await history(admin, key) for key in KEYS}
    for key, found in revisions.items():
        versions = sorted(r.flag.version for r in found)
        assert versions == list(range(1, len(versions) + 1)), f"history of {key} has a gap or duplicate"
    logged = sorted((c.flag_key, c.after_version) for c in changes)
    assert logged == sorted((k, r.flag.version) for k, rs in revisions.items() for r in rs), (
        "change log and histories disagree"
    )
    for ack in acks:
        matching = [r for r in revisions[ack.key] if r.flag.version == ack.version]
        assert len(matching) == 1, f"acknowledged {ack} appears {len(matching)} times in history"
        assert matching[0].flag.description == ack.tag, f"{ack} was overwritten by another write"
        assert matching[0].config_version == ack.config_version
        change = by_number[ack.config_version]
        assert (change.flag_key, change.after_version) == (ack.key, ack.version)

    last = len(changes)

    async def converged():
        states = []
        for stub, evaluation in zip(replicas.admin, replicas.evaluation, strict=True):
            status = await stub.GetStatus(admin_pb2.GetStatusRequest())
            values = []
            for key in KEYS:
                res = await evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))
                values.append((key, res.flag_version, res.variant, res.bool_value))
            states.append((status.environments[0].config_version, values))
        return states if states[0] == states[1] and states[0][0] == last else None

    states = await eventually(converged, timeout=15, interval=0.2)
    assert states, "the replicas did not converge on the last config_version and the same values"
    for key, version, _variant, _value in states[0][1]:
        assert version == max(r.flag.version for r in revisions[key])
