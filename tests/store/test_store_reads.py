"""DynamoDB reads that scale with flags, not history: what a load and a listing page read,
counted by the emulator itself (`ScannedCount` of each Query and Scan), at two sizes of history
or table; and hand-written items, which no index finds until vexil indexes them, still served.

Items are written and inspected with plain boto3, as an operator would, independently of vexil.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import dynamo
from vexil.errors import InvalidArgument
from vexil.model import Change, ChangeKind, Environment, Flag
from vexil.store.changelog import contiguous, overlay
from vexil.store.dynamodb import DynamoStore

ENV = "staging"
SETTLE = 0.5


@dataclass
class ReadMeter:
    """Items DynamoDB examined for this store's queries and scans (its own `ScannedCount`)."""

    scanned: int = 0
    calls: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call.dynamodb", self._after)

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.scanned += int(parsed.get("ScannedCount", 0))
            self.calls.append(model.name)

    def take(self) -> int:
        scanned, self.scanned = self.scanned, 0
        self.calls.clear()
        return scanned


async def metered(dynamo_table: tuple[str, str], **options: Any) -> tuple[DynamoStore, ReadMeter]:
    endpoint_url, table = dynamo_table
    meter = ReadMeter()
    store = DynamoStore(table, endpoint_url=endpoint_url, **options)
    store.instrument(meter.attach)
    await store.start()
    return store, meter


@pytest.fixture
async def served(dynamo_table: tuple[str, str]) -> AsyncIterator[tuple[DynamoStore, ReadMeter]]:
    """A store as a server runs it after its start and first full reload (hand-written items are
    looked for at the second load, then once per hour here), and a load lays the last half second
    of the change log over the index (10 s in production)."""
    store, meter = await metered(dynamo_table, discovery_interval=3600, index_settle=SETTLE)
    for _ in range(2):
        await store.load_environment(ENV)
    meter.take()
    yield store, meter
    await store.close()


def flag(key: str, **fields: Any) -> Flag:
    values: dict[str, Any] = {"variants": {"on": True, "off": False}, "default_variant": "off"}
    values.update(fields)
    return Flag(key=key, environment=ENV, **values)


async def create(store: DynamoStore, keys: list[str], *, history: int = 0, **fields: Any) -> None:
    for key in keys:
        await store.create_flag(flag(key, **fields), actor="t")
        for n in range(history):
            await store.update_flag(
                flag(key, description=f"v{n + 2}", **fields), expected_version=None, actor="t"
            )


# --- loads ---------------------------------------------------------------------------------


async def test_a_load_reads_the_flags_not_their_history(served: tuple[DynamoStore, ReadMeter]) -> None:
    store, meter = served
    await create(store, [f"plain-{i}" for i in range(6)])
    await asyncio.sleep(SETTLE)
    meter.take()
    environment, flags = await store.load_environment(ENV)
    without_history = meter.take()
    assert len(flags) == 6 and environment.config_version == 6
    # The same flags with 8 more versions each: 48 history items and 48 change-log entries more.
    await create(store, [f"aged-{i}" for i in range(6)], history=8)
    for i in range(6):  # and the first six deleted, so the table holds as many live flags again
        await store.delete_flag(ENV, f"plain-{i}", expected_version=None, actor="t")
    await asyncio.sleep(SETTLE)  # the writes are older than the index's settling time now
    meter.take()
    environment, flags = await store.load_environment(ENV)
    with_history = meter.take()
    assert sorted(f.key for f in flags) == [f"aged-{i}" for i in range(6)]
    assert all(f.version == 9 for f in flags)
    print(f"items read by a load of 6 flags: {without_history} without history, {with_history} with")
    # The flags themselves, plus at most a page of recent change-log entries (GSI settling).
    assert without_history <= 6 + 10
    assert with_history <= 6 + 10


