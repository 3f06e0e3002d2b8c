"""The portable export: lossless round trips through a table and through a server's admin API
(the embedded store's only door), and a damaged file refused before anything is written."""

from __future__ import annotations

import asyncio
import json

from google.protobuf import struct_pb2

from tests.support.dynamo import REGION, guide_item
from tests.support.flags import flag_pb
from tests.support.ops import server_args, vexil
from tests.support.pki import make_pki
from tests.support.secure import open_secure
from tests.support.servers import Connected, bearer, connected, running_app, server_settings
from vexil.model import Environment, Flag, FlagState
from vexil.ops import exportfile, tables, verify
from vexil.ops import items as itemsets
from vexil.store.dynamodb import DynamoStore
from vexil.store.dynamodb_client import ClientSettings, client_for
from vexil.v1 import admin_pb2, flag_pb2

TARGETING = {"if": [{"in": [{"var": "country"}, ["JP", "KR"]]}, "on", "off"]}


async def seed_table(table: str, endpoint: str) -> None:
    store = DynamoStore(table, endpoint_url=endpoint)
    await store.start()
    try:
        await store.update_environment(
            Environment(
                name="local",
                evaluators={"asia": {"in": [{"var": "country"}, ["JP"]]}},
                metadata={"team": "ops"},
            ),
            expected_config_version=None,
            actor="test",
        )
        for n in range(12):
            flag = Flag(
                key=f"flag-{n:02d}",
                environment="local",
                variants={"on": True, "off": False, "price": 1.5} if n % 3 else {"a": "x", "b": "y"},
                default_variant="on" if n % 3 else "a",
                targeting=TARGETING if n % 3 == 1 else None,
                description=f"flag number {n} — テスト",
                owner="team-a" if n % 2 else "",
                tags=("t1", "t2") if n % 4 == 0 else (),
            )
            await store.create_flag(flag, actor="test")
        await store.update_flag(
            Flag(
                key="flag-01",
                environment="local",
                variants={"on": True, "off": False},
                default_variant="off",
                state=FlagState.DISABLED,
            ),
            expected_version=None,
            actor="test",
        )
        await store.delete_flag("local", "flag-02", expected_version=None, actor="test")
    finally:
        await store.close()


async def scan(table: str, endpoint: str) -> list[dict]:
    async with client_for(ClientSettings(endpoint_url=endpoint)) as client:
        return await tables.scan_items(client, table)


async def test_table_export_import_round_trip_is_lossless(dynamo_table, tmp_path) -> None:
    endpoint, table = dynamo_table
    await seed_table(table, endpoint)
    ddb = ["--dynamodb-endpoint", endpoint]
    exported = tmp_path / "export.json"
    done = await vexil("backup", "export", str(exported), "--from", "table", "--table", table, *ddb, "--json")
    assert done.code == 0, done.err
    header = json.loads(done.out)
    assert header["counts"]["FLAG"] == 11 and header["counts"]["CHANGE"] == 15
    assert header["checksum"].startswith("sha256:")

    copy = f"{table}-copy"
    imported = await vexil(
        "backup", "import", str(exported), "--into", "table", "--table", copy, *ddb, "--json"
    )
    assert imported.code == 0, imported.err
    assert json.loads(imported.out)["items"] == header["itemCount"]

    same = await vexil("backup", "verify", str(exported), f"table:{copy}", *ddb, "--json")
    assert same.code == 0, same.out + same.err
    report = json.loads(same.out)
    assert report["equal"] and report["matching"] == header["itemCount"]

    # Source and copy hold the same items, byte for byte: the same checksum.
    source, copied = await scan(table, endpoint), await scan(copy, endpoint)
    assert verify.compare(source, copied).equal
    assert itemsets.checksum(copied) == itemsets.checksum(source) == header["checksum"]

    # The copy serves: a server on it answers like one on the source.
    settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=copy)
    async with running_app(settings) as app, connected(app) as c:
        got = await c.admin.GetFlag(admin_pb2.GetFlagRequest(key="flag-01"))
        assert got.version == 2 and got.default_variant == "off"

    # Into a table that already holds data: refused unless forced.
    refused = await vexil("backup", "import", str(exported), "--into", "table", "--table", copy, *ddb)
    assert refused.code == 4 and "not empty" in refused.err


async def test_damaged_export_is_refused_before_writing(dynamo_table, tmp_path) -> None:
    endpoint, table = dynamo_table
    await seed_table(table, endpoint)
    ddb = ["--dynamodb-endpoint", endpoint]
    exported = tmp_path / "export.json"
    exportfile.write(exported, exportfile.Export(items=await scan(table, endpoint)))
    document = json.loads(exported.read_text())
    document["items"][5]["description"] = {"S": "changed by hand"}
    exported.write_text(json.dumps(document))
    refused = await vexil("backup", "import", str(exported), "--into", "table", "--table", f"{table}-x", *ddb)
    assert refused.code == 2 and "checksum mismatch" in refused.err
    async with client_for(ClientSettings(endpoint_url=endpoint)) as client:
        assert not await tables.table_exists(client, f"{table}-x")  # never created


