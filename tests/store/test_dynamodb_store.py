"""DynamoDB-specific behaviour on the emulator: item layout, hand-written items, races, limits,
unreachable endpoints and the operator commands.

Items are written and inspected with plain boto3 here on purpose: that is what an operator
following the operations guide (or the AWS CLI) does, independently of vexil's own code.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from tests.support import dynamo
from tests.support.flags import flag_model
from vexil.engine import ErrorCode, Reason
from vexil.errors import Conflict, FailedPrecondition, InvalidArgument, Unavailable
from vexil.model import ChangeKind
from vexil.snapshot import Snapshot
from vexil.store.dynamodb import DynamoStore
from vexil.store.dynamodb_table import GSI2_NAME, create_table, describe_table
from vexil.store.records import MAX_ITEM_BYTES

ENV = "staging"


def guide_item(key: str, *, default_enabled: bool, owner: str = "dev-team", env: str = ENV) -> dict[str, Any]:
    """Exactly the operations guide's `aws dynamodb put-item` example."""
    return dynamo.guide_item(key, env, default_enabled=default_enabled, owner=owner)


flag = partial(flag_model, environment=ENV)


def metadata_key(key: str) -> dict[str, Any]:
    return {"PK": {"S": f"FLAG#{ENV}#{key}"}, "SK": {"S": "METADATA"}}


