"""A kill that races a definition update still kills, and keeps the update.

`set_flag_killed` hands the store the state alone: the store applies it to the flag as its write
reads it, so another writer (an operator, another replica) landing first is kept, and the kill
still lands: during an incident "the kill switch failed with a conflict" is the worst possible
answer.  The store below lets one concurrent update land just before the kill's write (a unit
fake around the memory store; tests/security/test_kill_switch.py races it on DynamoDB).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vexil.cache import SnapshotCache
from vexil.hub import Hub
from vexil.model import Flag, FlagState
from vexil.service import FlagService
from vexil.store.memory import MemoryStore


class OneRace(MemoryStore):
    """Before the first kill's write, another writer changes the flag's description."""

    def __init__(self) -> None:
        super().__init__()
        self.kill_writes = 0

    async def set_flag_state(self, env: str, key: str, state: FlagState, **kwargs: Any) -> Any:
        self.kill_writes += 1
        if self.kill_writes == 1:
            current = await self.get_flag(env, key)
            assert current is not None
            await self.update_flag(
                replace(current, description="changed meanwhile"), expected_version=None, actor="other"
            )
        return await super().set_flag_state(env, key, state, **kwargs)


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
    assert store.kill_writes == 1  # no refusal, no second try
    assert change.flag is not None and change.flag.version == stored.version == 3