async def test_a_quiet_environment_reloads_without_reading_the_change_log(
    served: tuple[DynamoStore, ReadMeter], raw: Any, dynamo_table: tuple[str, str]
) -> None:
    """Every write records on the environment item when it was made: a load within the index's
    settling time reads the change log beside GSI1, a load after it reads GSI1 alone (one Query),
    and an environment item that does not say when it changed (written by hand, or before vexil
    recorded it) still gets the log read."""
    store, meter = served
    _, table = dynamo_table
    await create(store, ["a", "b"])
    meter.take()
    await store.load_environment(ENV)
    assert len(meter.calls) > 1  # GSI1, then the log (the writes are recent)
    await asyncio.sleep(SETTLE)
    meter.take()
    environment, flags = await store.load_environment(ENV)
    assert meter.calls == ["Query"]
    assert [f.key for f in flags] == ["a", "b"] and environment.config_version == 2

    # An environment write records it as well (it puts the environment item whole).
    await store.update_environment(
        Environment(name=ENV, metadata={"team": "x"}), expected_config_version=2, actor="t"
    )
    meter.take()
    await store.load_environment(ENV)
    assert len(meter.calls) > 1
    await asyncio.sleep(SETTLE)
    meter.take()
    environment, _ = await store.load_environment(ENV)
    assert meter.calls == ["Query"] and environment.metadata == {"team": "x"}

    key = {"PK": {"S": f"ENV#{ENV}"}, "SK": {"S": "METADATA"}}
    assert "changedAt" in raw.get_item(TableName=table, Key=key)["Item"]
    raw.update_item(TableName=table, Key=key, UpdateExpression="REMOVE changedAt")
    meter.take()
    environment, _ = await store.load_environment(ENV)
    assert len(meter.calls) > 1 and environment.config_version == 3


async def test_a_load_lays_recent_changes_over_a_lagging_index() -> None:
    """GSI1 is eventually consistent: what the log says happened (table written here) wins by
    flag version over an index that has not caught up yet."""
    old = flag("a", version=1)
    flags = {"a": old, "gone": flag("gone", version=3)}
    newer = flag("a", version=2, description="new")
    created = flag("b", version=1)
    log = [
        Change(
            ENV, 5, ChangeKind.UPDATE, "t", 0.0, flag_key="a", before_version=1, after_version=2, flag=newer
        ),
        Change(
            ENV, 6, ChangeKind.CREATE, "t", 0.0, flag_key="b", before_version=0, after_version=1, flag=created
        ),
        Change(ENV, 7, ChangeKind.DELETE, "t", 0.0, flag_key="gone", before_version=3, after_version=4),
        Change(
            ENV, 8, ChangeKind.UPDATE, "t", 0.0, flag_key="a", before_version=0, after_version=1, flag=old
        ),
    ]
    for change in log:
        overlay(flags, change)
    assert flags == {"a": newer, "b": created}


# --- listings --------------------------------------------------------------------------------


async def test_a_listing_page_costs_its_size_not_the_table(served: tuple[DynamoStore, ReadMeter]) -> None:
    store, meter = served
    costs = []
    for total in (12, 60):
        await create(store, [f"k{i:03d}" for i in range(len(costs) * 12, total)], owner="team")
        meter.take()
        first = await store.list_flags(ENV, page_size=5)
        second = await store.list_flags(ENV, page_size=5, page_token=first.next_token)
        by_owner = await store.list_flags(ENV, owner="team", page_size=5, page_token=first.next_token)
        costs.append(meter.take())
        assert [f.key for f in first.items] == [f"k{i:03d}" for i in range(5)]
        assert [f.key for f in second.items] == [f"k{i:03d}" for i in range(5, 10)]
        assert by_owner.items == second.items and second.next_token
    print(f"items read by three pages of 5: {costs[0]} in a table of 12 flags, {costs[1]} of 60")
    assert costs[0] == costs[1] <= 3 * 6


async def test_a_listing_token_is_checked_before_it_becomes_a_start_key(
    served: tuple[DynamoStore, ReadMeter],
) -> None:
    store, _ = served
    from vexil.store import paging

    with pytest.raises(InvalidArgument):
        await store.list_flags(ENV, page_token=paging.encode_token("k", "not#a key"))


# --- hand-written items ----------------------------------------------------------------------