async def test_embedded_store_round_trip_through_the_admin_api(tmp_path) -> None:
    async with running_app(server_settings()) as a, running_app(server_settings()) as b, connected(a) as c:
        evaluators = struct_pb2.Struct()
        evaluators.update({"asia": {"in": [{"var": "country"}, ["JP", "KR"]]}})
        await c.admin.UpdateEnvironment(admin_pb2.UpdateEnvironmentRequest(evaluators=evaluators))
        await c.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("plain", default="on", owner="web", tags=["x"]))
        )
        await c.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(
                flag=flag_pb("targeted", default="on", targeting={"if": [{"$ref": "asia"}, "on", "off"]})
            )
        )
        await c.admin.UpdateFlag(
            admin_pb2.UpdateFlagRequest(flag=flag_pb("plain", default="off", owner="web"))
        )
        await c.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="incident 42"))

        first = tmp_path / "a.json"
        out = await vexil("backup", "export", str(first), *server_args(a), "--json")
        assert out.code == 0, out.err
        counts = json.loads(out.out)["counts"]
        assert counts == {
            "FLAG": 2,
            "FLAG_VERSION": 3,
            "ENVIRONMENT": 1,
            "CHANGE": 0,
            "ADOPTION": 0,
            "APIKEY": 0,
            "OTHER": 0,
        }

        dry = await vexil("backup", "import", str(first), "--dry-run", *server_args(b))
        assert dry.code == 0 and "would import" in dry.out
        done = await vexil("backup", "import", str(first), *server_args(b), "--json")
        assert done.code == 0, done.err
        summary = json.loads(done.out)
        assert summary["environments"][0]["created"] == ["plain", "targeted"]
        assert summary["environments"][0]["kill_switch"] is True
        assert summary["not_imported"]["history"] == 3

        second = tmp_path / "b.json"
        assert (await vexil("backup", "export", str(second), *server_args(b))).code == 0
        same = await vexil("backup", "verify", str(first), str(second), "--scope", "definitions", "--json")
        assert same.code == 0, same.out
        assert json.loads(same.out)["matching"] == 3  # two flags and the environment
        # Exactly, the copies differ where the API makes its own versions and history.
        exact = verify.compare(exportfile.read(first).items, exportfile.read(second).items)
        assert exact.missing == [("FLAG#local#plain", "VERSION#000000000002")]


async def test_forced_import_of_an_older_export_makes_the_table_equal_to_it(dynamo_table, tmp_path) -> None:
    """The README's restore over a served table: `--force`, then `vexil dynamodb adopt`.  The
    table must end up holding exactly the export (the items the export does not hold removed):
    a change-log entry left ahead of the restored environment item would be replayed by the
    replicas and would take the slot of every later write."""
    endpoint, table = dynamo_table
    ddb = ["--dynamodb-endpoint", endpoint, "--table", table]
    settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with running_app(settings) as app, connected(app) as c:

        async def create(key: str) -> None:
            made = await vexil(
                "flags", "create", key, "--default", "on", "--reason", "r", "--target", c.target
            )
            assert made.code == 0, made.err

        await create("a")
        older = tmp_path / "older.json"
        assert (await vexil("backup", "export", str(older), "--from", "table", *ddb)).code == 0
        await create("b")
        await create("c")

        done = await vexil("backup", "import", str(older), "--into", "table", "--force", *ddb, "--json")
        assert done.code == 0, done.err
        # b and c, each: the flag item, its first revision and its change-log entry (docs/dynamodb.md).
        assert json.loads(done.out)["removed"] == 6
        same = await vexil("backup", "verify", str(older), f"table:{table}", *ddb)
        assert same.code == 0, same.out + same.err

        adopted = await vexil("dynamodb", "adopt", *ddb)
        assert adopted.code == 0, adopted.err
        for _ in range(50):  # the replica switches on its next poll (0.2 s here)
            status = await c.admin.GetStatus(admin_pb2.GetStatusRequest())
            if status.environments[0].config_version == 1:
                break
            await asyncio.sleep(0.1)
        await create("d")  # the environment takes writes again
        listed = await c.admin.ListFlags(admin_pb2.ListFlagsRequest())
        assert [f.key for f in listed.flags] == ["a", "d"]


