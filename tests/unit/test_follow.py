"""`vexil.follow.follow`, the one loop behind Watch, flagd EventStream and flagd SyncFlags.

Over a real hub and snapshot cache on the memory store (no change feed running: each test moves
the cache itself).  Expected items are written out in each test from the writes it makes: the
store numbers an environment's writes 1, 2, 3, ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable

import pytest

from vexil import follow as follow_module
from vexil.cache import SnapshotCache
from vexil.errors import InvalidArgument, Unavailable
from vexil.follow import (
    FELL_BEHIND,
    INITIAL,
    RESUME_GAP,
    Changed,
    Heartbeat,
    Item,
    Opened,
    Resynced,
    WholeState,
    as_is,
    follow,
)
from vexil.hub import Hub, Subscription
from vexil.model import Change, ChangeKind, Flag
from vexil.store.memory import MemoryStore

ENV = "local"
STEP = 5.0
"""Longest wait for one item that is due now (generous: the machine may be loaded)."""
IDLE = 30.0
"""A heartbeat interval no test reaches: any Heartbeat seen with it was sent on purpose."""


class RecordingHub(Hub):
    """The hub, keeping the subscriptions it made (to close one as a revoked credential does)."""

    def __init__(self, queue_size: int = 256) -> None:
        super().__init__(queue_size)
        self.made: list[Subscription] = []

    def subscribe(self, environment: str, flag_keys: Iterable[str] | None = None) -> Subscription:
        sub = super().subscribe(environment, flag_keys)
        self.made.append(sub)
        return sub


def flag(key: str) -> Flag:
    return Flag(key=key, environment=ENV, variants={"on": True, "off": False}, default_variant="on")


async def served(keys: Iterable[str], *, queue_size: int = 256, max_changes: int = 1000) -> SnapshotCache:
    """A cache serving ENV after one write per key (config_version = number of keys)."""
    store = MemoryStore(max_changes=max_changes)
    for key in keys:
        await store.create_flag(flag(key), actor="test")
    cache = SnapshotCache(store, RecordingHub(queue_size), [ENV], poll_interval=0.05)
    await cache.load()
    return cache


async def write(cache: SnapshotCache, key: str) -> Change:
    """A local write: stored, then applied (which publishes it to the hub)."""
    change = await cache.store.create_flag(flag(key), actor="test")
    await cache.apply(change)
    return change


async def step(items: AsyncGenerator[Item, None]) -> Item:
    async with asyncio.timeout(STEP):
        return await anext(items)


def seen(item: Item) -> tuple[str, int]:
    """An item as (kind, version) - for a Changed, the change's version."""
    if isinstance(item, Changed):
        return ("changed", item.change.config_version)
    if isinstance(item, Heartbeat):
        return ("heartbeat", item.version)
    return (type(item).__name__.lower(), item.snapshot.config_version)


async def test_opened_and_resynced_are_the_whole_state_yet_different_items() -> None:
    """Adapters that send the whole state for both read them as one `WholeState` (snapshot and
    reason); a stream that opens and one that resyncs must still be told apart."""
    snapshot = (await served(["a"])).get(ENV)
    opened, resynced = Opened(snapshot, "why"), Resynced(snapshot, "why")
    for item in (opened, resynced):
        assert isinstance(item, WholeState)
        assert (item.snapshot, item.reason) == (snapshot, "why")
        assert not hasattr(item, "__dict__")  # built per subscriber: slots, as every item
    assert opened != resynced and opened == Opened(snapshot, "why")
    assert (repr(opened).split("(")[0], repr(resynced).split("(")[0]) == ("Opened", "Resynced")


async def test_opens_with_the_snapshot_and_misses_nothing_written_after_it() -> None:
    cache = await served(["a", "b"])
    items = follow(ENV, cache, cache.hub, IDLE, as_is)
    opened = await step(items)
    assert isinstance(opened, Opened) and opened.reason == INITIAL
    assert opened.snapshot.config_version == 2 and set(opened.snapshot.entries) == {"a", "b"}
    assert cache.hub.count(ENV) == 1  # subscribed by the time the snapshot is out

    await write(cache, "c")  # before the subscriber asks for more: must still reach it
    changed = await step(items)
    assert seen(changed) == ("changed", 3)
    assert isinstance(changed, Changed) and changed.change.flag_key == "c"
    assert changed.snapshot.config_version == 3

    await items.aclose()
    assert cache.hub.count(ENV) == 0


