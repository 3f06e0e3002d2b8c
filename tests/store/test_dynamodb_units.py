"""DynamoDB pieces that need no emulator: error translation, item decoding, timestamps."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from hypothesis import given
from hypothesis import strategies as st

from vexil.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unavailable
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision, FlagState
from vexil.store import dynamodb_items as items
from vexil.store import records
from vexil.store.dynamodb import DynamoStore
from vexil.store.dynamodb_client import Credentials, translate
from vexil.store.dynamodb_table import wait_active
from vexil.store.keys_dynamodb import DynamoKeyStore


def client_error(code: str, operation: str = "TransactWriteItems") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, operation)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("ProvisionedThroughputExceededException"), Unavailable),
        (client_error("ThrottlingException"), Unavailable),
        (client_error("RequestLimitExceeded"), Unavailable),
        (client_error("InternalServerError"), Unavailable),
        (client_error("ResourceNotFoundException"), Unavailable),
        (client_error("AccessDeniedException"), Unavailable),
        (client_error("ValidationException"), InvalidArgument),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (ConnectionRefusedError(), Unavailable),
        (ParamValidationError(report="bad"), InvalidArgument),
    ],
)
def test_sdk_errors_become_vexil_errors(exc: BaseException, expected: type[Exception]) -> None:
    assert isinstance(translate(exc, "testing"), expected)


class ThrottledClient:
    """Stands in for the aioboto3 client: reads succeed (empty), writes are throttled."""

    async def get_item(self, **_: Any) -> dict[str, Any]:
        return {}

    async def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}

    async def transact_write_items(self, **_: Any) -> dict[str, Any]:
        raise client_error("ProvisionedThroughputExceededException")


async def test_throttled_write_is_unavailable() -> None:
    store = DynamoStore("t")
    store._client = ThrottledClient()
    flag = Flag(key="k", environment="dev", variants={"on": True})
    with pytest.raises(Unavailable, match="throttling"):
        await store.create_flag(flag, actor="a")


def hand_item(**attributes: dict[str, Any]) -> items.Item:
    return {"PK": {"S": "FLAG#dev#hand"}, "SK": {"S": "METADATA"}, **attributes}


@pytest.mark.parametrize(
    ("value", "default_variant"),
    [
        ({"BOOL": True}, "on"),
        ({"BOOL": False}, "off"),
        ({"S": "true"}, "on"),
        ({"S": "false"}, "off"),
        ({"N": "1"}, "on"),
        ({"N": "0"}, "off"),
        (None, "off"),
    ],
)
def test_default_enabled_as_people_write_it(value: dict[str, Any] | None, default_variant: str) -> None:
    item = hand_item(defaultEnabled=value) if value is not None else hand_item()
    flag = items.flag_from_item(item)
    assert flag.variants == {"on": True, "off": False}
    assert flag.default_variant == default_variant
    assert (flag.key, flag.environment, flag.version, flag.state) == ("hand", "dev", 1, FlagState.ENABLED)


def test_native_maps_written_by_hand_are_read_as_json() -> None:
    item = hand_item(
        variants={"M": {"a": {"N": "1"}, "b": {"N": "2.5"}, "c": {"L": [{"S": "x"}, {"NULL": True}]}}},
        defaultVariant={"S": "a"},
        tags={"SS": ["z", "a"]},
        createdAt={"S": "not a date"},
        version={"N": "4"},
    )
    flag = items.flag_from_item(item)
    assert flag.variants == {"a": 1, "b": 2.5, "c": ["x", None]}
    assert type(flag.variants["a"]) is int and type(flag.variants["b"]) is float
    assert flag.tags == ("a", "z") and flag.created_at == 0.0 and flag.version == 4


def test_flag_item_round_trip() -> None:
    flag = records.normalize_flag(
        Flag(
            key="rt",
            environment="dev",
            variants={"x": {"n": 1, "f": 1.0, "u": "✓"}, "y": {}},
            default_variant=None,
            state=FlagState.DISABLED,
            targeting=None,
            tags=("a",),
            metadata={"k": [1, 2.0]},
            version=3,
            created_at=records.now(),
            updated_at=records.now(),
            updated_by="me",
        )
    )
    assert items.flag_from_item(items.flag_to_item(flag)) == flag
    assert "defaultVariant" not in items.flag_to_item(flag)
    assert "GSI2PK" not in items.flag_to_item(flag)  # no owner, no owner-index entry


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_store_timestamps_survive_iso_text(ts: float) -> None:
    rounded = records.parse_timestamp(records.format_timestamp(ts))
    assert records.parse_timestamp(records.format_timestamp(rounded)) == rounded
    assert abs(rounded - ts) <= 1e-6


@pytest.mark.parametrize(
    ("text", "shown"),
    [("yesterday", "'yesterday'"), ("a\nb", "'a\\nb'"), ("\ud800x", "'\\ud800x'"), ("日本", "'日本'")],
)
def test_a_time_that_is_no_time_is_named_once_escaped(text: str, shown: str) -> None:
    """The note names the text as Python writes it, each character escaped at most once."""
    assert records.read_timestamp(text) == (0.0, f"{shown} is not ISO-8601 text: read as unknown (0)")


def test_item_size_counts_utf8_bytes_and_names() -> None:
    assert items.item_size({"ab": {"S": "日本"}}) == 2 + 6
    assert items.item_size({"b": {"BOOL": True}}) == 2
    assert Decimal(items.value_size({"N": "12345"})) >= 3


class RacingClient:
    """Reads show flag version 1; every transaction is cancelled with the given reasons, as when
    another writer commits between our read and our write."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        self.reasons = reasons
        self.transactions = 0

    async def get_item(self, *, Key: items.Item, **_: Any) -> dict[str, Any]:
        if Key["PK"]["S"].startswith("ENV#"):
            return {"Item": {**Key, "configVersion": {"N": "7"}}}
        stored = records.normalize_flag(Flag(key="k", environment="dev", variants={"on": True}, version=1))
        return {"Item": items.flag_to_item(stored)}

    async def transact_write_items(self, **_: Any) -> dict[str, Any]:
        self.transactions += 1
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": self.reasons,
            },
            "TransactWriteItems",
        )


