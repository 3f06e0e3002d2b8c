"""What a load and a listing take from the indexes: flag items of the environment, and nothing else.

docs/dynamodb.md: a flag of environment E is the item `PK = FLAG#E#<key>`, `SK = METADATA`;
`GSI1-ENV-INDEX` (`GSI1PK = ENV#E`) lists E's flags and `GSI2-OWNER-INDEX` one owner's.  An index
holds whatever item carries its attributes, so an operator's mistake (an item of another
environment, a history item, the environment item, an API key item carrying `GSI1PK = ENV#E`)
must be skipped, with one warning naming it, never served, listed or fatal.

Items are written with plain boto3, as an operator would; the expected answers come from the
item layout in the docs, not from vexil's code.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from tests.support import dynamo
from tests.support.flags import flag_model
from tests.support.proxy import ERROR_RESPONSE, FaultProxy
from vexil.store import dynamodb_items as items
from vexil.store.dynamodb import DynamoStore

ENV = "staging"
LOGGER = "vexil.store.dynamodb"


@pytest.fixture
async def dstore(dynamo_table: tuple[str, str]) -> AsyncIterator[DynamoStore]:
    """A store that looks for hand-written items at every load (as a full reload does)."""
    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, discovery_interval=0)
    await store.start()
    yield store
    await store.close()


def S(value: str) -> dict[str, str]:
    return {"S": value}


def guide_item(key: str, *, env: str = ENV, owner: str = "ops", **extra: Any) -> dict[str, Any]:
    """The operations guide's hand-written flag item, plus `extra` attributes."""
    return dynamo.guide_item(key, env, owner=owner, **extra)


def indexed(key: str, *, env: str = ENV) -> dict[str, Any]:
    """GSI attributes placing an item among `env`'s flags under `key` (docs/dynamodb.md)."""
    return {"GSI1PK": S(f"ENV#{env}"), "GSI1SK": S(f"FLAG#{key}")}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


async def served_and_listed(store: DynamoStore) -> tuple[list[str], list[str]]:
    """Keys a load serves (what every evaluation door answers from) and a listing lists."""
    _, flags = await store.load_environment(ENV)
    listed = await store.list_flags(ENV)
    return [f.key for f in flags], [f.key for f in listed.items]


MISPLACED = {
    "another environment's flag": guide_item("bad", env="prod", **indexed("bad")),
    "a history item": {
        **guide_item("hist"),
        "SK": S("VERSION#000000000007"),
        **indexed("hist"),
    },
    "the environment item": {"PK": S(f"ENV#{ENV}"), "SK": S("METADATA"), **indexed("zzz")},
    "an API key item": {"PK": S("APIKEY#abc"), "SK": S("METADATA"), **indexed("apikey")},
}


@pytest.mark.parametrize("what", list(MISPLACED))
async def test_an_item_in_gsi1_that_is_no_flag_of_the_environment_is_skipped_once(
    what: str,
    dstore: DynamoStore,
    raw: Any,
    dynamo_table: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("good", **indexed("good")))
    item = MISPLACED[what]
    raw.put_item(TableName=table, Item=item)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(3):  # a start, then reloads every cache TTL
        assert await served_and_listed(dstore) == (["good"], ["good"])
    assert await dstore.get_flag(ENV, "bad") is None
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned
    assert f"PK={item['PK']['S']!r}" in warned[0] and f"SK={item['SK']['S']!r}" in warned[0]


