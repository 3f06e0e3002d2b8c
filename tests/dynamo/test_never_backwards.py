"""Never backwards: replicas whose table is recreated empty under them keep serving their
last-known-good flags, say DEGRADED (GetStatus, /readyz, /metrics, an ERROR naming the table)
until an operator adopts the store's state, and then all switch.  And a Watch resume from a
version written through another replica waits for this replica to catch up instead of failing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import grpc

from tests.support.dynamo import REGION
from tests.support.flags import flag_pb
from tests.support.servers import VEXIL, ServerProcess, dynamodb_replica, started_together
from vexil.store.dynamodb_table import table_spec
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

POLL = "0.5"
FLAGS = ("alpha", "beta", "gamma")
WAIT_S = 20.0
"""Bound on every wait for a condition (a busy shared machine); the condition ends it early."""

ServerStatus = admin_pb2.ServerStatus
WatchEvent = evaluation_pb2.WatchEvent


def http_get(server: ServerProcess, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{server.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def recreate_table(endpoint: str, table: str) -> None:
    """What an operator's mistake looks like: delete the table and create it again, empty."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    try:
        client.delete_table(TableName=table)
        client.get_waiter("table_not_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        client.create_table(**table_spec(table))
        client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    finally:
        client.close()


async def status_of(channel: grpc.aio.Channel) -> admin_pb2.ServerStatus:
    return await admin_pb2_grpc.AdminServiceStub(channel).GetStatus(admin_pb2.GetStatusRequest(), timeout=5)


async def served(channel: grpc.aio.Channel) -> dict[str, int]:
    """Which of FLAGS the replica answers (flag -> config_version of the answer)."""
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    answers = await stub.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=list(FLAGS)), timeout=5)
    return {
        r.flag_key: r.config_version
        for r in answers.results
        if r.error_code != evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
    }