def racing_store(reasons: list[dict[str, Any]]) -> tuple[DynamoStore, RacingClient]:
    store = DynamoStore("t", write_attempts=3)
    client = RacingClient(reasons)
    store._client = client
    return store, client


NEWER_FLAG = items.flag_to_item(
    records.normalize_flag(Flag(key="k", environment="dev", variants={"on": True}, version=5))
)
FLAG = Flag(key="k", environment="dev", variants={"on": True})


async def test_lost_flag_race_is_a_conflict_with_the_current_version() -> None:
    store, client = racing_store(
        [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": NEWER_FLAG}, {"Code": "None"}]
    )
    with pytest.raises(Conflict) as caught:
        await store.update_flag(FLAG, expected_version=1, actor="a")
    assert caught.value.current_version == 5 and client.transactions == 1


async def test_lost_flag_race_without_expected_version_is_retried_then_gives_up() -> None:
    store, client = racing_store(
        [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": NEWER_FLAG}, {"Code": "None"}]
    )
    with pytest.raises(Unavailable, match="gave up"):
        await store.update_flag(FLAG, expected_version=None, actor="a")
    assert client.transactions == 3


async def test_lost_config_version_race_is_retried_then_gives_up() -> None:
    store, client = racing_store([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}])
    with pytest.raises(Unavailable, match="gave up"):
        await store.update_flag(FLAG, expected_version=1, actor="a")
    assert client.transactions == 3


async def test_flag_deleted_during_the_write_is_not_found() -> None:
    store, _ = racing_store([{"Code": "None"}, {"Code": "ConditionalCheckFailed"}])
    with pytest.raises(NotFound):
        await store.delete_flag("dev", "k", expected_version=1, actor="a")


class CreateRacingClient(RacingClient):
    """The flag is absent when read; another writer creates it before our transaction."""

    async def get_item(self, *, Key: items.Item, **kwargs: Any) -> dict[str, Any]:
        return {} if Key["PK"]["S"].startswith("FLAG#") else await super().get_item(Key=Key, **kwargs)

    async def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


async def test_lost_create_race_already_exists() -> None:
    store = DynamoStore("t", write_attempts=3)
    client = CreateRacingClient(
        [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": NEWER_FLAG}, {"Code": "None"}]
    )
    store._client = client
    with pytest.raises(AlreadyExists, match="flag dev/k already exists"):
        await store.create_flag(FLAG, actor="a")
    assert client.transactions == 1


async def test_lost_environment_race_is_a_conflict_with_the_winners_version() -> None:
    winner = {"PK": {"S": "ENV#dev"}, "SK": {"S": "METADATA"}, "configVersion": {"N": "9"}}
    store, client = racing_store([{"Code": "ConditionalCheckFailed", "Item": winner}, {"Code": "None"}])
    with pytest.raises(Conflict, match="environment dev is at config version 9, not 7") as caught:
        await store.update_environment(Environment(name="dev"), expected_config_version=7, actor="a")
    assert caught.value.current_version == 9 and client.transactions == 1


class DescribingClient:
    """Answers `describe_table` with the table and index statuses of one poll after another."""

    def __init__(self, *polls: tuple[str, str]) -> None:
        self.polls = list(polls)
        self.calls = 0

    async def describe_table(self, TableName: str) -> dict[str, Any]:
        table, index = self.polls[min(self.calls, len(self.polls) - 1)]
        self.calls += 1
        desc = {"TableName": TableName, "TableStatus": table, "ItemCount": 7}
        return {"Table": {**desc, "GlobalSecondaryIndexes": [{"IndexStatus": index}]}}


async def test_waiting_for_a_table_reports_each_poll_until_it_is_active() -> None:
    client = DescribingClient(("CREATING", "CREATING"), ("ACTIVE", "CREATING"), ("ACTIVE", "ACTIVE"))
    heard: list[list[Any]] = []
    desc = await wait_active(client, "t", 5.0, delay=0.01, waiting=heard.append)
    assert desc["ItemCount"] == 7 and client.calls == 3
    assert heard == [["CREATING", "CREATING"], ["ACTIVE", "CREATING"]]


async def test_waiting_for_a_table_gives_up_at_its_deadline() -> None:
    client = DescribingClient(("ACTIVE", "CREATING"))
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"table t not ACTIVE after 0 s: \['ACTIVE', 'CREATING'\]"):
        await wait_active(client, "t", 0.2, delay=0.05)
    # No poll sleeps past the deadline: at most 0.2 s of sleeping (plus scheduling under load).
    assert 2 <= client.calls <= 5 and time.monotonic() - started < 2.0


def test_history_and_change_log_items_record_who_what_when_and_why_alike() -> None:
    flag = records.normalize_flag(
        Flag(key="f", environment="dev", variants={"on": True}, default_variant="on", version=3)
    )
    when = 1_800_000_000.5  # 2027-01-15T08:00:00.500000Z
    who_what_when_why = {
        "configVersion": {"N": "12"},
        "kind": {"S": "UPDATE"},
        "actor": {"S": "alice"},
        "timestamp": {"S": "2027-01-15T08:00:00.500000Z"},
        "reason": {"S": "ramp"},
    }
    revision = FlagRevision(flag, ChangeKind.UPDATE, "alice", when, 12, reason="ramp")
    revision_item = items.revision_to_item(revision)
    assert {k: revision_item[k] for k in who_what_when_why} == who_what_when_why
    assert revision_item["itemType"] == {"S": "FLAG_VERSION"} and revision_item["deleted"] == {"BOOL": False}
    assert items.revision_from_item(revision_item) == revision
    change = Change("dev", 12, ChangeKind.UPDATE, "alice", when, "f", 2, 3, "ramp", flag=flag)
    change_item = items.change_to_item(change, expires_at=1_800_086_400)
    assert {k: change_item[k] for k in who_what_when_why} == who_what_when_why
    assert (change_item["flagKey"], change_item["beforeVersion"], change_item["afterVersion"]) == (
        {"S": "f"},
        {"N": "2"},
        {"N": "3"},
    )
    assert change_item["expiresAt"] == {"N": "1800086400"}
    assert items.change_from_item("dev", change_item) == change


@pytest.mark.parametrize("build", [DynamoStore, DynamoKeyStore])
def test_both_stores_take_where_dynamodb_is_alike(build: Any) -> None:
    # The documented default region, and the endpoint and credentials as given.
    assert build("t")._settings.region == "ap-northeast-1"
    assert build("t")._settings.endpoint_url is None and build("t")._settings.credentials is None
    creds = Credentials("AKIDEXAMPLE", "secret")
    store = build("t", region="eu-west-1", endpoint_url="http://127.0.0.1:1", credentials=creds)
    settings = store._settings
    assert (settings.region, settings.endpoint_url, settings.credentials) == (
        "eu-west-1",
        "http://127.0.0.1:1",
        creds,
    )
    assert store.name == "dynamodb" and store.table == "t"
    assert "secret" not in repr(store) and "'t'" in repr(store)
    with pytest.raises(ValueError, match="table name is required"):
        build("")
    with pytest.raises(TypeError):
        build("t", regoin="eu-west-1")  # a misspelt keyword is refused, not ignored
