"""`SnapshotCache.require_store`: writes are refused at once only while the change feed finds the
store unreachable (`Unavailable`), not for other feed errors, and again accepted once it recovers."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime

import pytest

from vexil.cache import SnapshotCache
from vexil.errors import InvalidArgument, Unavailable, VexilError
from vexil.hub import Hub
from vexil.model import Change
from vexil.store.memory import MemoryStore


class FlakyStore(MemoryStore):
    """The memory store whose change-log reads fail with `fail` while it is set (a unit fake)."""

    fail: VexilError | None = None

    async def list_changes(self, env: str, *, since_version: int = 0, limit: int = 1000) -> list[Change]:
        if self.fail is not None:
            raise self.fail
        return await super().list_changes(env, since_version=since_version, limit=limit)


async def until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_writes_are_refused_only_while_the_store_is_unreachable() -> None:
    store = FlakyStore()
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=0.01)
    await cache.load()
    cache.start_feed()
    try:
        cache.require_store("local")  # healthy: no error

        began = time.time()
        store.fail = Unavailable("DynamoDB unreachable while querying the table: ConnectTimeoutError")
        await until(lambda: not cache.status("local").healthy)
        with pytest.raises(Unavailable) as err:
            cache.require_store("local")
        found = re.fullmatch(r"store unavailable since (\S+): DynamoDB unreachable .+", err.value.message)
        assert found, err.value.message
        since = datetime.fromisoformat(found.group(1)).timestamp()  # whole seconds, rounded down
        assert int(began) <= since <= time.time()

        # A feed error that is not about reaching the store does not stop writes.
        store.fail = InvalidArgument("something else")
        await until(lambda: cache.status("local").last_error == "something else")
        cache.require_store("local")

        store.fail = Unavailable("down again")
        await until(lambda: cache.status("local").last_error == "down again")
        with pytest.raises(Unavailable, match=r"store unavailable since .*: down again"):
            cache.require_store("local")

        store.fail = None
        await until(lambda: cache.status("local").healthy)
        cache.require_store("local")
    finally:
        await cache.stop_feed()
