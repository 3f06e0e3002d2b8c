"""The change log's retention, on both stores: a bound on entries and an age (DynamoDB: the
`expiresAt` TTL attribute).  A reader resuming from before the retention is told so (the first
entry is not `since + 1`) and a Watch gets a snapshot: never a silent gap.

The emulator never expires TTL items, so age is tested by moving an entry's `expiresAt` into the
past with plain boto3 (what DynamoDB's TTL process would find) and the bound by writing past it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.flags import flag_pb
from tests.support.servers import connected, running_app, server_settings
from vexil.model import Flag
from vexil.store.base import FlagStore
from vexil.store.dynamodb import DynamoStore
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2

ENV = "local"
WatchEvent = evaluation_pb2.WatchEvent


@pytest.fixture(params=["memory", "dynamodb"])
async def bounded(request: pytest.FixtureRequest) -> AsyncIterator[FlagStore]:
    """A store of each backend keeping at most 3 change-log entries."""
    if request.param == "memory":
        store: FlagStore = MemoryStore(max_changes=3)
    else:
        endpoint_url, table = request.getfixturevalue("dynamo_table")
        store = DynamoStore(table, endpoint_url=endpoint_url, max_changes=3)
    await store.start()
    yield store
    await store.close()


def flag(key: str) -> Flag:
    return Flag(key=key, environment=ENV, variants={"on": True, "off": False}, default_variant="off")


async def versions_when(store: FlagStore, since: int, first: int, timeout: float = 10.0) -> list[int]:
    """The log after `since` once its first entry is `first` (a trim runs after the write)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c.config_version for c in await store.list_changes(ENV, since_version=since)]
        if (found and found[0] == first) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_the_log_keeps_its_newest_entries_and_says_when_older_ones_are_gone(bounded: FlagStore) -> None:
    for i in range(6):
        await bounded.create_flag(flag(f"f{i}"), actor="t")
    assert await versions_when(bounded, 0, first=4) == [4, 5, 6]  # not 1: "changes since 0 are gone"
    assert await versions_when(bounded, 3, first=4) == [4, 5, 6]  # the retained range still resumes
    assert await bounded.list_changes(ENV, since_version=6) == []


async def test_memory_log_forgets_entries_older_than_its_retention() -> None:
    store = MemoryStore(change_retention=0.5)
    await store.create_flag(flag("old"), actor="t")
    await asyncio.sleep(0.6)
    await store.create_flag(flag("new"), actor="t")
    assert [c.config_version for c in await store.list_changes(ENV)] == [2]


async def test_change_items_carry_their_ttl(dynamo_table: tuple[str, str], raw: Any) -> None:
    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, change_retention=86_400)
    await store.start()
    try:
        change = await store.create_flag(flag("a"), actor="t")
    finally:
        await store.close()
    key = {"PK": {"S": f"ENV#{ENV}"}, "SK": {"S": "CHANGE#000000000001"}}
    item = raw.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert change.timestamp + 86_400 <= int(item["expiresAt"]["N"]) <= change.timestamp + 86_400 + 1


