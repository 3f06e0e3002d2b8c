"""The write builders of `vexil.store.records`, on their own: no store, no clock, no I/O.

Both stores persist exactly what these return, so each test writes out in full the records one
write must produce (the versioning rules of `vexil/store/base.py`, stated as values) and the
answer to a request that does not fit what is stored.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from vexil.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision
from vexil.store import records

AT = 1_800_000_000.25
"""The write's timestamp: the builders take it, they never read a clock."""


DEFINITION: dict[str, object] = {
    "key": "checkout",
    "environment": "prod",
    "variants": {"on": True, "off": False},
    "default_variant": "off",
    "owner": "team-a",
    "description": "new text",
}
"""The new definition every create and update below hands in."""


def proposed(**fields: object) -> Flag:
    """A definition as a caller hands it in, with values a store must not keep (version,
    timestamps, author, ownership of an update)."""
    values: dict[str, object] = {
        **DEFINITION,
        "version": 42,
        "created_at": 5.0,
        "updated_at": 6.0,
        "updated_by": "mallory",
    }
    values.update(fields)
    return Flag(**values)  # type: ignore[arg-type]


STORED = Flag(
    key="checkout",
    environment="prod",
    variants={"on": True, "off": False},
    default_variant="on",
    owner="team-a",
    description="old text",
    version=3,
    created_at=1_700_000_000.5,
    updated_at=1_750_000_000.5,
    updated_by="bob",
    managed_by="file:flags.yaml",
)
"""What the store holds now: version 3, created long ago, owned by a flags file."""


def written(flag: Flag, kind: ChangeKind, before: int, after: int, reason: str) -> records.FlagWrite:
    """The records one flag write by alice at AT must produce, in an environment at config
    version 6: the stored flag, its revision and the change, both at config version 7; for a
    delete, the stored flag is the tombstone and the change carries no flag."""
    deleted = kind is ChangeKind.DELETE
    return records.FlagWrite(
        flag=flag,
        revision=FlagRevision(
            flag=flag,
            kind=kind,
            actor="alice",
            timestamp=AT,
            config_version=7,
            reason=reason,
            deleted=deleted,
        ),
        change=Change(
            environment_name="prod",
            config_version=7,
            kind=kind,
            actor="alice",
            timestamp=AT,
            flag_key="checkout",
            before_version=before,
            after_version=after,
            reason=reason,
            flag=None if deleted else flag,
        ),
    )


def read(current: Flag | None, history_version: int = 0) -> records.FlagRead:
    """What a backend read: `current`, and the environment at config version 6."""
    return records.FlagRead(current=current, history_version=history_version, config_version=6, at=AT)


def create(current: Flag | None = None, history_version: int = 0) -> records.FlagWrite:
    flag = proposed(managed_by="file:flags.yaml")
    return records.create_write(flag, read(current, history_version), actor="alice", reason="launch")


def update(
    current: Flag | None = STORED,
    *,
    expected_version: int | None = 3,
    kind: ChangeKind = ChangeKind.UPDATE,
    history_version: int = 0,
) -> records.FlagWrite:
    return records.update_write(
        proposed(managed_by=""),
        read(current, history_version),
        expected_version=expected_version,
        kind=kind,
        actor="alice",
        reason="tweak",
    )


def delete(current: Flag | None = STORED, *, expected_version: int | None = 3) -> records.FlagWrite:
    return records.delete_write(
        "prod", "checkout", read(current), expected_version=expected_version, actor="alice", reason="retired"
    )


# --- create ---------------------------------------------------------------------------------


def test_create_assigns_version_one_timestamps_author_and_config_version() -> None:
    flag = Flag(
        **DEFINITION,  # type: ignore[arg-type]
        version=1,
        created_at=AT,
        updated_at=AT,
        updated_by="alice",
        managed_by="file:flags.yaml",
    )
    assert create() == written(flag, ChangeKind.CREATE, 0, 1, "launch")
    assert not create().deleted


def test_create_after_delete_continues_the_history() -> None:
    write = create(history_version=4)
    assert (write.flag.version, write.revision.flag.version) == (5, 5)
    assert (write.change.before_version, write.change.after_version) == (0, 5)


def test_create_of_an_existing_flag_already_exists() -> None:
    with pytest.raises(AlreadyExists, match=r"^flag prod/checkout already exists$"):
        create(current=STORED, history_version=3)


# --- update ---------------------------------------------------------------------------------


def test_update_keeps_created_at_and_ownership_and_bumps_both_versions() -> None:
    flag = Flag(
        **DEFINITION,  # type: ignore[arg-type]
        version=4,
        created_at=1_700_000_000.5,
        updated_at=AT,
        updated_by="alice",
        managed_by="file:flags.yaml",
    )
    assert update() == written(flag, ChangeKind.UPDATE, 3, 4, "tweak")


def test_update_without_expected_version_applies_on_top() -> None:
    assert update(expected_version=None).change.after_version == 4


