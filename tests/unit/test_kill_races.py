"""A kill that races a definition update still kills, and keeps the update.

`set_flag_killed` reads the stored flag and writes it back conditionally on the version read.  When
another writer (an operator, another replica) lands in between, the conditional write fails; the
kill must then read again and win, not give up: during an incident "the kill switch failed with a
conflict" is the worst possible answer.  The store below lets exactly one concurrent update land
between the kill's read and its write (a unit fake around the memory store).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vexil.cache import SnapshotCache
from vexil.hub import Hub
from vexil.model import ChangeKind, Flag, FlagState
from vexil.service import FlagService
from vexil.store.memory import MemoryStore


class OneRace(MemoryStore):
    """Before the first KILL write, another writer changes the flag's description."""

    def __init__(self) -> None:
        super().__init__()
        self.kill_writes = 0

    async def update_flag(self, flag: Flag, **kwargs: Any) -> Any:
        if kwargs.get("kind") is ChangeKind.KILL:
            self.kill_writes += 1
            if self.kill_writes == 1:
                current = await self.get_flag(flag.environment, flag.key)
                assert current is not None
                await super().update_flag(
                    replace(current, description="changed meanwhile"), expected_version=None, actor="other"
                )
        return await super().update_flag(flag, **kwargs)


async def test_a_kill_that_loses_a_race_reads_again_and_wins() -> None:
    store = OneRace()
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    service = FlagService(store, cache, "local")
    await service.create_flag(
        Flag(key="checkout", environment="local", variants={"on": True}, default_variant="on"), actor="t"
    )
    change = await service.set_flag_killed("local", "checkout", True, actor="ops", reason="incident 9")
    stored = await store.get_flag("local", "checkout")
    assert stored is not None
    assert stored.state is FlagState.DISABLED  # the kill landed
    assert stored.description == "changed meanwhile"  # and did not undo the other write
    assert store.kill_writes == 2  # one refused write, one fresh read and write
    assert change.flag is not None and change.flag.version == stored.version == 3
