"""On-demand backups and PITR on the emulator, through the CLI: a backup, then changes, then a
restore into a new table, and `verify` names exactly the items the changes touched."""

from __future__ import annotations

import asyncio
import json
from functools import partial

from tests.support.flags import flag_model
from tests.support.ops import vexil
from tests.support.servers import running_app, server_settings
from vexil.store import dynamodb_items as items
from vexil.store.dynamodb import DynamoStore

flag = partial(flag_model, default="on")


def item(pk: str, sk: str) -> str:
    return f"{pk}/{sk}"


async def test_backup_change_restore_and_verify_names_the_changes(dynamo_table) -> None:
    endpoint, table = dynamo_table
    where = ["--dynamodb-endpoint", endpoint, "--table", table]
    store = DynamoStore(table, endpoint_url=endpoint)
    await store.start()
    try:
        for key in ("alpha", "bravo", "charlie"):
            await store.create_flag(flag(key), actor="test")

        created = await vexil("backup", "create", "--name", "before-changes", *where, "--json")
        assert created.code == 0, created.err
        backup = json.loads(created.out)
        assert backup["status"] == "AVAILABLE" and backup["name"] == "before-changes"

        updated = await store.update_flag(flag("alpha", default="off"), expected_version=1, actor="test")
        deleted = await store.delete_flag("local", "bravo", expected_version=1, actor="test")
        added = await store.create_flag(flag("delta"), actor="test")
    finally:
        await store.close()

    listed = await vexil("backup", "list", *where)
    assert listed.code == 0 and "before-changes" in listed.out and "AVAILABLE" in listed.out

    restored = await vexil("backup", "restore", "before-changes", "--to", f"{table}-restored", *where)
    assert restored.code == 0, restored.err
    assert f"into {table}-restored" in restored.out and "pitr enable" in restored.out

    result = await vexil("backup", "verify", f"table:{table}", f"table:{table}-restored", *where, "--json")
    assert result.code == 7, result.err  # differences found
    report = json.loads(result.out)
    env = items.env_pk("local")
    assert report["different"] == [
        {"item": item(env, "METADATA"), "kind": "ENVIRONMENT", "attributes": ["changedAt", "configVersion"]},
        {
            "item": item(items.flag_pk("local", "alpha"), "METADATA"),
            "kind": "FLAG",
            "attributes": ["defaultEnabled", "defaultVariant", "updatedAt", "version"],
        },
    ]
    # In the source now, not in the backup: what the three writes added.
    assert set(report["missing"]) == {
        item(items.flag_pk("local", "alpha"), items.version_sk(updated.after_version)),
        item(items.flag_pk("local", "bravo"), items.version_sk(deleted.after_version)),  # the tombstone
        item(items.flag_pk("local", "delta"), "METADATA"),
        item(items.flag_pk("local", "delta"), items.version_sk(1)),
        *(item(env, items.change_sk(c.config_version)) for c in (updated, deleted, added)),
    }
    # In the backup, gone from the source: the deleted flag.
    assert report["extra"] == [item(items.flag_pk("local", "bravo"), "METADATA")]
    assert report["matching"] == report["expected"] - len(report["missing"]) - 2

    text = await vexil("backup", "verify", f"table:{table}", f"table:{table}-restored", *where)
    assert "missing    FLAG#local#delta/METADATA" in text.out
    assert "extra      FLAG#local#bravo/METADATA" in text.out
    assert "different  FLAG#local#alpha/METADATA" in text.out


async def test_point_in_time_recovery_enable_status_restore(dynamo_table) -> None:
    endpoint, table = dynamo_table
    where = ["--dynamodb-endpoint", endpoint, "--table", table]
    status = await vexil("backup", "pitr", "status", *where, "--json")
    assert status.code == 0 and json.loads(status.out)["enabled"] is False
    refused = await vexil("backup", "pitr", "restore", "--to", f"{table}-pitr", *where)
    assert refused.code == 2 and "not enabled" in refused.err

    enabled = await vexil("backup", "pitr", "enable", *where, "--json")
    assert enabled.code == 0 and json.loads(enabled.out)["enabled"] is True
    restored = await vexil("backup", "pitr", "restore", "--to", f"{table}-pitr", *where, "--json")
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["table"] == f"{table}-pitr"
    # The emulator ignores the requested time, so the restored contents are not checked here;
    # the described table is: same key schema and indexes as vexil's.
    described = await vexil(
        "dynamodb", "describe", "--table", f"{table}-pitr", "--dynamodb-endpoint", endpoint
    )
    assert described.code == 0, described.out + described.err
    bad_time = await vexil("backup", "pitr", "restore", "--to", "x-y-z", "--time", "yesterday", *where)
    assert bad_time.code == 2 and "ISO-8601" in bad_time.err


async def test_a_faithful_restore_of_a_served_table_verifies_equal(dynamo_table, tmp_path) -> None:
    """The operations guide's step 4 while the fleet still runs on the source: each replica
    rewrites its registry item (`ENV#<env>/REPLICA#<id>`) every heartbeat, which is no data
    (docs/dynamodb.md), so neither the comparison nor an export's counts may include it."""
    endpoint, table = dynamo_table
    where = ["--dynamodb-endpoint", endpoint, "--table", table]
    settings = server_settings(
        store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table, replica_heartbeat=0.2
    )
    async with running_app(settings) as app:
        target = f"127.0.0.1:{app.port}"
        made = await vexil("flags", "create", "a", "--default", "on", "--reason", "r", "--target", target)
        assert made.code == 0, made.err
        assert (await vexil("backup", "create", "--name", "served", *where)).code == 0
        restored = await vexil("backup", "restore", "served", "--to", f"{table}-restored", *where)
        assert restored.code == 0, restored.err
        await asyncio.sleep(0.6)  # a few heartbeats: the source's registry item is newer than the backup's

        result = await vexil(
            "backup", "verify", f"table:{table}", f"table:{table}-restored", *where, "--json"
        )
        assert result.code == 0, result.out + result.err
        # The flag, its first revision, the environment and one change-log entry.
        assert json.loads(result.out)["matching"] == 4

        exported = await vexil(
            "backup", "export", str(tmp_path / "served.json"), "--from", "table", *where, "--json"
        )
        assert exported.code == 0, exported.err
        counts = json.loads(exported.out)["counts"]
        assert (counts["FLAG"], counts["FLAG_VERSION"], counts["ENVIRONMENT"], counts["CHANGE"]) == (
            1,
            1,
            1,
            1,
        )
        assert json.loads(exported.out)["itemCount"] == 4