def test_update_at_a_stale_version_conflicts_with_the_current_one() -> None:
    with pytest.raises(Conflict, match=r"^flag prod/checkout is at version 3, not 2$") as caught:
        update(expected_version=2)
    assert caught.value.current_version == 3


def test_update_of_a_missing_flag_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"^flag prod/checkout does not exist$"):
        update(current=None)


@pytest.mark.parametrize("kind", [ChangeKind.UPDATE, ChangeKind.ROLLBACK, ChangeKind.KILL])
def test_update_records_why(kind: ChangeKind) -> None:
    write = update(kind=kind)
    assert (write.revision.kind, write.change.kind) == (kind, kind)


@pytest.mark.parametrize("kind", [ChangeKind.CREATE, ChangeKind.DELETE, ChangeKind.ENVIRONMENT])
def test_update_refuses_the_kinds_of_other_writes(kind: ChangeKind) -> None:
    with pytest.raises(InvalidArgument, match="kind"):
        update(kind=kind)


@pytest.mark.parametrize(
    ("current_version", "history_version", "next_version"),
    [
        (3, 0, 4),  # the store did not need to look at the history
        (3, 3, 4),  # the history ends at the current version
        (1, 7, 8),  # a flag item provisioned by hand over an older vexil history
    ],
)
def test_update_version_is_one_past_the_newest_stored(
    current_version: int, history_version: int, next_version: int
) -> None:
    current = Flag(key="checkout", environment="prod", variants={}, version=current_version)
    write = update(current, expected_version=current_version, history_version=history_version)
    assert (write.change.before_version, write.change.after_version) == (current_version, next_version)
    assert write.flag.version == write.revision.flag.version == next_version


# --- delete ---------------------------------------------------------------------------------


def test_delete_records_a_tombstone_of_the_last_definition() -> None:
    # The last definition (STORED) as it was, with the delete's version, time and author.
    tombstone = replace(STORED, version=4, updated_at=AT, updated_by="alice")
    write = delete()
    assert write == written(tombstone, ChangeKind.DELETE, 3, 4, "retired")
    assert write.deleted


def test_delete_checks_like_update() -> None:
    with pytest.raises(NotFound, match=r"^flag prod/checkout does not exist$"):
        delete(current=None)
    with pytest.raises(Conflict, match=r"^flag prod/checkout is at version 3, not 9$") as caught:
        delete(expected_version=9)
    assert caught.value.current_version == 3
    assert delete(expected_version=None).change.after_version == 4


# --- environment ----------------------------------------------------------------------------


SETTINGS = Environment(
    name="prod",
    evaluators={"beta": {"in": ["x", {"var": "user"}]}},
    kill_switch=True,
    kill_reason="incident 7",
    metadata={"team": "a"},
)
"""The environment settings every environment write below hands in."""


def environment_write(config_version: int, expected: int | None) -> records.EnvironmentWrite:
    settings = replace(SETTINGS, config_version=99, updated_at=1.0, updated_by="mallory")
    return records.environment_write(
        lambda current: settings,
        Environment(name="prod", config_version=config_version),
        AT,
        expected_config_version=expected,
        actor="alice",
        reason="incident",
    )


def test_environment_write_bumps_the_config_version_once() -> None:
    environment = replace(SETTINGS, config_version=5, updated_at=AT, updated_by="alice")
    assert environment_write(4, 4) == records.EnvironmentWrite(
        environment=environment,
        change=Change(
            environment_name="prod",
            config_version=5,
            kind=ChangeKind.ENVIRONMENT,
            actor="alice",
            timestamp=AT,
            before_version=4,
            after_version=5,
            reason="incident",
            environment=environment,
        ),
    )


def test_environment_write_to_a_new_environment_and_without_a_check() -> None:
    assert environment_write(0, 0).environment.config_version == 1
    assert environment_write(4, None).change.after_version == 5


def test_environment_write_at_a_stale_config_version_conflicts() -> None:
    with pytest.raises(Conflict, match=r"^environment prod is at config version 4, not 3$") as caught:
        environment_write(4, 3)
    assert caught.value.current_version == 4


# --- purity ---------------------------------------------------------------------------------


def test_builders_leave_their_inputs_alone_and_repeat_exactly() -> None:
    before = (STORED, proposed(managed_by=""))
    assert update() == update()
    assert delete() == delete()
    assert (STORED, proposed(managed_by="")) == before


def test_environment_write_applies_its_change_to_the_environment_as_read() -> None:
    """A kill switch keeps what another write stored meanwhile (evaluators, metadata): the change
    is applied to what was read, not to a copy taken before."""
    read = replace(SETTINGS, kill_switch=False, kill_reason="", config_version=7)
    written = records.environment_write(
        lambda current: replace(current, kill_switch=True, kill_reason="incident 9"),
        read,
        AT,
        expected_config_version=None,
        actor="alice",
        reason="incident 9",
    )
    assert written.environment == replace(
        SETTINGS, kill_reason="incident 9", config_version=8, updated_at=AT, updated_by="alice"
    )