async def test_expired_entries_are_gone_for_readers_before_dynamodb_deletes_them(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url)
    await store.start()
    try:
        for i in range(5):
            await store.create_flag(flag(f"f{i}"), actor="t")

        def expire(version: int) -> None:
            raw.update_item(
                TableName=table,
                Key={"PK": {"S": f"ENV#{ENV}"}, "SK": {"S": f"CHANGE#{version:012d}"}},
                UpdateExpression="SET expiresAt = :past",
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
            )

        expire(1)
        expire(2)
        assert [c.config_version for c in await store.list_changes(ENV)] == [3, 4, 5]
        expire(4)  # out of order (clocks differ between writers): still never a silent gap
        assert [c.config_version for c in await store.list_changes(ENV, since_version=2)] == [3]
        assert [c.config_version for c in await store.list_changes(ENV, since_version=3)] == [5]
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["memory", "dynamodb"])
async def test_watch_resuming_from_before_the_retention_gets_a_snapshot(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Through the settings a server is started with (`change_log_max_entries`)."""
    options: dict[str, Any] = {"change_log_max_entries": 3}
    if backend == "dynamodb":
        endpoint_url, table = request.getfixturevalue("dynamo_table")
        options |= {"store": "dynamodb", "dynamodb_endpoint": endpoint_url, "dynamodb_table": table}
    async with running_app(server_settings(**options)) as app, connected(app) as conn:
        for i in range(6):
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(f"f{i}")))
        store = app.service.store
        assert await versions_when(store, 0, first=4) == [4, 5, 6]
        stream = conn.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=1))
        event = await asyncio.wait_for(stream.read(), 10)
        assert event.type == WatchEvent.TYPE_SNAPSHOT and event.reason.startswith("resume-unavailable")
        assert sorted(f.key for f in event.flags) == [f"f{i}" for i in range(6)]
        assert event.config_version == 6
        stream.cancel()
        # Within the retention, the changes themselves.
        stream = conn.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=4))
        events = [await asyncio.wait_for(stream.read(), 10) for _ in range(2)]
        assert [(e.type, e.config_version) for e in events] == [
            (WatchEvent.TYPE_UPSERT, 5),
            (WatchEvent.TYPE_UPSERT, 6),
        ]
        stream.cancel()


async def test_create_table_enables_ttl_and_describe_reports_the_change_log(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    from vexil.store.dynamodb_table import create_table, describe_table

    endpoint_url, _ = dynamo_table
    created = await create_table("feature-flags-ttl", endpoint_url=endpoint_url)
    assert created["ttl"] == {"status": "ENABLED", "attribute": "expiresAt"}
    ttl = raw.describe_time_to_live(TableName="feature-flags-ttl")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    store = DynamoStore("feature-flags-ttl", endpoint_url=endpoint_url, max_changes=3)
    await store.start()
    try:
        for i in range(5):
            await store.create_flag(flag(f"f{i}"), actor="t")
        await versions_when(store, 0, first=3)
    finally:
        await store.close()
    retention = {"retentionSeconds": 86_400.0, "maxEntries": 3}
    described = await describe_table(
        "feature-flags-ttl", endpoint_url=endpoint_url, environment=ENV, retention=retention
    )
    assert described["changeLog"] == {
        "environment": ENV,
        "entries": 3,
        "oldestVersion": 3,
        "newestVersion": 5,
        "ignored": 0,
        "retentionSeconds": 86_400.0,
        "maxEntries": 3,
    }


@pytest.mark.parametrize(("name", "value"), [("change_log_retention", "0"), ("change_log_max_entries", "0")])
def test_retention_settings_are_validated(name: str, value: str) -> None:
    from vexil import config

    with pytest.raises(config.ConfigError, match=name):
        config.load(environ={f"VEXIL_{name.upper()}": value})


async def test_describe_command_reports_the_change_log_and_its_retention(
    dynamo_table: tuple[str, str],
) -> None:
    """`vexil dynamodb describe --env E` with the retention settings a server would run with."""
    from tests.support.ops import vexil

    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, max_changes=3)
    await store.start()
    try:
        for i in range(5):
            await store.create_flag(flag(f"f{i}"), actor="t")
        assert await versions_when(store, 0, first=3) == [3, 4, 5]
    finally:
        await store.close()
    where = ["--env", ENV, "--table", table, "--dynamodb-endpoint", endpoint_url]
    settings = {"VEXIL_CHANGE_LOG_RETENTION": "3600", "VEXIL_CHANGE_LOG_MAX_ENTRIES": "3"}
    described = await vexil("dynamodb", "describe", *where, "--json", env=settings)
    assert json.loads(described.out)["changeLog"] == {
        "environment": ENV,
        "entries": 3,
        "oldestVersion": 3,
        "newestVersion": 5,
        "ignored": 0,
        "retentionSeconds": 3600.0,
        "maxEntries": 3,
    }, described.out + described.err
    text = await vexil("dynamodb", "describe", *where, env=settings)
    assert "change log   local: 3 entries (versions 3-5), kept 3600 s, at most 3 entries" in text.out


async def test_a_replica_whose_log_was_trimmed_past_its_version_reloads(
    dynamo_table: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A replica that polls after the entries following its version are gone takes the whole
    state (and tells its subscribers to resync) instead of applying the rest over a gap."""
    endpoint_url, table = dynamo_table
    writer = DynamoStore(table, endpoint_url=endpoint_url, max_changes=3)
    await writer.start()
    # The replica polls every 5 s: the writes below and their trims land between two polls.
    options = {"store": "dynamodb", "dynamodb_endpoint": endpoint_url, "dynamodb_table": table}
    try:
        async with running_app(server_settings(poll_interval=5.0, **options)) as app, connected(app) as conn:
            await writer.create_flag(flag("f0"), actor="t")
            stream = conn.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=0))
            first = await asyncio.wait_for(stream.read(), 10)
            while first.config_version < 1:  # the replica's poll brings version 1
                first = await asyncio.wait_for(stream.read(), 10)
            await asyncio.sleep(1.0)  # and its first full reload, in the same poll, ends
            for i in range(1, 7):
                await writer.create_flag(flag(f"f{i}"), actor="t")
            assert await versions_when(writer, 0, first=5) == [5, 6, 7]  # 2-4 trimmed
            event = await asyncio.wait_for(stream.read(), 10)
            while event.type == WatchEvent.TYPE_HEARTBEAT:
                event = await asyncio.wait_for(stream.read(), 10)
            assert (event.type, event.config_version) == (WatchEvent.TYPE_SNAPSHOT, 7), event
            assert sorted(f.key for f in event.flags) == [f"f{i}" for i in range(7)]
            stream.cancel()
            answers = await conn.evaluation.EvaluateAll(
                evaluation_pb2.EvaluateAllRequest(flag_keys=[f"f{i}" for i in range(7)])
            )
            assert all(r.error_code == evaluation_pb2.ERROR_CODE_UNSPECIFIED for r in answers.results)
    finally:
        await writer.close()
    assert "no longer reaches our version" in caplog.text