async def test_a_version_already_sent_is_never_sent_again() -> None:
    cache = await served(["a", "b"])
    items = follow(ENV, cache, cache.hub, 0.05, as_is)
    assert seen(await step(items)) == ("opened", 2)
    # Changes the snapshot already holds (published while it was read), then one twice.
    old = Change(ENV, 2, ChangeKind.CREATE, actor="test", timestamp=0.0, flag_key="b")
    cache.hub.publish(old)
    third = await write(cache, "c")
    cache.hub.publish(third)
    got = [seen(await step(items)) for _ in range(2)]
    assert got == [("changed", 3), ("heartbeat", 3)]
    await items.aclose()


async def test_heartbeat_after_an_idle_interval_with_the_last_version_sent() -> None:
    interval = 0.3
    cache = await served(["a"])
    items = follow(ENV, cache, cache.hub, interval, as_is)
    assert seen(await step(items)) == ("opened", 1)
    began = time.monotonic()
    first = await step(items)
    waited = time.monotonic() - began
    assert seen(first) == ("heartbeat", 1)
    assert waited >= interval * 0.95  # not before the interval (timers may round a little early)

    await write(cache, "b")
    assert seen(await step(items)) == ("changed", 2)
    began = time.monotonic()
    assert seen(await step(items)) == ("heartbeat", 2)
    assert time.monotonic() - began >= interval * 0.95
    await items.aclose()


async def test_a_subscriber_that_falls_behind_gets_the_whole_state_once() -> None:
    cache = await served(["a", "b"], queue_size=4)
    items = follow(ENV, cache, cache.hub, 0.05, as_is)
    assert seen(await step(items)) == ("opened", 2)
    # Nine writes while the subscriber reads nothing: 3-6 fill its queue of 4, 7 overflows it
    # (queue dropped, resync due), 8-11 queue again.
    for i in range(9):
        await write(cache, f"f{i}")
    resynced = await step(items)
    assert isinstance(resynced, Resynced) and resynced.reason == FELL_BEHIND
    assert resynced.snapshot.config_version == 11 and len(resynced.snapshot.entries) == 11
    # 8-11 are in the snapshot just sent: not sent again.
    assert seen(await step(items)) == ("heartbeat", 11)

    cache.hub.resync_all(ENV)  # a reload found drift
    assert seen(await step(items)) == ("resynced", 11)
    await write(cache, "g")
    assert seen(await step(items)) == ("changed", 12)
    await items.aclose()


async def test_whole_state_collapses_changes_a_snapshot_already_covers() -> None:
    cache = await served(["a"])
    items = follow(ENV, cache, cache.hub, 0.05, as_is, whole_state=True)
    assert seen(await step(items)) == ("opened", 1)
    for key in ("b", "c", "d"):
        await write(cache, key)
    first = await step(items)
    assert isinstance(first, Changed) and first.snapshot.config_version == 4
    assert seen(await step(items)) == ("heartbeat", 4)  # 3 and 4 were in that snapshot
    await items.aclose()

    # Without it, every change is its own item.
    items = follow(ENV, cache, cache.hub, 0.05, as_is)
    assert seen(await step(items)) == ("opened", 4)
    for key in ("e", "f"):
        await write(cache, key)
    got = [seen(await step(items)) for _ in range(3)]
    assert got == [("changed", 5), ("changed", 6), ("heartbeat", 6)]
    await items.aclose()


async def test_resume_replays_the_wanted_changes_after_since_then_follows() -> None:
    cache = await served(["a", "b", "c", "d"])
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=1, flag_keys={"b", "d", "e"})
    replayed = [await step(items) for _ in range(2)]
    assert [(seen(i), i.change.flag_key) for i in replayed if isinstance(i, Changed)] == [
        (("changed", 2), "b"),
        (("changed", 4), "d"),
    ]
    await write(cache, "x")  # not wanted
    await write(cache, "e")
    assert seen(await step(items)) == ("changed", 6)
    await items.aclose()


async def test_resume_reads_the_log_page_by_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_module, "REPLAY_PAGE", 2)
    cache = await served([f"f{i}" for i in range(7)])
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=0)
    assert [seen(await step(items)) for _ in range(7)] == [("changed", v) for v in range(1, 8)]
    await items.aclose()