def all_items(raw: Any, table: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = raw.scan(**kwargs)
        found.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- item layout --------------------------------------------------------------------------


async def test_items_follow_the_single_table_design(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    await dstore.create_flag(
        flag(
            "new-feature",
            owner="dev-team",
            description="d",
            variants={"on": True, "off": False},
            default="on",
            metadata={"n": 1, "f": 1.0},
        ),
        actor="alice",
    )
    item = raw.get_item(TableName=table, Key=metadata_key("new-feature"), ConsistentRead=True)["Item"]
    assert item["flagKey"] == {"S": "new-feature"}
    assert item["owner"] == {"S": "dev-team"} and item["description"] == {"S": "d"}
    assert item["defaultEnabled"] == {"BOOL": True}
    assert item["createdAt"]["S"].endswith("Z") and "T" in item["createdAt"]["S"]
    assert item["version"] == {"N": "1"}
    assert (item["GSI1PK"], item["GSI1SK"]) == ({"S": "ENV#staging"}, {"S": "FLAG#new-feature"})
    assert (item["GSI2PK"], item["GSI2SK"]) == ({"S": "OWNER#staging#dev-team"}, {"S": "FLAG#new-feature"})
    assert item["metadata"] == {"S": '{"n":1,"f":1.0}'}  # JSON text keeps 1 and 1.0 apart
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in all_items(raw, table)}
    assert keys == {
        ("FLAG#staging#new-feature", "METADATA"),
        ("FLAG#staging#new-feature", "VERSION#000000000001"),
        ("ENV#staging", "METADATA"),
        ("ENV#staging", "CHANGE#000000000001"),
    }
    # The guide's own owner query finds it.
    found = raw.query(
        TableName=table,
        IndexName=GSI2_NAME,
        KeyConditionExpression="GSI2PK = :o",
        ExpressionAttributeValues={":o": {"S": "OWNER#staging#dev-team"}},
    )["Items"]
    assert [i["flagKey"]["S"] for i in found] == ["new-feature"]


# --- items provisioned by hand ----------------------------------------------------------


async def test_hand_written_items_are_served_as_boolean_flags(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("new-feature", default_enabled=False))
    raw.put_item(TableName=table, Item=guide_item("old-feature", default_enabled=True, owner="ops"))
    raw.put_item(TableName=table, Item=guide_item("elsewhere", default_enabled=True, env="prod"))
    fetched = await dstore.get_flag(ENV, "new-feature")
    assert fetched is not None
    assert fetched.variants == {"on": True, "off": False} and fetched.default_variant == "off"
    assert fetched.version == 1 and fetched.enabled
    assert fetched.owner == "dev-team" and fetched.description == "New development feature"
    assert fetched.created_at == fetched.updated_at > 1.7e9
    # A full load finds them (and indexes them); listings, which read the index, list them then.
    environment, flags = await dstore.load_environment(ENV)
    assert environment.config_version == 0
    listed = await dstore.list_flags(ENV)
    assert [(f.key, f.default_variant) for f in listed.items] == [
        ("new-feature", "off"),
        ("old-feature", "on"),
    ]
    assert [f.key for f in (await dstore.list_flags(ENV, owner="ops")).items] == ["old-feature"]
    assert flags == listed.items


async def test_hand_written_item_can_be_updated_and_keeps_its_origin_in_history(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("new-feature", default_enabled=False))
    original = await dstore.get_flag(ENV, "new-feature")
    assert original is not None
    with pytest.raises(Conflict) as caught:
        await dstore.update_flag(flag("new-feature", default="on"), expected_version=2, actor="bob")
    assert caught.value.current_version == 1
    change = await dstore.update_flag(
        flag("new-feature", default="on", owner="dev-team"), expected_version=1, actor="bob"
    )
    assert (change.before_version, change.after_version, change.config_version) == (1, 2, 1)
    updated = await dstore.get_flag(ENV, "new-feature")
    assert updated is not None and updated.version == 2 and updated.default_variant == "on"
    assert updated.created_at == original.created_at
    history = await dstore.get_history(ENV, "new-feature")
    assert [r.flag.version for r in history.items] == [2, 1]
    imported = history.items[1]
    assert imported.flag == original and imported.kind is ChangeKind.CREATE and imported.config_version == 0
    # It is a managed item now: indexed, versioned, listed as before.
    item = raw.get_item(TableName=table, Key=metadata_key("new-feature"), ConsistentRead=True)
    assert item["Item"]["version"] == {"N": "2"} and item["Item"]["GSI1PK"] == {"S": "ENV#staging"}
    rolled = await dstore.update_flag(
        imported.flag, expected_version=2, kind=ChangeKind.ROLLBACK, actor="bob"
    )
    assert rolled.flag is not None and rolled.flag.default_variant == "off" and rolled.flag.version == 3


async def test_hand_written_item_can_be_deleted(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("gone", default_enabled=True))
    change = await dstore.delete_flag(ENV, "gone", expected_version=1, actor="ops")
    assert (change.before_version, change.after_version) == (1, 2)
    assert await dstore.get_flag(ENV, "gone") is None
    assert [r.flag.version for r in (await dstore.get_history(ENV, "gone")).items] == [2, 1]


async def test_hand_written_item_reusing_a_deleted_key_continues_its_history(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    await dstore.create_flag(flag("reused"), actor="a")
    await dstore.delete_flag(ENV, "reused", expected_version=1, actor="a")
    raw.put_item(TableName=table, Item=guide_item("reused", default_enabled=True))
    change = await dstore.update_flag(flag("reused", description="mine"), expected_version=1, actor="a")
    assert change.after_version == 3
    assert [r.flag.version for r in (await dstore.get_history(ENV, "reused")).items] == [3, 2, 1]


# --- races ------------------------------------------------------------------------------


@pytest.fixture
async def racing_store(dynamo_table: tuple[str, str]) -> AsyncIterator[DynamoStore]:
    """A store whose HTTP requests reach the emulator one at a time.

    moto_server applies TransactWriteItems without a lock and rolls a cancelled transaction back
    by restoring a copy of the whole table, so truly parallel requests can undo each other's
    committed writes (checked: 20 parallel writers lost committed transactions).  Real DynamoDB
    is atomic.  With one connection the writers still interleave at every await (read, check,
    transact), which is what the store's concurrency control has to handle.  The write deadline
    is raised: on the emulator, one request at a time and far slower than DynamoDB, the last of
    fifteen writers queued behind each other can need more than the default 5 s, and these tests
    are about what lands, not how fast (`tests/dynamo/test_write_faults.py` is about the deadline)."""
    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, max_pool_connections=1, write_timeout=60.0)
    await store.start()
    yield store
    await store.close()


async def test_racing_writers_on_one_flag_land_or_conflict(racing_store: DynamoStore) -> None:
    store = racing_store
    await store.create_flag(flag("race", description="w-init"), actor="init")
    rng = random.Random(7)

    async def writer(n: int) -> list[tuple[str, int | Conflict]]:
        outcomes: list[tuple[str, int | Conflict]] = []
        for round_ in range(2):
            label = f"w{n}-{round_}"
            current = await store.get_flag(ENV, "race")
            assert current is not None
            await asyncio.sleep(rng.random() * 0.01)
            try:
                change = await store.update_flag(
                    flag("race", description=label), expected_version=current.version, actor=label
                )
                outcomes.append((label, change.after_version))
            except Conflict as exc:
                assert exc.current_version > current.version
                outcomes.append((label, exc))
        return outcomes

    results = [o for batch in await asyncio.gather(*(writer(n) for n in range(20))) for o in batch]
    landed = {version: label for label, version in results if isinstance(version, int)}
    assert len(landed) == sum(1 for _, v in results if isinstance(v, int))  # no version twice
    assert len(landed) >= 2
    history = (await store.get_history(ENV, "race", page_size=1000)).items
    assert [r.flag.version for r in history] == list(range(len(landed) + 1, 0, -1))
    assert {r.flag.version: r.flag.description for r in history[:-1]} == landed
    assert all(r.actor == r.flag.description for r in history[:-1])
    changes = await store.list_changes(ENV)
    assert [c.config_version for c in changes] == list(range(1, len(landed) + 2))
    assert [c.after_version for c in changes] == list(range(1, len(landed) + 2))
    final = await store.get_flag(ENV, "race")
    assert final is not None and final.description == landed[len(landed) + 1]


async def test_writers_of_different_flags_all_land(racing_store: DynamoStore) -> None:
    """They only race for the environment's configVersion, which the store retries internally."""
    store = racing_store
    environment, _ = await store.load_environment(ENV)
    changes = await asyncio.gather(
        *(store.create_flag(flag(f"f{n:02d}"), actor="a") for n in range(12)),
        *(store.update_environment(environment, expected_config_version=None, actor="e") for _ in range(3)),
    )
    assert sorted(c.config_version for c in changes) == list(range(1, 16))
    assert [c.config_version for c in await store.list_changes(ENV)] == list(range(1, 16))
    _, flags = await store.load_environment(ENV)
    assert len(flags) == 12


async def test_writers_without_expected_version_all_land(racing_store: DynamoStore) -> None:
    store = racing_store
    await store.create_flag(flag("blind"), actor="a")
    changes = await asyncio.gather(
        *(
            store.update_flag(flag("blind", description=str(n)), expected_version=None, actor=str(n))
            for n in range(6)
        )
    )
    assert sorted(c.after_version for c in changes) == [2, 3, 4, 5, 6, 7]
    history = (await store.get_history(ENV, "blind")).items
    assert [r.flag.version for r in history] == [7, 6, 5, 4, 3, 2, 1]


# --- entries ahead of the environment item -------------------------------------------------


@pytest.mark.parametrize("write", ["flag", "environment"])
async def test_a_change_log_entry_ahead_of_the_environment_fails_at_once(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str], write: str
) -> None:
    """What a table restored under newer entries holds: the environment item at config_version 1,
    the change-log entry for 2 left over.  No writer can win that slot, so the write is a
    FAILED_PRECONDITION naming the entry, at once, not retried until the deadline as a lost race."""
    _, table = dynamo_table
    await dstore.create_flag(flag("a"), actor="t")
    # The entry as an operator's restore left it: the guide's key layout, written with boto3.
    raw.put_item(
        TableName=table,
        Item={"PK": {"S": f"ENV#{ENV}"}, "SK": {"S": "CHANGE#000000000002"}, "kind": {"S": "CREATE"}},
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FailedPrecondition) as caught:
        if write == "flag":
            await dstore.create_flag(flag("b"), actor="t")
        else:
            environment, _ = await dstore.load_environment(ENV)
            await dstore.update_environment(environment, expected_config_version=None, actor="t")
    assert loop.time() - started < 1.0  # the write deadline is 5 s: no retries
    assert f"ENV#{ENV}/CHANGE#000000000002" in caught.value.message
    assert "config_version 1" in caught.value.message
    assert await dstore.stored_config_version(ENV) == 1  # nothing was written
    assert await dstore.get_flag(ENV, "b") is None