async def test_hand_written_items_are_found_indexed_and_then_served_by_every_load(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=dynamo.guide_item("by-hand", ENV, owner="ops"))
    raw.put_item(TableName=table, Item=dynamo.guide_item("no-owner", ENV, owner=""))
    before = {
        k: raw.get_item(TableName=table, Key=_key(k), ConsistentRead=True)["Item"] for k in ("by-hand",)
    }
    # A replica's discovery pass (the full reload at the cache TTL) finds and serves them ...
    finder, _ = await metered(dynamo_table, discovery_interval=0)
    try:
        _, flags = await finder.load_environment(ENV)
    finally:
        await finder.close()
    assert [(f.key, f.version, f.default_variant) for f in flags] == [
        ("by-hand", 1, "on"),
        ("no-owner", 1, "on"),
    ]
    # ... and indexes them, changing nothing else: still hand-written (no version).
    after = raw.get_item(TableName=table, Key=_key("by-hand"), ConsistentRead=True)["Item"]
    added = {name: value for name, value in after.items() if name not in before["by-hand"]}
    assert added == {
        "GSI1PK": {"S": f"ENV#{ENV}"},
        "GSI1SK": {"S": "FLAG#by-hand"},
        "GSI2PK": {"S": f"OWNER#{ENV}#ops"},
        "GSI2SK": {"S": "FLAG#by-hand"},
    }
    assert {n: after[n] for n in before["by-hand"]} == before["by-hand"]
    # So a cold start that only queries the index (no discovery) serves them, and lists them.
    store, meter = await metered(dynamo_table, discovery_interval=3600)
    try:
        _, flags = await store.load_environment(ENV)
        assert [f.key for f in flags] == ["by-hand", "no-owner"]
        assert "Scan" not in meter.calls
        assert [f.key for f in (await store.list_flags(ENV, owner="ops")).items] == ["by-hand"]
        assert [f.key for f in (await store.list_flags(ENV)).items] == ["by-hand", "no-owner"]
        # A write through vexil still records the item's origin as version 1.
        await store.update_flag(flag("by-hand", owner="ops"), expected_version=1, actor="t")
        assert [r.flag.version for r in (await store.get_history(ENV, "by-hand")).items] == [2, 1]
    finally:
        await store.close()


