"""`vexil dr drill` against the emulator: it backs up, restores into a new table, verifies item by
item, serves the restored table, prints each step's time against RTO / RPO, and cleans up."""

from __future__ import annotations

import json
import re

from tests.support.flags import flag_model
from tests.support.ops import vexil
from vexil.model import Environment
from vexil.ops import backups
from vexil.store.dynamodb import DynamoStore
from vexil.store.dynamodb_client import ClientSettings, client_for


async def test_drill_completes_and_prints_its_timings(dynamo_table) -> None:
    endpoint, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint)
    await store.start()
    try:
        for env in ("local", "prod"):
            await store.update_environment(
                Environment(name=env, metadata={"region": "ap-northeast-1"}),
                expected_config_version=None,
                actor="t",
            )
            for n in range(5):
                await store.create_flag(flag_model(f"f{n}", default="on", environment=env), actor="test")
    finally:
        await store.close()

    ran = await vexil("dr", "drill", "--table", table, "--dynamodb-endpoint", endpoint)
    assert ran.code == 0, ran.out + ran.err
    steps = dict(re.findall(r"^\d+\s+([a-z ]+?)\s+(\d+\.\d+) s\s+ok", ran.out, re.MULTILINE))
    assert set(steps) == {"read source", "backup", "restore", "verify", "serve", "cleanup"}
    # 2 environments, 10 flags, their 10 revisions and 12 change-log entries
    assert re.search(r"verify .* 34 of 34 items equal", ran.out)
    assert re.search(r"serve .* SERVING: 2 environments, 10 flags evaluated, 0 errors", ran.out)
    recovery = re.search(
        r"recovery time \(restore \+ verify \+ serve\): (\d+\.\d+) s\s+vs RTO 15 min\s+PASS", ran.out
    )
    assert recovery and float(recovery.group(1)) < 60
    # No PITR on the test table: the RPO cannot be promised, and the drill says so.
    assert re.search(r"recovery point: .* vs RPO 5 min\s+WARN .*point-in-time recovery", ran.out)
    assert "drill PASSED" in ran.out
    assert "restored table: deleted" in ran.err + ran.out

    async with client_for(ClientSettings(endpoint_url=endpoint)) as client:
        kept = await backups.list_backups(client, table)
        tables = (await client.list_tables())["TableNames"]
    assert [b.name for b in kept if "-drill-" in b.name], "the drill's backup is kept"
    assert tables == [table], "the restored table is deleted"

    monthly = await vexil(
        "ops",
        "check",
        "monthly",
        "--table",
        table,
        "--dynamodb-endpoint",
        endpoint,
        "--target",
        "127.0.0.1:1",
        "--json",
    )
    results = {r["check"]: r for r in json.loads(monthly.out)["results"]}
    assert results["dr-test"]["status"] == "PASS", results["dr-test"]


async def test_drill_of_a_missing_table_fails_clearly(dynamo_endpoint, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ran = await vexil("dr", "drill", "--table", "no-such-table", "--dynamodb-endpoint", dynamo_endpoint)
    assert ran.code == 7
    assert re.search(r"read source .* FAIL .*not found", ran.out)
    assert "drill FAILED" in ran.out