# --- limits and failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["x" * (MAX_ITEM_BYTES - 1000), "日" * (MAX_ITEM_BYTES // 3 + 10)],
    ids=["ascii-near-limit-plus-targeting", "multibyte"],
)
async def test_oversized_flag_never_reaches_dynamodb(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str], text: str
) -> None:
    _, table = dynamo_table
    big = flag(
        "big",
        variants={"a": text, "b": ""},
        default="b",
        targeting={"if": [True, "a", "b"], "pad": "z" * 2000},
    )
    with pytest.raises(InvalidArgument):
        await dstore.create_flag(big, actor="a")
    assert all_items(raw, table) == []


async def test_item_size_check_uses_the_stored_item(dstore: DynamoStore) -> None:
    """A flag under the record budget is stored; its items are measured as DynamoDB bills them."""
    from vexil.store import dynamodb_items as items

    ok = flag("fits", variants={"a": "x" * 300_000, "b": ""}, default="b")
    change = await dstore.create_flag(ok, actor="a")
    assert change.flag is not None
    size = items.item_size(items.flag_to_item(change.flag))
    assert 300_000 < size < MAX_ITEM_BYTES


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


async def test_unreachable_endpoint_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    store = DynamoStore(
        "feature-flags-test",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        max_attempts=1,
        connect_timeout=1.0,
        read_timeout=1.0,
    )
    await store.start()
    try:
        with pytest.raises(Unavailable):
            await store.ping()
        with pytest.raises(Unavailable):
            await store.get_flag(ENV, "x")
        with pytest.raises(Unavailable):
            await store.load_environment(ENV)
        with pytest.raises(Unavailable):
            await store.create_flag(flag("x"), actor="a")
        with pytest.raises(Unavailable):
            await store.list_changes(ENV)
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_missing_table_and_unstarted_store_are_unavailable(dynamo_table: tuple[str, str]) -> None:
    endpoint_url, _ = dynamo_table
    store = DynamoStore("no-such-table", endpoint_url=endpoint_url, max_attempts=1)
    with pytest.raises(Unavailable, match="not started"):
        await store.get_flag(ENV, "x")
    await store.start()
    try:
        with pytest.raises(Unavailable, match="not found"):
            await store.ping()
        with pytest.raises(Unavailable):
            await store.create_flag(flag("x"), actor="a")
    finally:
        await store.close()


