"""The `FlagStore` contract, run against every backend (see the `store` fixture in conftest).

Each test states one rule of `vexil/store/base.py`; a backend passes only if it behaves exactly
like the others, so the service can switch stores by configuration alone.
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.support.flags import flag_model
from vexil.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from vexil.model import ChangeKind, Environment, Flag, FlagState
from vexil.store import paging
from vexil.store.base import FlagStore
from vexil.store.records import MAX_ITEM_BYTES

ENV = "staging"

RICH_VARIANTS = {
    "small": {"n": 1, "f": 1.0, "half": 0.5, "big": 2**53 + 1, "neg": -3},
    "nested": {"list": [1, 2.5, "x", None, True, {"deep": [[]]}], "empty": {}},
    "unicode": {"text": "日本語 ✓ émoji 🚩", "quote": "\"'\\"},
}


make_flag = partial(flag_model, environment=ENV, owner="team-a")


async def config_version(store: FlagStore) -> int:
    environment, _ = await store.load_environment(ENV)
    return environment.config_version


async def test_store_satisfies_protocol(store: FlagStore) -> None:
    assert isinstance(store, FlagStore)
    assert store.name in ("memory", "dynamodb")
    await store.ping()


def test_a_backend_missing_part_of_the_contract_cannot_be_built() -> None:
    """The contract is enforced when a backend is built, not when a caller first needs a read."""
    from vexil.store.memory import MemoryStore

    class WritesOnly(FlagStore):
        name = "writes-only"
        _write_flag = MemoryStore._write_flag
        _write_environment = MemoryStore._write_environment

    with pytest.raises(TypeError, match="abstract"):
        WritesOnly()  # type: ignore[abstract]


async def test_create_then_get_round_trips_exactly(store: FlagStore) -> None:
    flag = make_flag(
        "rich",
        variants=RICH_VARIANTS,
        default="small",
        targeting={"if": [{"in": ["@example.com", {"var": "email"}]}, "nested", None]},
        tags=("checkout", "beta"),
        metadata={"team": "payments", "ratio": 0.25, "count": 3},
        state=FlagState.DISABLED,
        version=42,
    )
    change = await store.create_flag(flag, actor="alice", reason="launch")
    assert change.kind is ChangeKind.CREATE
    assert (change.config_version, change.before_version, change.after_version) == (1, 0, 1)
    assert (change.actor, change.reason, change.flag_key) == ("alice", "launch", "rich")
    stored = change.flag
    assert stored is not None
    assert stored.version == 1  # the caller's version is ignored
    assert stored.created_at == stored.updated_at == change.timestamp > 0
    assert stored.updated_by == "alice"
    fetched = await store.get_flag(ENV, "rich")
    assert fetched == stored
    assert fetched.variants == RICH_VARIANTS
    assert type(fetched.variants["small"]["f"]) is float
    assert type(fetched.variants["small"]["n"]) is int
    assert fetched.state is FlagState.DISABLED
    assert fetched.tags == ("checkout", "beta")


async def test_store_keeps_its_own_copy(store: FlagStore) -> None:
    variants = {"a": {"x": 1}, "b": {"x": 2}}
    await store.create_flag(make_flag("copy", variants=variants, default="a"), actor="t")
    variants["a"]["x"] = 99
    fetched = await store.get_flag(ENV, "copy")
    assert fetched is not None and fetched.variants["a"] == {"x": 1}


async def test_get_missing_flag_is_none(store: FlagStore) -> None:
    assert await store.get_flag(ENV, "nope") is None
    assert await store.get_flag("other-env", "nope") is None


async def test_create_existing_raises_and_writes_nothing(store: FlagStore) -> None:
    await store.create_flag(make_flag("dup", description="flag dup"), actor="a")
    with pytest.raises(AlreadyExists):
        await store.create_flag(make_flag("dup", description="second"), actor="b")
    fetched = await store.get_flag(ENV, "dup")
    assert fetched is not None and fetched.description == "flag dup"
    assert await config_version(store) == 1


@pytest.mark.parametrize(
    "flag",
    [
        make_flag("bad#key"),
        make_flag(""),
        Flag(key="ok", environment="Bad Env", variants={}),
        make_flag("nan", variants={"a": float("nan")}),
        make_flag("set", variants={"a": {1, 2}}),
        make_flag("state", state="MAYBE"),
    ],
    ids=["hash-in-key", "empty-key", "bad-env", "nan", "set", "bad-state"],
)
async def test_invalid_flag_is_refused(store: FlagStore, flag: Flag) -> None:
    with pytest.raises(InvalidArgument):
        await store.create_flag(flag, actor="a")
    assert await config_version(store) == 0


async def test_oversized_flag_is_refused_and_nothing_stored(store: FlagStore) -> None:
    huge = make_flag("huge", variants={"a": "x" * (MAX_ITEM_BYTES + 1), "b": "y"}, default="b")
    with pytest.raises(InvalidArgument):
        await store.create_flag(huge, actor="a")
    assert await store.get_flag(ENV, "huge") is None
    assert await store.list_changes(ENV) == []
    assert (await store.get_history(ENV, "huge")).items == []
    await store.create_flag(make_flag("huge"), actor="a")
    with pytest.raises(InvalidArgument):
        await store.update_flag(huge, expected_version=1, actor="a")
    fetched = await store.get_flag(ENV, "huge")
    assert fetched is not None and fetched.version == 1


async def test_list_flags_in_key_order_with_page_tokens(store: FlagStore) -> None:
    keys = ["k-05", "k-01", "a.b", "k-03", "Z_upper", "k-02", "k-04"]
    for key in keys:
        await store.create_flag(make_flag(key), actor="a")
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await store.list_flags(ENV, page_size=3, page_token=token)
        assert len(page.items) <= 3
        seen.extend(f.key for f in page.items)
        pages += 1
        token = page.next_token
        if not token:
            break
    assert seen == sorted(keys)
    assert pages == 3
    whole = await store.list_flags(ENV)
    assert [f.key for f in whole.items] == sorted(keys) and whole.next_token == ""
    assert (await store.list_flags("empty-env")).items == []


async def test_list_flags_by_owner_and_tag(store: FlagStore) -> None:
    for i in range(6):
        await store.create_flag(
            make_flag(f"f{i}", owner="team-a" if i % 2 else "team-b", tags=("even",) if i % 2 == 0 else ()),
            actor="a",
        )
    by_owner = await store.list_flags(ENV, owner="team-a")
    assert [f.key for f in by_owner.items] == ["f1", "f3", "f5"]
    first = await store.list_flags(ENV, owner="team-b", page_size=2)
    assert [f.key for f in first.items] == ["f0", "f2"] and first.next_token
    second = await store.list_flags(ENV, owner="team-b", page_size=2, page_token=first.next_token)
    assert [f.key for f in second.items] == ["f4"] and second.next_token == ""
    by_tag = await store.list_flags(ENV, tag="even", page_size=1)
    keys = [f.key for f in by_tag.items]
    token = by_tag.next_token
    while token:
        page = await store.list_flags(ENV, tag="even", page_size=1, page_token=token)
        keys.extend(f.key for f in page.items)
        token = page.next_token
    assert keys == ["f0", "f2", "f4"]
    assert (await store.list_flags(ENV, owner="nobody")).items == []


async def test_list_flags_rejects_garbage_token(store: FlagStore) -> None:
    with pytest.raises(InvalidArgument):
        await store.list_flags(ENV, page_token="!!not-a-token!!")


async def test_list_flags_refuses_bad_arguments_alike(store: FlagStore) -> None:
    await store.create_flag(make_flag("only"), actor="a")
    with pytest.raises(InvalidArgument) as bad_env:
        await store.list_flags("Not An Env")
    assert bad_env.value.field == "environment"
    with pytest.raises(InvalidArgument, match="page token belongs to another listing"):
        await store.list_flags(ENV, page_token=paging.encode_version_token(1))  # a history page's
    # Zero or less means the default page size, not an empty page.
    assert [f.key for f in (await store.list_flags(ENV, page_size=0)).items] == ["only"]
    assert [f.key for f in (await store.list_flags(ENV, page_size=-5)).items] == ["only"]


async def test_update_with_expected_version(store: FlagStore) -> None:
    created = (await store.create_flag(make_flag("u"), actor="a")).flag
    assert created is not None
    change = await store.update_flag(
        make_flag("u", default="on", description="turned on"),
        expected_version=1,
        actor="bob",
        reason="go",
    )
    assert change.kind is ChangeKind.UPDATE
    assert (change.config_version, change.before_version, change.after_version) == (2, 1, 2)
    updated = await store.get_flag(ENV, "u")
    assert updated == change.flag
    assert updated is not None
    assert updated.version == 2 and updated.default_variant == "on"
    assert updated.created_at == created.created_at
    assert updated.updated_by == "bob" and updated.updated_at >= created.updated_at


async def test_update_with_stale_version_conflicts_and_changes_nothing(store: FlagStore) -> None:
    await store.create_flag(make_flag("s"), actor="a")
    await store.update_flag(make_flag("s", description="v2"), expected_version=1, actor="a")
    before_flag = await store.get_flag(ENV, "s")
    before_changes = await store.list_changes(ENV)
    before_history = await store.get_history(ENV, "s")
    with pytest.raises(Conflict) as caught:
        await store.update_flag(make_flag("s", description="stale"), expected_version=1, actor="b")
    assert caught.value.current_version == 2
    assert await store.get_flag(ENV, "s") == before_flag
    assert await store.list_changes(ENV) == before_changes
    assert await store.get_history(ENV, "s") == before_history
    with pytest.raises(Conflict) as ahead:
        await store.delete_flag(ENV, "s", expected_version=7, actor="b")
    assert ahead.value.current_version == 2
    assert await store.get_flag(ENV, "s") == before_flag


async def test_update_without_expected_version_applies_on_top(store: FlagStore) -> None:
    await store.create_flag(make_flag("n"), actor="a")
    await store.update_flag(make_flag("n", description="2"), expected_version=None, actor="a")
    change = await store.update_flag(
        make_flag("n", description="3"), expected_version=None, kind=ChangeKind.KILL, actor="a"
    )
    assert change.kind is ChangeKind.KILL and change.after_version == 3
    fetched = await store.get_flag(ENV, "n")
    assert fetched is not None and fetched.description == "3" and fetched.version == 3


async def test_update_missing_flag_is_not_found(store: FlagStore) -> None:
    with pytest.raises(NotFound):
        await store.update_flag(make_flag("ghost"), expected_version=None, actor="a")
    with pytest.raises(NotFound):
        await store.update_flag(make_flag("ghost"), expected_version=1, actor="a")
    assert await config_version(store) == 0


async def test_delete_keeps_history_and_recreate_continues_versions(store: FlagStore) -> None:
    await store.create_flag(make_flag("d"), actor="a")
    await store.update_flag(make_flag("d", description="v2"), expected_version=1, actor="a")
    change = await store.delete_flag(ENV, "d", expected_version=2, actor="carol", reason="cleanup")
    assert change.kind is ChangeKind.DELETE and change.flag is None
    assert (change.flag_key, change.before_version, change.after_version) == ("d", 2, 3)
    assert await store.get_flag(ENV, "d") is None
    assert "d" not in [f.key for f in (await store.list_flags(ENV)).items]
    with pytest.raises(NotFound):
        await store.delete_flag(ENV, "d", expected_version=None, actor="a")
    history = await store.get_history(ENV, "d")
    assert [r.flag.version for r in history.items] == [3, 2, 1]
    assert history.items[0].deleted and history.items[0].kind is ChangeKind.DELETE
    assert history.items[0].flag.description == "v2"  # the last definition, kept for restore
    # A create that names the history it decided on (the service carries a deleted flag's state
    # over from it) is refused when the history has moved on, and writes nothing.
    for stale in (0, 2, 4):
        with pytest.raises(Conflict) as err:
            await store.create_flag(make_flag("d"), actor="a", after_version=stale)
        assert err.value.current_version == 3
    assert await config_version(store) == 3
    recreated = await store.create_flag(make_flag("d", description="again"), actor="a", after_version=3)
    assert recreated.flag is not None and recreated.flag.version == 4
    assert recreated.before_version == 0 and recreated.after_version == 4
    assert [r.flag.version for r in (await store.get_history(ENV, "d")).items] == [4, 3, 2, 1]


async def test_history_newest_first_with_pages_and_revisions(store: FlagStore) -> None:
    await store.create_flag(make_flag("h", description="r1"), actor="a")
    for n in range(2, 8):
        await store.update_flag(make_flag("h", description=f"r{n}"), expected_version=n - 1, actor=f"u{n}")
    versions: list[int] = []
    token = ""
    while True:
        page = await store.get_history(ENV, "h", page_size=3, page_token=token)
        versions.extend(r.flag.version for r in page.items)
        token = page.next_token
        if not token:
            break
    assert versions == [7, 6, 5, 4, 3, 2, 1]
    revision = await store.get_revision(ENV, "h", 4)
    assert revision is not None
    assert revision.flag.description == "r4" and revision.actor == "u4"
    assert revision.kind is ChangeKind.UPDATE and not revision.deleted
    assert revision.config_version == 4 and revision.timestamp == revision.flag.updated_at
    first = await store.get_revision(ENV, "h", 1)
    assert first is not None and first.kind is ChangeKind.CREATE
    assert await store.get_revision(ENV, "h", 99) is None
    assert await store.get_revision(ENV, "never", 1) is None
    assert (await store.get_history(ENV, "never")).items == []


async def test_rollback_records_its_kind(store: FlagStore) -> None:
    await store.create_flag(make_flag("r", description="good"), actor="a")
    await store.update_flag(make_flag("r", description="bad"), expected_version=1, actor="a")
    good = await store.get_revision(ENV, "r", 1)
    assert good is not None
    change = await store.update_flag(good.flag, expected_version=2, kind=ChangeKind.ROLLBACK, actor="a")
    assert change.kind is ChangeKind.ROLLBACK and change.flag is not None
    assert change.flag.description == "good" and change.flag.version == 3


async def test_environment_defaults_then_updates(store: FlagStore) -> None:
    environment, flags = await store.load_environment(ENV)
    assert environment == Environment(name=ENV) and flags == []
    await store.create_flag(make_flag("e1"), actor="a")
    evaluators = {"beta": {"in": [{"var": "email"}, ["a@x.io", "b@x.io"]]}, "w": 0.5}
    change = await store.update_environment(
        Environment(
            name=ENV,
            evaluators=evaluators,
            kill_switch=True,
            kill_reason="incident 42",
            metadata={"region": "ap-northeast-1"},
        ),
        expected_config_version=1,
        actor="ops",
        reason="incident",
    )
    assert change.kind is ChangeKind.ENVIRONMENT and change.config_version == 2
    assert change.flag is None and change.environment is not None
    environment, flags = await store.load_environment(ENV)
    assert environment == change.environment
    assert await store.read_environment(ENV) == change.environment
    assert await store.read_environment("other") == Environment(name="other")
    assert environment.kill_switch and environment.kill_reason == "incident 42"
    assert environment.evaluators == evaluators and environment.config_version == 2
    assert environment.updated_by == "ops"
    assert [f.key for f in flags] == ["e1"]
    with pytest.raises(Conflict) as caught:
        await store.update_environment(Environment(name=ENV), expected_config_version=1, actor="x")
    assert caught.value.current_version == 2
    # A flag write bumps the config version but keeps the environment's settings.
    await store.create_flag(make_flag("e2"), actor="a")
    environment, _ = await store.load_environment(ENV)
    assert environment.config_version == 3 and environment.kill_switch
    assert environment.evaluators == evaluators
    await store.update_environment(Environment(name=ENV), expected_config_version=None, actor="ops")
    environment, _ = await store.load_environment(ENV)
    assert not environment.kill_switch and environment.config_version == 4


async def test_config_version_is_gap_free_and_change_log_pages(store: FlagStore) -> None:
    await store.create_flag(make_flag("c1"), actor="a")
    await store.create_flag(make_flag("c2"), actor="a")
    await store.update_flag(make_flag("c1", description="x"), expected_version=1, actor="a")
    with pytest.raises(Conflict):
        await store.update_flag(make_flag("c1"), expected_version=1, actor="a")
    await store.update_environment(
        Environment(name=ENV, kill_switch=True), expected_config_version=None, actor="a"
    )
    await store.delete_flag(ENV, "c2", expected_version=None, actor="a")
    await store.create_flag(make_flag("c2"), actor="a")
    changes = await store.list_changes(ENV)
    assert [c.config_version for c in changes] == [1, 2, 3, 4, 5, 6]
    assert [c.kind for c in changes] == [
        ChangeKind.CREATE,
        ChangeKind.CREATE,
        ChangeKind.UPDATE,
        ChangeKind.ENVIRONMENT,
        ChangeKind.DELETE,
        ChangeKind.CREATE,
    ]
    assert [(c.flag_key, c.after_version) for c in changes if c.flag_key] == [
        ("c1", 1),
        ("c2", 1),
        ("c1", 2),
        ("c2", 2),
        ("c2", 3),
    ]
    assert [c.config_version for c in await store.list_changes(ENV, since_version=2, limit=2)] == [3, 4]
    assert [c.config_version for c in await store.list_changes(ENV, since_version=4)] == [5, 6]
    assert await store.list_changes(ENV, since_version=6) == []
    # ListChanges takes a uint64: every value past the log is an empty page, never an error.
    for past in (10**12 - 1, 10**12, 5 * 10**12, 2**63 - 1, 2**63, 2**64 - 1):
        assert await store.list_changes(ENV, since_version=past) == [], past
    assert await store.list_changes("elsewhere") == []
    revision = await store.get_revision(ENV, "c1", 2)
    assert revision is not None and changes[2].flag == revision.flag
    assert (await store.load_environment(ENV))[0].config_version == 6


async def test_environments_are_independent(store: FlagStore) -> None:
    await store.create_flag(make_flag("same"), actor="a")
    other = Flag(key="same", environment="prod", variants={"on": True, "off": False}, default_variant="on")
    change = await store.create_flag(other, actor="a")
    assert change.config_version == 1
    prod, prod_flags = await store.load_environment("prod")
    staging, staging_flags = await store.load_environment(ENV)
    assert prod.config_version == staging.config_version == 1
    assert [f.default_variant for f in prod_flags] == ["on"]
    assert [f.default_variant for f in staging_flags] == ["off"]


async def test_load_environment_returns_every_flag(store: FlagStore) -> None:
    keys = [f"load-{i:03d}" for i in range(30)]
    for key in keys:
        await store.create_flag(make_flag(key), actor="a")
    await store.delete_flag(ENV, "load-007", expected_version=1, actor="a")
    environment, flags = await store.load_environment(ENV)
    assert environment.config_version == 31
    assert sorted(f.key for f in flags) == [k for k in keys if k != "load-007"]
    assert all(f.version == 1 for f in flags)


async def test_stored_config_version_and_adoption(store: FlagStore) -> None:
    """What a replica reads on each poll to tell a quiet store from one that went backwards,
    and the operator's adoption record, which environment writes never erase."""
    assert await store.stored_config_version(ENV) == 0
    assert await store.adoption(ENV) == ""
    await store.create_flag(make_flag("a"), actor="t")
    await store.create_flag(make_flag("b"), actor="t")
    assert await store.stored_config_version(ENV) == 2

    first = await store.adopt(ENV, actor="operator")
    assert first and await store.adoption(ENV) == first
    await store.update_environment(
        Environment(name=ENV, metadata={"team": "x"}), expected_config_version=None, actor="t"
    )
    assert await store.adoption(ENV) == first
    assert await store.stored_config_version(ENV) == 3
    second = await store.adopt(ENV, actor="operator")
    assert second != first and await store.adoption(ENV) == second
    # Adopting writes nothing a snapshot is built from.
    environment, flags = await store.load_environment(ENV)
    assert environment.config_version == 3 and [f.key for f in flags] == ["a", "b"]
    assert [c.config_version for c in await store.list_changes(ENV)] == [1, 2, 3]
    assert await store.adoption("elsewhere") == "" and await store.stored_config_version("elsewhere") == 0