async def test_resume_with_nothing_to_send_says_caught_up_at_once() -> None:
    cache = await served(["a", "b", "c"])
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=3)
    assert seen(await step(items)) == ("heartbeat", 3)
    await items.aclose()
    # Changes after `since`, none of them wanted: caught up at the last of them.
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=1, flag_keys={"z"})
    assert seen(await step(items)) == ("heartbeat", 3)
    await items.aclose()


async def test_resume_beyond_the_log_opens_with_the_whole_state() -> None:
    cache = await served(["a", "b", "c", "d"], max_changes=2)  # the log keeps 3 and 4 only
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=1)
    opened = await step(items)
    assert isinstance(opened, Opened) and opened.reason == RESUME_GAP
    assert opened.snapshot.config_version == 4
    await items.aclose()
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=2)  # 3 and 4 are still there
    assert [seen(await step(items)) for _ in range(2)] == [("changed", 3), ("changed", 4)]
    await items.aclose()


async def test_resume_ahead_of_this_replica_waits_for_it() -> None:
    cache = await served(["a", "b"])
    # Written through another replica: stored, not yet applied here.
    await cache.store.create_flag(flag("c"), actor="other replica")
    await cache.store.create_flag(flag("d"), actor="other replica")
    assert cache.get(ENV).config_version == 2
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=3)
    assert seen(await step(items)) == ("changed", 4)
    assert cache.get(ENV).config_version == 4
    await items.aclose()


class StalledLog(MemoryStore):
    """The memory store whose change log brings nothing new (a feed this replica cannot follow)."""

    async def list_changes(self, env: str, *, since_version: int = 0, limit: int = 1000) -> list[Change]:
        return []


async def test_resume_ahead_of_a_replica_that_stays_behind_is_unavailable() -> None:
    store = StalledLog()
    for key in ("a", "b"):
        await store.create_flag(flag(key), actor="test")
    cache = SnapshotCache(store, Hub(), [ENV], poll_interval=0.05)
    await cache.load()
    await store.create_flag(flag("c"), actor="other replica")  # stored: version 3
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=3)
    with pytest.raises(Unavailable, match="serves config_version 2, behind since_version 3; retry"):
        await step(items)
    assert cache.hub.count(ENV) == 0


async def test_resume_ahead_of_the_store_is_the_callers_mistake() -> None:
    cache = await served(["a", "b"])
    items = follow(ENV, cache, cache.hub, IDLE, as_is, since=3)
    ahead = r"since_version 3 is ahead of .* config_version 2 in the store"
    with pytest.raises(InvalidArgument, match=ahead):
        await step(items)
    assert cache.hub.count(ENV) == 0


async def test_shutdown_raises_unavailable_and_a_revoked_credential_ends_quietly() -> None:
    cache = await served(["a"])
    hub = cache.hub
    assert isinstance(hub, RecordingHub)
    items = follow(ENV, cache, hub, IDLE, as_is)
    assert seen(await step(items)) == ("opened", 1)
    waiting = asyncio.ensure_future(step(items))
    await asyncio.sleep(0.01)
    hub.close_all("server shutting down")
    with pytest.raises(Unavailable, match="server shutting down"):
        await waiting
    assert hub.count(ENV) == 0

    items = follow(ENV, cache, hub, IDLE, as_is)
    assert seen(await step(items)) == ("opened", 1)
    hub.made[-1].close("API key revoked")  # what the security layer does
    with pytest.raises(StopAsyncIteration):
        await step(items)
    assert hub.count(ENV) == 0


async def test_interleave_passes_each_message_as_it_comes_and_ends_with_the_first_to_end() -> None:
    """One stream that follows several environments: messages in the order they come, an error
    of any one ends it (a shutdown ends every follow), and the others are closed with it."""
    closed: list[str] = []
    seen_a1 = asyncio.Event()
    forever = asyncio.Event()

    async def a() -> AsyncGenerator[str, None]:
        try:
            yield "a0"
            yield "a1"
            await forever.wait()  # a follow never ends by itself
        finally:
            closed.append("a")

    async def b() -> AsyncGenerator[str, None]:
        try:
            await seen_a1.wait()
            yield "b0"
            raise Unavailable("shutting down")
        finally:
            closed.append("b")

    got: list[str] = []
    with pytest.raises(Unavailable):
        async for message in follow_module.interleave([a(), b()]):
            got.append(message)
            if message == "a1":
                seen_a1.set()
    assert got == ["a0", "a1", "b0"]
    assert sorted(closed) == ["a", "b"]