async def test_discovery_changes_nothing_of_a_flag_vexil_wrote_but_its_index(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    _, table = dynamo_table
    store, _ = await metered(dynamo_table, discovery_interval=0)
    try:
        await store.create_flag(flag("managed", owner="ops"), actor="t")
        written = raw.get_item(TableName=table, Key=_key("managed"), ConsistentRead=True)["Item"]
        raw.update_item(  # an operator strips the index attributes of a managed item
            TableName=table, Key=_key("managed"), UpdateExpression="REMOVE GSI1PK, GSI1SK"
        )
        _, flags = await store.load_environment(ENV)
        assert [(f.key, f.version) for f in flags] == [("managed", 1)]
        item = raw.get_item(TableName=table, Key=_key("managed"), ConsistentRead=True)["Item"]
        assert item == written  # served, so indexed again: its version and the rest untouched
    finally:
        await store.close()


def _key(key: str) -> dict[str, Any]:
    return {"PK": {"S": f"FLAG#{ENV}#{key}"}, "SK": {"S": "METADATA"}}


def test_contiguous_stops_at_the_first_gap() -> None:
    def change(n: int) -> Change:
        return Change(ENV, n, ChangeKind.UPDATE, "t", 0.0, flag_key="a")

    assert [c.config_version for c in contiguous(change(n) for n in (3, 4, 6, 7))] == [3, 4]
    assert [c.config_version for c in contiguous(change(n) for n in (5,))] == [5]
    assert contiguous([]) == []


async def test_a_hand_written_item_that_could_not_be_indexed_stays_served_between_discoveries(
    dynamo_table: tuple[str, str], raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexing fails (say the role may not UpdateItem): loads between two discovery passes, which
    only query the index, must not drop the flag the last pass found (nor hold it as "backwards")."""
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=dynamo.guide_item("unindexable", ENV))
    store, meter = await metered(dynamo_table, discovery_interval=3600)

    async def refused(item: dict[str, Any], flag: Flag) -> bool:
        return False

    monkeypatch.setattr(store, "_index", refused)
    try:
        _, started = await store.load_environment(ENV)
        assert "Scan" not in meter.calls and started == []  # a start reads the index only
        _, found = await store.load_environment(ENV)  # the next load makes the first pass
        assert "Scan" in meter.calls
        meter.take()
        _, again = await store.load_environment(ENV)
        assert "Scan" not in meter.calls  # a load between passes
        assert [f.key for f in found] == [f.key for f in again] == ["unindexable"]
        item = raw.get_item(TableName=table, Key=_key("unindexable"), ConsistentRead=True)["Item"]
        assert "GSI1PK" not in item
    finally:
        await store.close()


async def test_a_load_beyond_one_page_reads_every_flag_once_in_key_order(
    served: tuple[DynamoStore, ReadMeter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys of every kind of first character, and pages that end anywhere among them."""
    from vexil.store import dynamodb

    store, _ = served
    keys = sorted(
        f"{first}{n}" for first in ("0", "A", "Zz", "_x", "b", "h", "o", "p", "zz") for n in range(3)
    )
    await create(store, keys)
    for page in (1, 2, 4, 7):
        monkeypatch.setattr(dynamodb, "LOAD_PAGE_ITEMS", page)
        _, flags = await store.load_environment(ENV)
        assert [f.key for f in flags] == keys, page


async def test_a_key_on_the_bound_between_two_parts_is_read_once(
    served: tuple[DynamoStore, ReadMeter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first page of "a" and "b" puts the next parts' bounds at "c", "d" and "e" (one letter
    further each time): flags with those very keys come back from both parts that share a bound,
    and the load serves each once."""
    from vexil.store import dynamodb

    store, _ = served
    keys = ["a", "b", "c", "d", "e", "f"]
    await create(store, keys)
    monkeypatch.setattr(dynamodb, "LOAD_PAGE_ITEMS", 2)
    _, flags = await store.load_environment(ENV)
    assert [f.key for f in flags] == keys


@dataclass
class Overlap:
    """The index queries of a load, as spans of a logical clock (one tick per query sent or
    answered), with the items each found."""

    tick: int = 0
    spans: list[tuple[int, int, int]] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.dynamodb.Query", self._before)
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        self.tick += 1
        context["sent at"] = self.tick

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.tick += 1
        self.spans.append((context["sent at"], self.tick, len(parsed.get("Items", []))))

    def most_finding_at_once(self) -> int:
        """The most queries that found something and were in flight at the same time."""
        finding = [(sent, answered) for sent, answered, found in self.spans if found]
        return max(sum(s <= tick < a for s, a in finding) for tick in range(self.tick + 1))


async def test_keys_sharing_a_prefix_are_read_in_parallel_parts_of_about_a_page(
    dynamo_table: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flag keys mostly share a prefix (`flag-001`, `checkout-...`): splitting at fixed first
    characters put them all in one range, read a page after the other, beside ranges that found
    nothing.  Bounds measured from a page put several parts among the keys at once, each about
    a page, so a load reads about one query per page, and the ones finding nothing are only
    where the keys end."""
    from vexil.store import dynamodb

    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, discovery_interval=3600, index_settle=SETTLE)
    overlap = Overlap()
    store.instrument(overlap.attach)
    await store.start()
    try:
        keys = [f"flag-{i:03d}" for i in range(60)]
        await create(store, keys)
        page = 5  # twelve pages of keys, so several parts are read at once
        monkeypatch.setattr(dynamodb, "LOAD_PAGE_ITEMS", page)
        for _ in range(2):  # past the start's load and the first discovery
            await store.load_environment(ENV)
        # Past the index's settle window too: a load soon after writes also reads the newest
        # change-log entries (the store's `_settle`), which are not the index reads counted here.
        await asyncio.sleep(SETTLE)
        overlap.spans.clear()
        _, flags = await store.load_environment(ENV)
        assert [f.key for f in flags] == keys
        assert overlap.most_finding_at_once() >= dynamodb.LOAD_PARTS + 1
        found = [n for _, _, n in overlap.spans]
        assert len(found) <= len(keys) // page + 2 * dynamodb.LOAD_PARTS, found
        assert found.count(0) <= dynamodb.LOAD_PARTS + 1, found
    finally:
        await store.close()
