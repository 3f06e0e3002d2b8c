"""Memory-store specifics: the bounded change log and write atomicity on one event loop."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from tests.support.flags import flag_model
from vexil.errors import Conflict
from vexil.store.memory import MemoryStore

flag = partial(flag_model, default=None, environment="dev")


async def test_change_log_is_trimmed_to_its_bound() -> None:
    store = MemoryStore(max_changes=5)
    await store.create_flag(flag("a"), actor="t")
    for n in range(1, 10):
        await store.update_flag(flag("a", description=str(n)), expected_version=n, actor="t")
    changes = await store.list_changes("dev")
    assert [c.config_version for c in changes] == [6, 7, 8, 9, 10]
    # A consumer that asks from before the window sees the gap and knows to reload.
    assert (await store.list_changes("dev", since_version=2))[0].config_version == 6
    assert [c.config_version for c in await store.list_changes("dev", since_version=8)] == [9, 10]
    # History is not trimmed.
    assert len((await store.get_history("dev", "a", page_size=100)).items) == 10


def test_max_changes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryStore(max_changes=0)


async def test_concurrent_writers_each_land_or_conflict() -> None:
    store = MemoryStore()
    await store.create_flag(flag("race"), actor="t")

    async def writer(n: int) -> int:
        current = await store.get_flag("dev", "race")
        assert current is not None
        await asyncio.sleep(0)
        change = await store.update_flag(
            flag("race", description=str(n)), expected_version=current.version, actor=f"w{n}"
        )
        return change.after_version

    results = await asyncio.gather(*(writer(n) for n in range(20)), return_exceptions=True)
    landed = [r for r in results if isinstance(r, int)]
    assert all(isinstance(r, int | Conflict) for r in results)
    history = await store.get_history("dev", "race", page_size=100)
    assert [r.flag.version for r in history.items] == list(range(len(landed) + 1, 0, -1))
    changes = await store.list_changes("dev")
    assert [c.config_version for c in changes] == list(range(1, len(landed) + 2))