# --- operator commands --------------------------------------------------------------------


async def test_create_table_is_idempotent_and_described(dynamo_table: tuple[str, str]) -> None:
    endpoint_url, existing = dynamo_table
    again = await create_table(existing, endpoint_url=endpoint_url)
    assert again["created"] is False and again["status"] == "ACTIVE" and again["problems"] == []
    first = await create_table("feature-flags-dev", endpoint_url=endpoint_url, pitr=True)
    assert first["created"] is True
    assert first["table"] == "feature-flags-dev" and first["status"] == "ACTIVE"
    assert sorted(i["name"] for i in first["indexes"]) == ["GSI1-ENV-INDEX", "GSI2-OWNER-INDEX"]
    assert first["streams"]["enabled"] and first["streams"]["viewType"] == "NEW_AND_OLD_IMAGES"
    assert first["pitr"] == "ENABLED" and first["billing"] == "PAY_PER_REQUEST"
    second = await create_table("feature-flags-dev", endpoint_url=endpoint_url)
    assert second["created"] is False
    provisioned = await create_table(
        "feature-flags-prod",
        endpoint_url=endpoint_url,
        billing="PROVISIONED",
        read_capacity=5,
        write_capacity=3,
        streams=False,
    )
    assert provisioned["billing"] == "PROVISIONED"
    assert (provisioned["readCapacity"], provisioned["writeCapacity"]) == (5, 3)
    assert not provisioned["streams"]["enabled"] and provisioned["pitr"] == "DISABLED"
    described = await describe_table("feature-flags-dev", endpoint_url=endpoint_url)
    assert described["itemCount"] == 0 and described["problems"] == []
    with pytest.raises(Unavailable):
        await describe_table("missing", endpoint_url=endpoint_url)
    with pytest.raises(InvalidArgument):
        await create_table("bad", endpoint_url=endpoint_url, billing="FREE")  # type: ignore[arg-type]


async def test_hand_written_items_load_as_flagd_loads_a_file(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    """A hand-written item the admin API would refuse never takes the environment down: it
    answers at evaluation time as flagd answers (expected answers from flagd's documentation)."""
    _, table = dynamo_table

    def item(key: str, targeting: dict[str, Any]) -> dict[str, Any]:
        return {
            **metadata_key(key),
            "flagKey": {"S": key},
            "variants": {"S": json.dumps({"a": "A", "b": "B"})},
            "defaultVariant": {"S": "a"},
            "targeting": {"S": json.dumps(targeting)},
        }

    raw.put_item(TableName=table, Item=item("missing-variant", {"if": [{"var": "fr"}, "c", "b"]}))
    raw.put_item(TableName=table, Item=item("missing-ref", {"if": [{"var": "fr"}, {"$ref": "nope"}, "b"]}))
    raw.put_item(TableName=table, Item=item("zero-weights", {"fractional": [["a", 0], ["b", 0]]}))
    raw.put_item(TableName=table, Item=guide_item("plain", default_enabled=True))
    environment, flags = await dstore.load_environment(ENV)
    snapshot = Snapshot.build(environment, flags)

    def answer(key: str, context: dict[str, Any]) -> tuple[Any, ...]:
        r, _ = snapshot.evaluate(key, context)
        return (r.value, r.variant, r.reason, r.error_code)

    assert answer("missing-variant", {"fr": False}) == ("B", "b", Reason.TARGETING_MATCH, None)
    assert answer("missing-variant", {"fr": True}) == (None, None, Reason.ERROR, ErrorCode.GENERAL)
    assert answer("missing-ref", {"fr": False}) == (None, None, Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert answer("zero-weights", {"targetingKey": "u1"}) == ("A", "a", Reason.DEFAULT, None)
    assert answer("plain", {}) == (True, "on", Reason.STATIC, None)
