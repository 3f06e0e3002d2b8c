"""Three real `vexil serve` replicas on one emulator table: the registry lists them with their
applied versions, a dead replica leaves it within its expiry, receipts say k of n and who lags,
and `vexil flags kill --wait` returns only once every replica serves the kill."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.fleet import own_id, replicas, served_version, status, wait_until
from tests.support.servers import VEXIL, ServerProcess, dynamodb_replica, started_together
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

FAST = ("--replica-heartbeat", "0.5", "--replica-expiry", "2")
"""A short registry expiry, so a test sees a dead replica leave in seconds."""


@contextlib.contextmanager
def fleet(tmp: Path, endpoint: str, table: str, *extra: tuple[str, ...]) -> Iterator[list[ServerProcess]]:
    """Replicas on one table, each with its own extra arguments (started together)."""
    with started_together(*(dynamodb_replica(tmp, endpoint, table, *args) for args in extra)) as replicas:
        yield list(replicas)


async def create(target: str, key: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        response = await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key)), timeout=10)
        return response.config_version


async def test_status_lists_every_live_replica_with_its_applied_version(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    with fleet(tmp_path, endpoint, table, FAST, FAST, FAST) as (a, b, c):
        ids = [await own_id(r.target) for r in (a, b, c)]
        assert len(set(ids)) == 3
        version = await create(a.target, "listed")
        for replica in (a, b, c):
            await wait_until(lambda r=replica: served_version(r.target, "listed"), 10, "replicated")

        async def all_applied() -> bool:
            listed = replicas(await status(c.target))
            return set(listed) == set(ids) and all(r.config_version == version for r in listed.values())

        await wait_until(all_applied, 5, "C lists A, B and C at the new version")
        listed = replicas(await status(c.target))
        assert {r.address for r in listed.values()} == {a.target, b.target, c.target}
        assert [r.id for r in listed.values() if r.self] == [ids[2]]
        assert all(r.lag == 0 and r.last_seen_seconds < 2 for r in listed.values())
        # Quiet for twice the expiry: the heartbeat alone keeps every live replica listed.
        await asyncio.sleep(4.0)
        listed = replicas(await status(a.target))
        assert set(listed) == set(ids)
        assert all(r.last_seen_seconds < 1.5 for r in listed.values()), listed


async def test_a_killed_replica_drops_out_of_the_registry_within_its_expiry(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    with fleet(tmp_path, endpoint, table, FAST, FAST, FAST) as (a, b, c):
        gone = await own_id(c.target)
        await wait_until(lambda: _lists(a.target, gone), 5, "A lists C before it dies")
        assert c.proc is not None
        c.proc.send_signal(signal.SIGKILL)  # no goodbye: only the expiry can remove it
        c.proc.wait(10)
        killed = time.monotonic()
        assert await _lists(a.target, gone), "a dead replica vanished before its expiry: not the expiry"
        # The time of the last answer that still listed C (asked before a slow answer came back),
        # so a loaded machine's slow answers cannot stretch what is measured.
        listed_at = killed
        while True:
            asked = time.monotonic()
            if not await _lists(a.target, gone):
                break
            listed_at = asked
            assert asked - killed < 6, "C never left A's registry"
            await asyncio.sleep(0.05)
        took = listed_at - killed
        print(f"killed replica last listed {took:.2f} s after the kill (expiry 2 s, heartbeat 0.5 s)")
        assert took <= 2.0 + 1.0, took  # expiry, plus the second the TTL attribute is rounded up to
        # B, stopped on purpose, removes its record as it goes: gone from the table at once.
        stopped = await own_id(b.target)
        assert stopped in _stored_ids(endpoint, table)
        b.stop()
        assert stopped not in _stored_ids(endpoint, table)


def _stored_ids(endpoint: str, table: str) -> set[str]:
    """The replica ids the table holds registry items of (expired or not)."""
    client = boto3.client("dynamodb", region_name="ap-northeast-1", endpoint_url=endpoint)
    try:
        items = client.query(
            TableName=table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :r)",
            ExpressionAttributeValues={":pk": {"S": "ENV#local"}, ":r": {"S": "REPLICA#"}},
            ConsistentRead=True,
        )["Items"]
    finally:
        client.close()
    return {item["replicaId"]["S"] for item in items}


async def _lists(target: str, replica_id: str) -> bool:
    return replica_id in replicas(await status(target))


async def _not_lists(target: str, replica_id: str) -> bool:
    return not await _lists(target, replica_id)


async def test_a_receipt_with_a_laggard_says_k_of_n_and_who_lags(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    # C polls once a minute and A sends no pokes: C cannot learn of A's write within the wait.
    slow = ("--poll-interval", "60", "--cache-ttl", "600")
    with fleet(tmp_path, endpoint, table, ("--replica-pokes", "false"), (), slow) as (a, _b, c):
        laggard = await own_id(c.target)
        await wait_until(lambda: _lists(a.target, laggard), 5, "A lists C")
        version = await create(a.target, "lagging")
        async with grpc.aio.insecure_channel(a.target) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            started = time.monotonic()
            receipt = await admin.WaitForPropagation(
                admin_pb2.WaitForPropagationRequest(config_version=version, timeout_seconds=1.5), timeout=10
            )
            waited = time.monotonic() - started
        assert not receipt.complete
        assert (receipt.applied, receipt.total) == (2, 3)
        assert list(receipt.laggards) == [laggard]
        behind = {r.id: r for r in receipt.replicas}[laggard]
        assert behind.config_version == version - 1 and behind.lag == 1
        assert 1.5 <= waited < 5, waited
        assert await served_version(c.target, "lagging") == 0  # it really had not applied it

        # Asked of the laggard itself, the version is one the store has: a receipt, not a refusal.
        # A version the store never reached is the caller's mistake, not lag to wait out.
        async with grpc.aio.insecure_channel(c.target) as channel:
            wait = admin_pb2_grpc.AdminServiceStub(channel).WaitForPropagation
            receipt = await wait(
                admin_pb2.WaitForPropagationRequest(config_version=version, timeout_seconds=0.2), timeout=10
            )
            assert not receipt.complete and laggard in receipt.laggards
            for ahead in (version + 1, 2**64 - 1):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await wait(admin_pb2.WaitForPropagationRequest(config_version=ahead), timeout=10)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert f"ahead of the environment's config_version {version}" in (
                    refused.value.details() or ""
                )


async def test_a_replica_gone_silent_is_a_laggard_not_left_out(tmp_path, dynamo_table) -> None:
    """A replica cut off from the table keeps serving what it has, and its registry record
    expires.  A receipt once answered complete ("applied by 2/2") while that replica still
    served the old state; it must name it a laggard until it comes back (here it is frozen,
    which from outside looks the same), and count it again once it has caught up."""
    endpoint, table = dynamo_table
    with fleet(tmp_path, endpoint, table, FAST, FAST, FAST) as (a, _b, c):
        silent = await own_id(c.target)
        await wait_until(lambda: _lists(a.target, silent), 5, "A lists C")
        assert c.proc is not None
        c.proc.send_signal(signal.SIGSTOP)
        try:
            await wait_until(lambda: _not_lists(a.target, silent), 10, "C's record expires")
            version = await create(a.target, "while-silent")
            async with grpc.aio.insecure_channel(a.target) as channel:
                receipt = await admin_pb2_grpc.AdminServiceStub(channel).WaitForPropagation(
                    admin_pb2.WaitForPropagationRequest(config_version=version, timeout_seconds=1),
                    timeout=10,
                )
            assert not receipt.complete
            assert (receipt.applied, receipt.total, list(receipt.laggards)) == (2, 3, [silent])
            assert {r.id: r for r in receipt.replicas}[silent].config_version < version
        finally:
            c.proc.send_signal(signal.SIGCONT)
        async with grpc.aio.insecure_channel(a.target) as channel:
            receipt = await admin_pb2_grpc.AdminServiceStub(channel).WaitForPropagation(
                admin_pb2.WaitForPropagationRequest(config_version=version, timeout_seconds=10), timeout=15
            )
        assert receipt.complete and (receipt.applied, receipt.total) == (3, 3)


def vexil(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VEXIL, *args, "--target", target], capture_output=True, text=True, timeout=60)


async def test_kill_with_wait_returns_after_every_replica_applied_it(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    with fleet(tmp_path, endpoint, table, (), (), ()) as (a, b, c):
        await create(a.target, "checkout")
        for replica in (b, c):
            await wait_until(lambda r=replica: served_version(r.target, "checkout"), 10, "replicated")
        await wait_until(lambda: _counts(a.target, 3), 10, "A lists three replicas")
        done = await asyncio.to_thread(
            vexil, a.target, "flags", "kill", "checkout", "--reason", "incident 42", "--wait"
        )
        assert done.returncode == 0, done.stderr
        found = re.search(r"applied by (\d+)/(\d+) replicas in (\d+) ms", done.stdout)
        assert found is not None, done.stdout
        assert found.group(1) == found.group(2) == "3", done.stdout
        print(done.stdout.strip())
        # The receipt is the proof: the moment it returns, every replica answers DISABLED.
        for replica in (a, b, c):
            async with grpc.aio.insecure_channel(replica.target) as channel:
                stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
                answer = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="checkout"), timeout=5)
                assert answer.reason == evaluation_pb2.REASON_DISABLED, (replica.target, answer)


async def _counts(target: str, n: int) -> bool:
    return len(replicas(await status(target))) == n
