"""The replica registry in each store: records expire on their own, readers ignore an expired one
the store still holds (DynamoDB's TTL deletion lags), and a registry write is not flag data."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.support.flags import flag_model
from vexil.store.base import FlagStore
from vexil.store.memory import MemoryStore
from vexil.store.replicas import ReplicaRecord


@pytest.fixture(params=["memory", "dynamodb"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[FlagStore]:
    if request.param == "memory":
        found: FlagStore = MemoryStore()
    else:
        from vexil.store.dynamodb import DynamoStore

        endpoint, table = request.getfixturevalue("dynamo_table")
        found = DynamoStore(table, endpoint_url=endpoint)
    await found.start()
    try:
        yield found
    finally:
        await found.close()


def record(
    replica_id: str, *, version: int = 0, expires_in: float = 30.0, env: str = "local"
) -> ReplicaRecord:
    now = time.time()
    return ReplicaRecord(
        replica_id=replica_id,
        environment=env,
        address=f"10.0.0.{len(replica_id)}:50051",
        config_version=version,
        last_seen_unix=now,
        expires_at_unix=int(now + expires_in),
    )


async def test_live_records_are_listed_per_environment(store: FlagStore) -> None:
    await store.put_replica(record("a", version=3))
    await store.put_replica(record("b", version=2))
    await store.put_replica(record("c", version=9, env="staging"))
    await store.put_replica(record("a", version=4))  # a heartbeat replaces the record
    found = await store.list_replicas("local")
    assert [(r.replica_id, r.config_version, r.address) for r in found] == [
        ("a", 4, "10.0.0.1:50051"),
        ("b", 2, "10.0.0.1:50051"),
    ]
    assert [r.replica_id for r in await store.list_replicas("staging")] == ["c"]


async def test_a_record_past_its_expiry_is_not_listed_though_still_stored(store: FlagStore) -> None:
    await store.put_replica(record("alive"))
    await store.put_replica(record("dead", expires_in=-5))  # TTL deletion has not happened yet
    assert [r.replica_id for r in await store.list_replicas("local")] == ["alive"]


async def test_a_replica_leaving_is_gone_at_once(store: FlagStore) -> None:
    await store.put_replica(record("a"))
    await store.put_replica(record("b"))
    await store.delete_replica("local", "a")
    await store.delete_replica("local", "never-there")
    assert [r.replica_id for r in await store.list_replicas("local")] == ["b"]


async def test_registry_writes_bump_no_config_version_and_log_no_change(store: FlagStore) -> None:
    await store.create_flag(flag_model("f"), actor="test")
    before = await store.stored_config_version("local")
    for n in range(5):
        await store.put_replica(record(f"r{n}", version=before))
    await store.delete_replica("local", "r0")
    assert await store.stored_config_version("local") == before == 1
    assert [c.config_version for c in await store.list_changes("local")] == [1]
    env, flags = await store.load_environment("local")
    assert env.config_version == 1 and [f.key for f in flags] == ["f"]
