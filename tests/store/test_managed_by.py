"""Flag ownership (`Flag.managed_by`) is part of the store contract: set when a flag is created,
kept by every later write whatever that write carries, and recorded in the history; items and
records written before it existed read as API-managed ("")."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from tests.support.flags import flag_model
from vexil.model import ChangeKind, FlagState
from vexil.store import dynamodb_items as items
from vexil.store import records
from vexil.store.base import FlagStore

ENV = "staging"
FILE = "file:flags.yaml"


flag = partial(flag_model, environment=ENV)


async def test_ownership_is_set_at_creation_and_kept_by_every_write(store: FlagStore) -> None:
    await store.create_flag(flag("owned", managed_by=FILE), actor="file")
    await store.create_flag(flag("api"), actor="alice")
    assert (await store.get_flag(ENV, "owned")).managed_by == FILE
    assert (await store.get_flag(ENV, "api")).managed_by == ""

    # An update through the API carries no owner; a write cannot hand a flag to a file either.
    await store.update_flag(flag("owned", default="on"), expected_version=1, actor="alice")
    await store.update_flag(flag("api", managed_by=FILE), expected_version=1, actor="alice")
    killed = replace(await store.get_flag(ENV, "owned"), state=FlagState.DISABLED, managed_by="")
    await store.update_flag(killed, expected_version=2, kind=ChangeKind.KILL, actor="bob")
    current = await store.get_flag(ENV, "owned")
    assert (current.managed_by, current.state, current.version) == (FILE, FlagState.DISABLED, 3)
    assert (await store.get_flag(ENV, "api")).managed_by == ""

    _, loaded = await store.load_environment(ENV)
    assert {f.key: f.managed_by for f in loaded} == {"owned": FILE, "api": ""}
    history = await store.get_history(ENV, "owned", page_size=10)
    assert [r.flag.managed_by for r in history.items] == [FILE, FILE, FILE]
    changes = await store.list_changes(ENV, since_version=0, limit=10)
    assert [c.flag.managed_by for c in changes if c.flag_key == "owned"] == [FILE, FILE, FILE]


def test_items_and_records_without_ownership_read_as_api_managed() -> None:
    stored = replace(flag("old"), version=1)
    item = items.flag_to_item(stored)
    assert "managedBy" not in item  # API flags' items look exactly as before
    assert items.flag_from_item(item).managed_by == ""
    owned = items.flag_to_item(replace(stored, managed_by=FILE))
    assert owned["managedBy"] == {"S": FILE}
    assert items.flag_from_item(owned).managed_by == FILE

    record = records.flag_to_record(stored)
    del record["managedBy"]  # a history or change-log record written before ownership existed
    assert records.flag_from_record(record).managed_by == ""
