"""Large snapshots stay out of the cyclic collector's full passes, and building one (for a reload
or an environment change that recompiles every flag), comparing a reload with the served one and
freeing a replaced one give the loop back (`vexil.heap`, `cache.assemble`, `cache.advance`,
`cache._drifted`).

The freeze is only sound because a snapshot holds no reference cycles: a dropped one must be freed
by reference counting alone, whatever its rules use.  The rules below are written here to reach
every operator family the engine compiles."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest

from tests.support.flags import flag_model
from vexil import heap
from vexil.cache import SnapshotCache, _drifted, assemble
from vexil.hub import Hub
from vexil.model import Change, ChangeKind, Environment, Flag
from vexil.snapshot import Snapshot
from vexil.store.memory import MemoryStore

T = TypeVar("T")

TIERS = {"gold": "gold", "silver": "silver", "none": "none"}
RULES = [
    {"if": [{"and": [{"==": [{"var": "country"}, "US"]}, {">=": [{"var": "age"}, 21]}]}, "gold", "none"]},
    {"if": [{"or": [{"in": [{"var": "plan"}, ["pro", "team"]]}, {"!": {"var": "churned"}}]}, "silver", None]},
    {
        "if": [
            {"starts_with": [{"var": "email"}, "a"]},
            "gold",
            {"ends_with": [{"var": "email"}, ".jp"]},
            "silver",
            "none",
        ]
    },
    {"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "3.2.0"]}, "gold", "none"]},
    {
        "fractional": [
            {"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]},
            ["gold", 50],
            ["none", 50],
        ]
    },
    {"if": [{"some": [{"var": "groups"}, {"==": [{"var": ""}, "beta"]}]}, "gold", "none"]},
    {
        "if": [
            {
                ">": [
                    {
                        "reduce": [
                            {"map": [{"var": "scores"}, {"*": [{"var": ""}, 2]}]},
                            {"+": [{"var": "current"}, {"var": "accumulator"}]},
                            0,
                        ]
                    },
                    10,
                ]
            },
            "gold",
            "none",
        ]
    },
    {
        "if": [
            {"all": [{"filter": [{"var": "scores"}, {">": [{"var": ""}, 1]}]}, {"<": [{"var": ""}, 100]}]},
            "silver",
            "none",
        ]
    },
    {"if": [{"missing": ["email", "age"]}, "none", {"substr": [{"var": "email"}, 0, 4]}]},
    {"if": [{"$ref": "isStaff"}, "gold", "none"]},
]
EVALUATORS = {"isStaff": {"ends_with": [{"var": "email"}, "@corp.example"]}}
CONTEXT = {
    "country": "US",
    "age": 30,
    "plan": "pro",
    "churned": False,
    "email": "ann@corp.example",
    "appVersion": "3.4.1",
    "targetingKey": "user-1",
    "groups": ["beta", "alpha"],
    "scores": [1, 5, 9],
}


def flags(count: int) -> list[Flag]:
    return [
        flag_model(f"f{i:05d}", TIERS, "none", RULES[i % len(RULES)], environment="local")
        for i in range(count)
    ]


@pytest.fixture
def thawed() -> Iterator[None]:
    """Whatever a test freezes is put back in the collector's reach afterwards."""
    yield
    gc.unfreeze()


async def turns_during(work: Awaitable[T]) -> tuple[T, int]:
    """`work`'s result, and how many turns of the event loop another task got while it ran (none
    when it held the loop from start to end)."""
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0)

    counting = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    result = await work
    during = ticks - before
    running = False
    await counting
    return result, during


def test_a_dropped_snapshot_leaves_no_cyclic_garbage() -> None:
    environment = Environment(name="local", evaluators=EVALUATORS)
    gc.collect()
    gc.disable()
    try:
        snapshot = Snapshot.build(environment, flags(4 * len(RULES)))
        answers = [snapshot.evaluate(flag.key, CONTEXT)[0] for flag in snapshot.flags()]
        assert {answer.variant for answer in answers} >= {"gold", "silver", "none"}
        del snapshot, answers
        assert gc.collect() == 0
    finally:
        gc.enable()


class Prepared(MemoryStore):
    """A store whose environment is a list of flags given up front."""

    def __init__(self, prepared: list[Flag]) -> None:
        super().__init__()
        self.prepared = prepared

    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        return Environment(name=env, evaluators=EVALUATORS), self.prepared


@pytest.mark.parametrize(
    ("count", "frozen"), [(heap.LARGE_ENVIRONMENT, True), (heap.LARGE_ENVIRONMENT - 1, False)]
)
async def test_a_large_reload_is_taken_out_of_full_collections(
    count: int, frozen: bool, thawed: None
) -> None:
    gc.unfreeze()
    cache = SnapshotCache(Prepared(flags(count)), Hub(), ["local"], poll_interval=3600)
    await cache.load()
    assert len(cache.get("local").entries) == count
    assert (gc.get_freeze_count() > count * 10) is frozen


