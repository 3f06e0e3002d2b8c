"""An environment write (the kill switch above all) reads the environment item, not every flag.

During an incident the kill switch must cost the same with 10 flags as with 10,000: the write
starts from the stored environment (not the cache, which may lag) and needs nothing else: the
store's write reads the environment item itself, so the service makes no read at all.  The
store below records which reads the service makes (a unit fake around the memory store).
"""

from __future__ import annotations

from vexil.cache import SnapshotCache
from vexil.hub import Hub
from vexil.model import Environment, Flag
from vexil.service import FlagService
from vexil.store.memory import MemoryStore


class ReadLog(MemoryStore):
    """The memory store, noting each whole-environment load and each environment-item read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        self.reads.append("load_environment")
        return await super().load_environment(env)

    async def read_environment(self, env: str) -> Environment:
        self.reads.append("read_environment")
        return await super().read_environment(env)


async def test_the_kill_switch_reads_the_environment_item_and_no_flag() -> None:
    store = ReadLog()
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    service = FlagService(store, cache, "local")
    for n in range(3):
        await service.create_flag(
            Flag(key=f"f{n}", environment="local", variants={"on": True}, default_variant="on"), actor="t"
        )
    store.reads.clear()
    change = await service.set_environment_killed("local", True, actor="ops", reason="incident 7")
    assert change.environment is not None and change.environment.kill_switch
    assert store.reads == []
    await service.set_environment_killed("local", False, actor="ops", reason="")
    assert store.reads == []
    assert not (await store.read_environment("local")).kill_switch