async def until(condition, what: str) -> float:
    """Poll an async condition (bounded by WAIT_S); returns the seconds it took."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > WAIT_S:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_recreated_table_keeps_last_known_good_until_adopted(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    # Both ways of reading the store meet the recreated table: A also reloads fully every second;
    # B keeps the local profile's 60 s reload, longer than any wait here, so only its change-log
    # poll can notice.
    poll = ("--poll-interval", POLL)
    with started_together(
        dynamodb_replica(tmp_path, endpoint, table, *poll, "--cache-ttl", "1"),
        dynamodb_replica(tmp_path, endpoint, table, *poll),
    ) as (a, b):
        async with grpc.aio.insecure_channel(a.target) as ca, grpc.aio.insecure_channel(b.target) as cb:
            admin_a = admin_pb2_grpc.AdminServiceStub(ca)
            for key in FLAGS:
                last = await admin_a.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key, default="on")))
            version = last.config_version
            expected = dict.fromkeys(FLAGS, version)
            for channel in (ca, cb):
                await until(
                    lambda channel=channel: _equal(served(channel), expected), "both replicas serve the flags"
                )

            watch_b = evaluation_pb2_grpc.EvaluationServiceStub(cb).Watch(evaluation_pb2.WatchRequest())
            initial = await asyncio.wait_for(watch_b.read(), WAIT_S)
            assert initial.type == WatchEvent.TYPE_SNAPSHOT and len(initial.flags) == len(FLAGS)

            recreate_table(endpoint, table)
            recreated = time.monotonic()

            for name, server, channel in (("a", a, ca), ("b", b, cb)):

                async def regressed(channel=channel) -> bool:
                    status = await status_of(channel)
                    return status.state == ServerStatus.STATE_DEGRADED and "went backwards" in (
                        status.environments[0].last_error
                    )

                await until(regressed, f"replica {name} reports DEGRADED (store went backwards)")
                print(f"replica {name} DEGRADED {time.monotonic() - recreated:.2f} s after the recreate")
                env_status = (await status_of(channel)).environments[0]
                assert env_status.config_version == version and env_status.flags == len(FLAGS)
                code, body = http_get(server, "/readyz")
                ready = json.loads(body)
                assert code == 200 and ready["status"] == "degraded", body
                assert ready["environments"][0]["regressed"] is True, body
                _, metrics = http_get(server, "/metrics")
                assert 'vexil_store_regressed{environment="local"} 1.0' in metrics
                assert "ERROR" in server.stderr and f"store {table} went backwards" in server.stderr

            # Several polls and full reloads later, both still serve the last-known-good flags.
            await asyncio.sleep(2.5)
            for channel in (ca, cb):
                assert await served(channel) == expected
                assert (await status_of(channel)).state == ServerStatus.STATE_DEGRADED

            adopt = subprocess.run(
                [
                    VEXIL,
                    "dynamodb",
                    "adopt",
                    "--env",
                    "local",
                    "--table",
                    table,
                    "--dynamodb-endpoint",
                    endpoint,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert adopt.returncode == 0, adopt.stderr
            for name, channel in (("a", ca), ("b", cb)):

                async def adopted(channel=channel) -> bool:
                    status = await status_of(channel)
                    env = status.environments[0]
                    return (
                        status.state == ServerStatus.STATE_SERVING
                        and env.config_version == 0
                        and env.flags == 0
                    )

                await until(adopted, f"replica {name} adopts the recreated table")
                assert await served(channel) == {}

            # B's subscriber is handed the adopted state as a fresh snapshot (nothing before it).
            event = await asyncio.wait_for(watch_b.read(), WAIT_S)
            assert (event.type, event.config_version, len(event.flags)) == (WatchEvent.TYPE_SNAPSHOT, 0, 0)
            watch_b.cancel()

            # Adopted means adopted: writes go on from the store's state and every replica serves them.
            change = await admin_a.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("alpha")))
            assert change.config_version == 1
            for channel in (ca, cb):
                await until(
                    lambda channel=channel: _equal(served(channel), {"alpha": 1}), "the new flag is served"
                )


async def _equal(answers, expected: dict[str, int]) -> bool:
    return await answers == expected


async def test_resume_from_a_version_written_through_another_replica(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    # B polls slowly (and A pokes no one), so that the resume below reaches B before its change feed
    # has the write.
    with started_together(
        dynamodb_replica(tmp_path, endpoint, table, "--replica-pokes", "false"),
        dynamodb_replica(tmp_path, endpoint, table, "--poll-interval", "3"),
    ) as (a, b):
        async with grpc.aio.insecure_channel(a.target) as ca, grpc.aio.insecure_channel(b.target) as cb:
            admin_a = admin_pb2_grpc.AdminServiceStub(ca)
            eval_b = evaluation_pb2_grpc.EvaluationServiceStub(cb)
            before = (
                await admin_a.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("seen")))
            ).config_version
            await until(lambda: _equal(_version_of(eval_b), before), "B has the first write")

            # A subscriber saw `seen_at` through A, then A took one more write; it resumes on B.
            seen_at = await admin_a.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("seen", default="on"))
            )
            written = await admin_a.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("seen", default="off"))
            )
            assert await _version_of(eval_b) == before, "B caught up too early to test the wait"
            stream = eval_b.Watch(evaluation_pb2.WatchRequest(since_version=seen_at.config_version))
            first = await asyncio.wait_for(stream.read(), WAIT_S)
            # The resume replays what it missed, as the writing replica would.
            assert (first.type, first.flag_key, first.config_version) == (
                WatchEvent.TYPE_UPSERT,
                "seen",
                written.config_version,
            )
            assert first.flag.default_variant == "off"
            stream.cancel()

            # Resuming exactly at the version just written through A (B may still lack it).
            newer = await admin_a.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("seen", default="on")))
            stream = eval_b.Watch(evaluation_pb2.WatchRequest(since_version=newer.config_version))
            first = await asyncio.wait_for(stream.read(), WAIT_S)
            assert (first.type, first.config_version) == (WatchEvent.TYPE_HEARTBEAT, newer.config_version)
            stream.cancel()

            # Only a version ahead of the store itself is the client's mistake.
            stream = eval_b.Watch(evaluation_pb2.WatchRequest(since_version=newer.config_version + 5))
            started = time.monotonic()
            try:
                await asyncio.wait_for(stream.read(), WAIT_S)
                raise AssertionError("a since_version ahead of the store was accepted")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "since_version" in exc.details()
            assert time.monotonic() - started < 2.0, "refused without waiting for the replica"


async def _version_of(stub: evaluation_pb2_grpc.EvaluationServiceStub) -> int:
    answer = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="seen"), timeout=5)
    return answer.config_version