async def test_server_export_holds_a_flag_written_by_hand(dynamo_table, tmp_path) -> None:
    """README: an item in the guide's shape (`aws dynamodb put-item`) is served; it has no history
    until vexil first writes it, and the server door of the export must still back it up."""
    import boto3

    endpoint, table = dynamo_table
    raw = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    raw.put_item(TableName=table, Item=guide_item("by-hand", "local"))
    raw.close()
    settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with running_app(settings) as app, connected(app) as c:
        for _ in range(100):  # found by the full reload one poll after the start
            listed = await c.admin.ListFlags(admin_pb2.ListFlagsRequest())
            if [f.key for f in listed.flags] == ["by-hand"]:
                break
            await asyncio.sleep(0.1)
        exported = tmp_path / "by-hand.json"
        out = await vexil("backup", "export", str(exported), "--target", c.target, "--json")
        assert out.code == 0, out.err
        assert json.loads(out.out)["counts"]["FLAG"] == 1
        flag = exportfile.read(exported).items
        assert [itemsets.key_of(i) for i in flag if itemsets.kind_of(i) == "FLAG"] == [
            ("FLAG#local#by-hand", "METADATA")
        ]


async def state_of(c: Connected, key: str) -> int:
    return (await c.admin.GetFlag(admin_pb2.GetFlagRequest(key=key))).state


async def test_a_server_restore_keeps_the_state_a_flag_was_deleted_in(tmp_path) -> None:
    """README: a flag deleted and created again comes back in the state it was deleted in; the
    server door's export holds "flags and their history", so on a restored server it must too."""
    async with (
        running_app(server_settings()) as a,
        running_app(server_settings()) as b,
        connected(a) as source,
        connected(b) as restored,
    ):
        for key in ("gone-killed", "gone-live"):
            await source.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key, default="on")))
        await source.admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="gone-killed", killed=True, reason="incident")
        )
        for key in ("gone-killed", "gone-live"):
            await source.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key=key, reason="gone"))

        backup = tmp_path / "backup.json"
        out = await vexil("backup", "export", str(backup), "--target", source.target, "--json")
        assert out.code == 0, out.err
        # Two creates, one kill, two deletions: five revisions.
        assert json.loads(out.out)["counts"]["FLAG_VERSION"] == 5
        done = await vexil("backup", "import", str(backup), "--target", restored.target, "--json")
        assert done.code == 0, done.err
        summary = json.loads(done.out)["environments"][0]
        assert summary["deletions_recorded"] == ["gone-killed", "gone-live"]
        listed = await restored.admin.ListFlags(admin_pb2.ListFlagsRequest())
        assert list(listed.flags) == []  # deleted there as here

        for c in (source, restored):
            for key in ("gone-killed", "gone-live"):
                await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key, default="on")))
            assert await state_of(c, "gone-killed") == flag_pb2.FLAG_STATE_DISABLED
            assert await state_of(c, "gone-live") == flag_pb2.FLAG_STATE_ENABLED

        again = await vexil("backup", "import", str(backup), "--target", restored.target, "--json")
        assert again.code == 0, again.err  # live on the server now: kept, not deleted
        assert json.loads(again.out)["environments"][0]["deleted_but_held"] == ["gone-killed", "gone-live"]


async def test_a_server_restore_sets_kill_states_with_the_admin_role_only(tmp_path) -> None:
    """A restore brings back each flag's state, which only SetKillSwitch changes and only an
    admin may call (README, the kill switch): with an editor's key it is refused, naming the
    role, before anything changes; with an admin's it sets them."""
    pki = make_pki(tmp_path / "pki")
    async with (
        running_app(server_settings()) as a,
        connected(a) as source,
        open_secure(pki) as target,
    ):
        admin = await target.issue("admin")
        editor = await target.issue("editor")
        await source.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("k", default="on")))
        await source.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("e", default="on")))
        await source.admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="k", killed=True, reason="i")
        )
        # The target holds both the other way round, with another definition.
        md = bearer(admin)
        await target.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("k", default="off")), metadata=md
        )
        await target.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("e", default="off", state="DISABLED")), metadata=md
        )
        backup = tmp_path / "backup.json"
        assert (await vexil("backup", "export", str(backup), "--target", source.target)).code == 0

        def restore(token: str) -> list[str]:
            return [
                "backup",
                "import",
                str(backup),
                "--target",
                target.target,
                "--ca-cert",
                pki.ca,
                "--token",
                token,
            ]

        async def seen() -> list[tuple[str, str, int]]:
            listed = await target.admin.ListFlags(admin_pb2.ListFlagsRequest(), metadata=md)
            return [(f.key, f.default_variant, f.state) for f in listed.flags]

        before = await seen()
        refused = await vexil(*restore(editor))
        assert refused.code == 5, refused.err
        assert "admin" in refused.err and refused.err.count("\n") == 1
        assert await seen() == before

        done = await vexil(*restore(admin), "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["environments"][0]["states_set"] == ["e", "k"]
        assert await seen() == [
            ("e", "on", flag_pb2.FLAG_STATE_ENABLED),
            ("k", "on", flag_pb2.FLAG_STATE_DISABLED),
        ]
