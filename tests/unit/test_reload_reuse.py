"""What is compiled again, and what is kept: a full reload keeps the compiled entries of flags it
finds unchanged (`cache.assemble` with the served snapshot), so a periodic reload of a quiet
environment compiles nothing.  What counts as unchanged is strict, there and when an environment
change is applied: a value changed from 1 to true is equal in Python and must still be
recompiled, and changed `$evaluators` or flag-set metadata recompile every flag."""

from __future__ import annotations

from typing import Any

from tests.support.flags import flag_model
from vexil.cache import SnapshotCache, _drifted, assemble
from vexil.hub import Hub
from vexil.model import Change, ChangeKind, Environment, Flag
from vexil.snapshot import Snapshot, compile_entry
from vexil.store.memory import MemoryStore

RULE = {"if": [{"$ref": "isStaff"}, "on", "off"]}


class Editable(MemoryStore):
    """A store whose environment is whatever the test last put in `flags` and `environment`
    (as a table edited by hand between two reloads)."""

    def __init__(self, flags: list[Flag]) -> None:
        super().__init__()
        self.flags = flags
        self.environment = environment({"isStaff": {"ends_with": [{"var": "email"}, "@corp.example"]}})

    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        return self.environment, self.flags


def environment(evaluators: dict[str, Any], metadata: dict[str, Any] | None = None) -> Environment:
    return Environment(name="local", evaluators=evaluators, metadata=metadata or {}, config_version=5)


def flags() -> list[Flag]:
    return [
        flag_model("counter", {"one": 1, "two": 2}, "one", environment="local"),
        flag_model("staff", {"on": True, "off": False}, "off", RULE, environment="local"),
        flag_model("plain", {"on": True, "off": False}, "on", environment="local"),
    ]


async def test_a_reload_of_unchanged_flags_compiles_none_of_them() -> None:
    store = Editable(flags())
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    before = dict(cache.get("local").entries)
    store.flags = flags()  # read again: equal flags, not the same objects
    await cache.reload("local")
    after = cache.get("local").entries
    assert before.keys() == after.keys() == {"counter", "staff", "plain"}
    assert all(after[key] is before[key] for key in before)


async def test_a_flag_changed_only_in_a_json_type_is_drift() -> None:
    served = await assemble(environment({}), flags())
    edited = [flag_model("counter", {"one": True, "two": 2}, "one", environment="local"), *flags()[1:]]
    assert not await _drifted(served, await assemble(environment({}), flags()))
    assert await _drifted(served, await assemble(environment({}), edited))


async def test_a_flag_changed_only_in_a_json_type_is_recompiled_and_served_as_stored() -> None:
    store = Editable(flags())
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    before = dict(cache.get("local").entries)
    one = cache.get("local").evaluate("counter", {})[0]
    assert (one.value, type(one.value)) == (1, int)
    # The same flag with variant "one" now true: equal to the old one as far as Python's == goes.
    edited = flag_model("counter", {"one": True, "two": 2}, "one", environment="local")
    assert edited == store.flags[0]
    store.flags = [edited, *store.flags[1:]]
    await cache.reload("local")
    after = cache.get("local").entries
    assert after["counter"] is not before["counter"]
    assert after["staff"] is before["staff"] and after["plain"] is before["plain"]
    served = cache.get("local").evaluate("counter", {})[0]
    assert (served.value, type(served.value)) == (True, bool)


async def test_changed_evaluators_or_flag_set_metadata_recompile_every_flag() -> None:
    for change in (
        environment({"isStaff": {"ends_with": [{"var": "email"}, "@example.org"]}}),
        environment(
            {"isStaff": {"ends_with": [{"var": "email"}, "@corp.example"]}}, metadata={"team": "core"}
        ),
    ):
        store = Editable(flags())
        cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
        await cache.load()
        before = dict(cache.get("local").entries)
        store.environment = change
        await cache.reload("local")
        after = cache.get("local").entries
        assert not any(after[key] is before[key] for key in before)
    staff = cache.get("local").evaluate("staff", {"email": "ann@corp.example"})[0]
    assert staff.variant == "on" and staff.flag_metadata == {"team": "core"}


def test_an_environment_change_of_metadata_types_only_recompiles_the_flags() -> None:
    before = environment({}, metadata={"tier": 1})
    snapshot = Snapshot(before, {f.key: compile_entry(f, before) for f in flags()})
    assert snapshot.evaluate("plain", {})[0].flag_metadata == {"tier": 1}
    after = environment({}, metadata={"tier": True})
    assert after.metadata == before.metadata  # equal to Python
    change = Change("local", 6, ChangeKind.ENVIRONMENT, "t", 0.0, environment=after)
    served = snapshot.apply(change).evaluate("plain", {})[0].flag_metadata["tier"]
    assert (served, type(served)) == (True, bool)