async def test_a_listing_pages_past_skipped_items_and_by_owner_too(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    owner_index = {"GSI2PK": S(f"OWNER#{ENV}#ops"), "GSI2SK": S("FLAG#b")}
    raw.put_item(
        TableName=table,
        Item=guide_item("a", **indexed("a"), GSI2PK=S(f"OWNER#{ENV}#ops"), GSI2SK=S("FLAG#a")),
    )
    raw.put_item(TableName=table, Item=guide_item("b", env="prod", **indexed("b"), **owner_index))
    raw.put_item(
        TableName=table,
        Item=guide_item("c", **indexed("c"), GSI2PK=S(f"OWNER#{ENV}#ops"), GSI2SK=S("FLAG#c")),
    )
    for owner in ("", "ops"):
        pages: list[list[str]] = []
        token = ""
        while True:
            page = await dstore.list_flags(ENV, owner=owner, page_size=1, page_token=token)
            pages.append([f.key for f in page.items])
            token = page.next_token
            if not token:
                break
        assert pages == [["a"], ["c"]], owner


# --- keys outside vexil's key rules ----------------------------------------------------------

# The admin API takes 1-128 characters from A-Z a-z 0-9 _ . - (README, flag keys); an operator's
# put-item can write any key.  Such an item is neither served nor listed, found in the index or
# by discovery, and named once in a warning that states the key rule.
BAD_KEYS = ["~~~", "フラグ", "a b", "a#b", "a\x00b", "k" * 2000, ""]


@pytest.mark.parametrize("already_indexed", [False, True], ids=["hand-written", "indexed"])
async def test_a_flag_item_whose_key_breaks_the_key_rule_is_neither_served_nor_listed(
    already_indexed: bool,
    dstore: DynamoStore,
    raw: Any,
    dynamo_table: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, table = dynamo_table
    # An index sort key holds at most 1024 bytes, so the 2,000-character key cannot be indexed.
    bad_keys = [key for key in BAD_KEYS if not already_indexed or len(key) < 1000]
    raw.put_item(TableName=table, Item=guide_item("good"))
    for key in bad_keys:
        raw.put_item(TableName=table, Item=guide_item(key, **(indexed(key) if already_indexed else {})))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(3):  # a start, then reloads every cache TTL: the same answer each time
        assert await served_and_listed(dstore) == (["good"], ["good"])
    warned = warnings_of(caplog)
    assert len(warned) == len(bad_keys), warned
    for key in bad_keys:
        pk = repr(f"FLAG#{ENV}#{key}")[:147]  # quoted in at most 150 characters, "..." included
        assert sum(pk in w and "A-Za-z0-9_.\\-" in w for w in warned) == 1, (key, warned)
    for key in bad_keys:  # discovery indexes only what it serves
        item = raw.get_item(
            TableName=table, Key={"PK": S(f"FLAG#{ENV}#{key}"), "SK": S("METADATA")}, ConsistentRead=True
        )["Item"]
        assert ("GSI1PK" in item) is already_indexed, key


@pytest.mark.parametrize("page", [None, 1, 2])
async def test_a_load_reaches_every_item_gsi1_holds_for_the_environment(
    page: int | None,
    dynamo_table: tuple[str, str],
    raw: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GSI1 sorts by `GSI1SK` in UTF-8 byte order, and an operator may write any `GSI1SK`: flag
    items of the environment whose `GSI1SK` sorts after `FLAG#~` are flags of it all the same
    (their key is in `PK`), so a load serves them as a listing lists them, however it pages.
    `FLAG$` is the first sort key past every `FLAG#...`: the load's range ends there."""
    from vexil.store import dynamodb

    _, table = dynamo_table
    odd = {"x1": "FLAG#~~~", "x2": "FLAG#フラグ", "x3": "FLAG#\U0010ffff", "x4": "FLAG$"}
    for key in ("a", "b", "c"):
        raw.put_item(TableName=table, Item=guide_item(key, **indexed(key)))
    for key, sort_key in odd.items():
        raw.put_item(TableName=table, Item=guide_item(key, GSI1PK=S(f"ENV#{ENV}"), GSI1SK=S(sort_key)))
    monkeypatch.setattr(dynamodb, "LOAD_PAGE_ITEMS", page)
    endpoint_url, _ = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, discovery_interval=3600)  # the index only
    await store.start()
    try:
        served, listed = await served_and_listed(store)
    finally:
        await store.close()
    assert served == ["a", "b", "c", "x1", "x2", "x3", "x4"]
    assert sorted(listed) == served


@pytest.mark.parametrize("page", [1, 2, 3])
async def test_a_load_ending_on_the_last_sort_key_of_its_range_is_read_whole(
    page: int, dynamo_table: tuple[str, str], raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page whose last item sorts at `FLAG$` (the range's end, past every `FLAG#...`) tells no
    width of flag keys: the load must not split what follows it into ranges that end before
    they begin (DynamoDB refuses those), and still read every item once."""
    from vexil.store import dynamodb

    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("A", **indexed("A")))
    raw.put_item(TableName=table, Item=guide_item("z", GSI1PK=S(f"ENV#{ENV}"), GSI1SK=S("FLAG$")))
    # Past the range, in the same partition of the index: not a flag's sort key, so neither
    # served nor listed (and it makes the emulator end a full page with a continuation, as
    # DynamoDB itself does).
    raw.put_item(TableName=table, Item=guide_item("y", GSI1PK=S(f"ENV#{ENV}"), GSI1SK=S("GSI1SK")))
    monkeypatch.setattr(dynamodb, "LOAD_PAGE_ITEMS", page)
    ranges: list[tuple[str, str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues", {})
        if ":lo" in values and ":hi" in values:
            ranges.append((values[":lo"]["S"], values[":hi"]["S"]))

    endpoint_url, _ = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, discovery_interval=3600)
    store.instrument(
        lambda client: client.meta.events.register("provide-client-params.dynamodb.Query", record)
    )
    await store.start()
    try:
        assert await served_and_listed(store) == (["A", "z"], ["A", "z"])
    finally:
        await store.close()
    # DynamoDB refuses `BETWEEN lo AND hi` with lo past hi (ValidationException; the emulator
    # answers nothing instead), in UTF-8 byte order.
    assert ranges and all(lo.encode() <= hi.encode() for lo, hi in ranges), ranges


# --- discovery indexes every flag item it serves ---------------------------------------------

# docs/dynamodb.md, items written by hand: the full reload serves a flag item of the environment
# without `GSI1PK` and adds `GSI1PK = ENV#<env>`, `GSI1SK = FLAG#<key>` (and `GSI2PK =
# OWNER#<env>#<owner>`, `GSI2SK = FLAG#<key>` with an owner), changing nothing else; from then
# on a start, which reads the index only, serves it and a listing lists it.

INDEX_OF_OPS_FLAG = {
    "GSI1PK": S(f"ENV#{ENV}"),
    "GSI1SK": S("FLAG#versioned"),
    "GSI2PK": S(f"OWNER#{ENV}#ops"),
    "GSI2SK": S("FLAG#versioned"),
}


async def index_only(dynamo_table: tuple[str, str]) -> tuple[list[str], list[str]]:
    """What a replica's start (the index only, no scan) serves and lists."""
    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url, discovery_interval=3600)
    await store.start()
    try:
        return await served_and_listed(store)
    finally:
        await store.close()


def item_key(key: str) -> dict[str, Any]:
    """The table key of flag `key`'s item in `ENV` (docs/dynamodb.md)."""
    return {"PK": S(f"FLAG#{ENV}#{key}"), "SK": S("METADATA")}


def stored(raw: Any, table: str, key: str) -> dict[str, Any]:
    return raw.get_item(TableName=table, Key=item_key(key), ConsistentRead=True)["Item"]


async def test_a_hand_written_item_with_a_version_is_indexed_like_any_other(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    written = guide_item(
        "versioned",
        version={"N": "3"},
        variants=S('{"on": true, "off": false}'),
        defaultVariant=S("on"),
    )
    raw.put_item(TableName=table, Item=written)
    assert await served_and_listed(dstore) == (["versioned"], ["versioned"])
    assert stored(raw, table, "versioned") == {**written, **INDEX_OF_OPS_FLAG}
    assert await index_only(dynamo_table) == (["versioned"], ["versioned"])


async def test_an_item_without_owner_leaves_the_owner_index_when_indexed(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    """GSI2 lists one owner's flags, sparse: only flags with an owner have its attributes.  A
    hand-written item without owner, carrying GSI2 attributes of an old owner, is listed by no
    owner once indexed."""
    _, table = dynamo_table
    old_owner = {"GSI2PK": S(f"OWNER#{ENV}#old"), "GSI2SK": S("FLAG#orphan")}
    raw.put_item(TableName=table, Item=guide_item("orphan", owner="", **old_owner))
    assert await served_and_listed(dstore) == (["orphan"], ["orphan"])
    assert [f.key for f in (await dstore.list_flags(ENV, owner="old")).items] == []
    item = stored(raw, table, "orphan")
    assert (item["GSI1PK"], item["GSI1SK"]) == (S(f"ENV#{ENV}"), S("FLAG#orphan"))
    assert "GSI2PK" not in item and "GSI2SK" not in item


@pytest.mark.parametrize("meanwhile", ["hand", "vexil"])
async def test_discovery_never_lands_on_an_item_changed_since_its_scan(
    meanwhile: str,
    dstore: DynamoStore,
    raw: Any,
    dynamo_table: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan finds the item owned by `ops`; before its index write, the owner becomes `web`
    (by hand, or through vexil, which indexes its own write): the stale write must not put the
    item back into `ops`'s listing, and the item ends up indexed under `web`."""
    _, table = dynamo_table
    raw.put_item(TableName=table, Item=guide_item("moved", owner="ops"))
    scan = dstore._scan_unindexed
    changed: list[bool] = []

    async def scan_then_change(env: str, segment: int) -> list[dict[str, Any]]:
        found = await scan(env, segment)
        if found and not changed:
            changed.append(True)
            if meanwhile == "hand":
                raw.put_item(TableName=table, Item=guide_item("moved", owner="web"))
            else:
                current = await dstore.get_flag(ENV, "moved")
                assert current is not None
                await dstore.update_flag(replace(current, owner="web"), expected_version=1, actor="t")
        return found

    monkeypatch.setattr(dstore, "_scan_unindexed", scan_then_change)
    await dstore.load_environment(ENV)  # scans, the owner changes, the index write is refused
    assert [f.key for f in (await dstore.list_flags(ENV, owner="ops")).items] == []
    await dstore.load_environment(ENV)  # the next pass (by hand: vexil's write indexed it already)
    assert [f.key for f in (await dstore.list_flags(ENV, owner="ops")).items] == []
    assert [f.key for f in (await dstore.list_flags(ENV, owner="web")).items] == ["moved"]
    item = stored(raw, table, "moved")
    assert (item["GSI2PK"], item["GSI2SK"]) == (S(f"OWNER#{ENV}#web"), S("FLAG#moved"))


# --- flags discovery serves but could not index ----------------------------------------------

HAND_WRITTEN = {"a": "ops", "c": "web", "e": "ops", "g": "ops", "h": "web"}
"""Hand-written flags (key: owner) whose index writes the table refuses."""
THROUGH_VEXIL = {"b": "web", "d": "ops", "f": "web"}
"""Flags created through vexil (indexed by their own write), between them in key order."""


@asynccontextmanager
async def index_writes_failing(
    dynamo_table: tuple[str, str], raw: Any, **settings: Any
) -> AsyncIterator[DynamoStore]:
    """A store whose discovery pass finds `HAND_WRITTEN` but cannot index any of them: the table
    answers every index write (an UpdateItem: vexil's own writes are transactions) with a server
    error, as a failing table does, retries included."""
    endpoint_url, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint_url)
    proxy = await FaultProxy(str(upstream.hostname), int(upstream.port or 0)).start()
    # Armed before the store opens a connection: the proxy reads request by request only the
    # connections it accepts while an injection is armed.
    proxy.inject("UpdateItem", lambda _: ERROR_RESPONSE, times=1000)
    store = DynamoStore(table, endpoint_url=proxy.endpoint, max_attempts=1, **settings)
    await store.start()
    try:
        for key, owner in THROUGH_VEXIL.items():
            await store.create_flag(flag_model(key, environment=ENV, owner=owner), actor="t")
        for key, owner in HAND_WRITTEN.items():
            raw.put_item(TableName=table, Item=guide_item(key, owner=owner))
        yield store
        still = [raw.get_item(TableName=table, Key=item_key(k)).get("Item") for k in HAND_WRITTEN]
        assert not any(items.is_indexed(item) for item in still if item), "an index write was refused"
    finally:
        await store.close()
        await proxy.stop()


async def every_page(store: DynamoStore, size: int, **where: str) -> list[list[str]]:
    """The keys of each page of a listing, following its tokens to the end (bounded)."""
    pages: list[list[str]] = []
    token = ""
    for _ in range(20):
        page = await store.list_flags(ENV, page_size=size, page_token=token, **where)
        pages.append([f.key for f in page.items])
        token = page.next_token
        if not token:
            return pages
    raise AssertionError(f"a listing of 8 flags did not end: {pages}")


async def test_a_listing_holds_the_flags_discovery_serves_but_could_not_index(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    """`vexil flags export` and `flags list` page through ListFlags, which reads the indexes: a
    hand-written flag whose index write failed (a slow or failing table) was served but left
    out of every listing, so an export missed it and exited 0.  Every served flag is listed, in
    key order, once, whatever the page size, by owner too."""
    async with index_writes_failing(dynamo_table, raw, discovery_interval=0) as store:
        _, served = await store.load_environment(ENV)
        assert [f.key for f in served] == list("abcdefgh")
        assert await every_page(store, 3) == [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
        assert await every_page(store, 2) == [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]]
        assert await every_page(store, 100) == [list("abcdefgh")]
        assert await every_page(store, 2, owner="web") == [["b", "c"], ["f", "h"]]
        assert await every_page(store, 3, owner="ops") == [["a", "d", "e"], ["g"]]


async def test_a_listing_reads_an_unindexed_flag_as_it_is_now(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    """What the discovery pass read may be stale by the time of a listing: an owner changed by
    hand is listed under the new owner only, an item deleted by hand is not listed at all."""
    _, table = dynamo_table
    async with index_writes_failing(dynamo_table, raw, discovery_interval=0) as store:
        await store.load_environment(ENV)
        raw.put_item(TableName=table, Item=guide_item("c", owner="ops"))
        raw.delete_item(TableName=table, Key=item_key("g"))
        assert await every_page(store, 3) == [["a", "b", "c"], ["d", "e", "f"], ["h"]]
        assert await every_page(store, 10, owner="web") == [["b", "f", "h"]]
        assert await every_page(store, 10, owner="ops") == [["a", "c", "d", "e"]]


async def test_a_flag_deleted_through_vexil_is_not_served_again_until_the_next_pass(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    """Between discovery passes a load serves the flags the last pass could not index from that
    pass's answer; one deleted through vexil since must not come back at the next reload."""
    async with index_writes_failing(dynamo_table, raw, discovery_interval=3600, index_settle=0) as store:
        await store.load_environment(ENV)  # a start: the index only
        _, served = await store.load_environment(ENV)  # the first pass: serves them, cannot index
        assert [f.key for f in served] == list("abcdefgh")
        await store.delete_flag(ENV, "e", expected_version=None, actor="t")
        _, served = await store.load_environment(ENV)  # between passes
        assert [f.key for f in served] == list("abcdfgh")