async def test_building_a_snapshot_gives_the_loop_back() -> None:
    snapshot, during = await turns_during(
        assemble(Environment(name="local", evaluators=EVALUATORS), flags(3000))
    )
    assert len(snapshot.entries) == 3000
    assert during >= 10  # a build of about 0.3 s yields every 5 ms; held whole, the ticker never runs


async def test_a_replaced_snapshot_is_freed_a_chunk_at_a_time() -> None:
    freed: list[int] = []

    class Finalized:
        def __del__(self) -> None:
            freed.append(1)

    count = 5 * heap.RELEASE_CHUNK
    seen: list[int] = []
    releasing = True

    async def watcher() -> None:
        while releasing:
            seen.append(len(freed))
            await asyncio.sleep(0)

    watching = asyncio.create_task(watcher())
    await asyncio.sleep(0)
    await heap.release([Finalized() for _ in range(count)])
    releasing = False
    await watching
    assert len(freed) == count
    # Between chunks the loop ran: the watcher saw the count at each chunk boundary.
    assert set(range(0, count, heap.RELEASE_CHUNK)) <= set(seen)


@pytest.mark.parametrize(
    ("count", "released"), [(heap.LARGE_ENVIRONMENT, True), (heap.LARGE_ENVIRONMENT - 1, False)]
)
async def test_a_large_reload_releases_the_snapshot_it_replaces(
    count: int, released: bool, thawed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    release = heap.release

    async def spy(entries: list[object]) -> None:
        calls.append(len(entries))
        await release(entries)

    monkeypatch.setattr(heap, "release", spy)
    cache = SnapshotCache(Prepared(flags(count)), Hub(), ["local"], poll_interval=3600)
    await cache.load()
    assert calls == []
    await cache.reload("local")
    assert calls == ([count] if released else [])


# A reload compared with the served snapshot: drift is anything the change log did not say.
def static(key: str, **fields: object) -> Flag:
    """A flag whose variant holds 1,000 numbers made for it (equal flags share no objects, so
    comparing two takes a while)."""
    variants = {"on": {"rows": [i + 0.5 for i in range(1000)]}, "off": {"rows": []}}
    return flag_model(key, variants, "on", environment="local", **fields)


def environment_at(version: int) -> Environment:
    return Environment(name="local", config_version=version)


DRIFTS = [
    ("same flags, same version", [static("a"), static("b")], 7, False),
    ("a flag changed", [static("a", description="by hand"), static("b")], 7, True),
    ("a flag missing", [static("a")], 7, True),
    ("a flag more", [static("a"), static("b"), static("c")], 7, True),
    ("another version", [static("a"), static("b")], 8, True),
]


@pytest.mark.parametrize(("name", "reloaded", "version", "drift"), DRIFTS, ids=[d[0] for d in DRIFTS])
async def test_a_reload_drifted_when_it_differs_from_the_served_snapshot(
    name: str, reloaded: list[Flag], version: int, drift: bool
) -> None:
    served = await assemble(environment_at(7), [static("a"), static("b")])
    fresh = await assemble(environment_at(version), reloaded)
    assert await _drifted(served, fresh) is drift


async def test_comparing_a_reload_with_the_served_snapshot_gives_the_loop_back() -> None:
    many = [static(f"f{i:05d}") for i in range(3000)]
    served = await assemble(environment_at(1), many)
    fresh = await assemble(environment_at(1), [static(f.key) for f in many])  # equal, not the same
    drifted, during = await turns_during(_drifted(served, fresh))
    assert not drifted
    # 3,000 flags whose variants hold 1,000 numbers each take several 5 ms slices to compare;
    # held whole, the ticker never runs.
    assert during >= 3


async def test_an_environment_change_that_recompiles_every_flag_gives_the_loop_back() -> None:
    store = Prepared(flags(3000))
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    served = cache.get("local")
    evaluators = {"isStaff": {"ends_with": [{"var": "email"}, "@example.org"]}}
    changed = Environment(name="local", evaluators=evaluators, config_version=served.config_version + 1)
    change = Change("local", changed.config_version, ChangeKind.ENVIRONMENT, "t", 0.0, environment=changed)
    _, during = await turns_during(cache.apply(change))
    after = cache.get("local")
    assert after.config_version == change.config_version and after.environment.evaluators == evaluators
    assert not any(after.entries[key] is served.entries[key] for key in served.entries)
    assert during >= 10  # compiling 3,000 flags takes about 0.3 s; in one step the ticker never runs