@pytest.mark.parametrize(
    ("reason", "message"),
    [("\ud800 incident", "lone surrogate"), ("x" * 1025, "at most 1,024")],
    ids=["lone-surrogate", "over-1024-characters"],
)
async def test_a_reason_every_reader_can_carry_or_nothing_is_written(
    store: FlagStore, reason: str, message: str
) -> None:
    """The reason is kept with the change and the revision: text UTF-8 cannot carry would break
    every later ListChanges, history page and Watch resume, and a long one every page's size."""
    await store.create_flag(make_flag("r"), actor="a")
    writes = [
        lambda: store.create_flag(make_flag("r2"), actor="a", reason=reason),
        lambda: store.update_flag(
            make_flag("r", description="x"), expected_version=1, actor="a", reason=reason
        ),
        lambda: store.delete_flag(ENV, "r", expected_version=1, actor="a", reason=reason),
        lambda: store.update_environment(
            Environment(name=ENV, kill_switch=True), expected_config_version=None, actor="a", reason=reason
        ),
    ]
    for write in writes:
        with pytest.raises(InvalidArgument) as refused:
            await write()
        assert refused.value.field == "reason" and message in refused.value.message
    assert await config_version(store) == 1
    assert [c.config_version for c in await store.list_changes(ENV)] == [1]
    await store.update_flag(make_flag("r"), expected_version=1, actor="a", reason="x" * 1024)
