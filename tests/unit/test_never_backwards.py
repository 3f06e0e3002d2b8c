"""The snapshot cache never moves backwards: a store found behind the served snapshot (here: the
cache handed a new, empty store, as a table recreated under a replica looks) is held off until an
operator adopts its state, whatever happens to the store meanwhile."""

from __future__ import annotations

import logging
from functools import partial

import pytest

from tests.support.flags import flag_model
from vexil.cache import SnapshotCache
from vexil.hub import RESYNC, Hub
from vexil.store.memory import MemoryStore

ENV = "local"


flag = partial(flag_model, default="on", environment=ENV)


async def served_by(store: MemoryStore, keys: list[str]) -> SnapshotCache:
    for key in keys:
        await store.create_flag(flag(key), actor="test")
    cache = SnapshotCache(store, Hub(), [ENV], poll_interval=0.05)
    await cache.load()
    return cache


async def test_a_store_behind_is_held_off_until_adopted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = await served_by(MemoryStore(), ["a", "b"])
    sub = cache.hub.subscribe(ENV)
    recreated = MemoryStore()
    cache.store = recreated  # the table recreated, empty, under the running replica

    with caplog.at_level(logging.ERROR, logger="vexil.cache"):
        await cache.catch_up(ENV)  # the change-log poll notices
    status = cache.status(ENV)
    assert (status.config_version, status.flags) == (2, 2)
    assert status.regressed and not status.healthy
    assert "went backwards" in status.last_error and "config_version 0" in status.last_error
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "store memory went backwards for environment local" in caplog.records[0].getMessage()

    await cache.reload(ENV)  # and the periodic full reload holds it too
    assert sorted(cache.get(ENV).entries) == ["a", "b"]

    # Rebuilt past the served version, by writes through this replica: another history still,
    # stored but not served, and the hold stays until an operator vouches for it.
    for key in ("x", "y", "z"):
        await cache.apply(await recreated.create_flag(flag(key), actor="test"))
    await cache.catch_up(ENV)
    await cache.reload(ENV)
    assert sorted(cache.get(ENV).entries) == ["a", "b"] and cache.status(ENV).regressed
    assert len(caplog.records) == 1, "one ERROR per regression, not one per poll"
    assert sub.pending == 0

    await recreated.adopt(ENV, actor="operator")
    await cache.catch_up(ENV)
    status = cache.status(ENV)
    assert sorted(cache.get(ENV).entries) == ["x", "y", "z"] and status.config_version == 3
    assert status.healthy and not status.regressed and status.last_error == ""
    assert await sub.next(0) is RESYNC  # subscribers get the adopted state as a fresh snapshot


async def test_a_store_emptied_at_the_same_version_is_held_off() -> None:
    store = MemoryStore()
    cache = await served_by(store, ["a"])
    await cache.apply(await store.update_flag(flag("a"), expected_version=None, actor="test"))
    emptied = MemoryStore()
    await emptied.create_flag(flag("gone"), actor="test")
    await emptied.delete_flag(ENV, "gone", expected_version=None, actor="test")
    assert await emptied.stored_config_version(ENV) == cache.get(ENV).config_version == 2
    cache.store = emptied

    await cache.reload(ENV)
    status = cache.status(ENV)
    assert status.regressed and "no flags" in status.last_error
    assert sorted(cache.get(ENV).entries) == ["a"]


async def test_a_store_adopted_before_the_replica_started_is_simply_served() -> None:
    store = MemoryStore()
    await store.adopt(ENV, actor="operator")
    cache = await served_by(store, ["a"])
    assert not cache.status(ENV).regressed
    await cache.catch_up(ENV)
    await cache.reload(ENV)
    status = cache.status(ENV)
    assert status.healthy and not status.regressed and status.flags == 1
