"""`vexil ops check daily`: all PASS on a healthy server; an expired key, a stale flag and no recent
backup are each reported (WARN or FAIL) and the command exits non-zero."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import boto3

from tests.support.dynamo import REGION
from tests.support.flags import flag_pb
from tests.support.ops import server_args, vexil
from tests.support.servers import connected, server_settings
from vexil.app import App
from vexil.config import Settings
from vexil.store.keys import ApiKey, KeyStore, MemoryKeyStore
from vexil.store.keys_dynamodb import DynamoKeyStore
from vexil.v1 import admin_pb2, evaluation_pb2

DAY = 86400.0


def api_key(key_id: str, *, expires_in_days: float, age_days: float = 10) -> ApiKey:
    now = time.time()
    return ApiKey(
        id=key_id,
        environment="local",
        role="evaluator",
        secret_hash="not-a-real-hash",
        created_at=now - age_days * DAY,
        expires_at=now + expires_in_days * DAY,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings, keys: KeyStore | None = None) -> AsyncIterator[App]:
    app = App(settings, key_store=keys)
    try:
        await app.start()
        yield app
    finally:
        await app.stop(grace=1.0)


def statuses(ran) -> dict[str, str]:
    return {r["check"]: r["status"] for r in json.loads(ran.out)["results"]}


ADMIN_TOKEN = "vxk_00000000000000ad_" + "a" * 43


async def test_daily_check_on_a_healthy_server_is_all_pass(tmp_path) -> None:
    keys = MemoryKeyStore()
    await keys.create_key(api_key("00000000000000a1", expires_in_days=80))
    # Keys are listed only with authentication on (the key service refuses calls without it).
    settings = server_settings(bootstrap_admin_key=ADMIN_TOKEN)
    md = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    async with serving(settings, keys) as app, connected(app) as c:
        await c.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("fresh", default="on", owner="web")), metadata=md
        )
        for _ in range(20):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="fresh"), metadata=md)
        backup_dir = tmp_path / "backups"
        token = ("--token", ADMIN_TOKEN)
        exported = await vexil("backup", "export", str(backup_dir / "today.json"), *server_args(app), *token)
        assert exported.code == 0, exported.err

        ran = await vexil(
            "ops", "check", "daily", *server_args(app), *token, "--backup-dir", str(backup_dir), "--json"
        )
        assert ran.code == 0, ran.out + ran.err
        assert statuses(ran) == {
            "health": "PASS",
            "error-rate": "PASS",
            "performance": "PASS",
            "security-alerts": "PASS",
            "keys": "PASS",
            "stale-flags": "PASS",
            "backups": "PASS",
        }
        text = await vexil(
            "ops", "check", "daily", *server_args(app), *token, "--backup-dir", str(backup_dir)
        )
        assert text.code == 0 and "7 PASS  0 WARN  0 FAIL" in text.out
        assert "システムヘルス監視" in text.out


async def test_daily_check_reports_expired_key_stale_flag_and_no_backup(dynamo_table) -> None:
    endpoint, table = dynamo_table
    keys = DynamoKeyStore(table, endpoint_url=endpoint)
    await keys.start()
    try:
        await keys.create_key(api_key("00000000000000b1", expires_in_days=-3, age_days=93))
        await keys.create_key(api_key("00000000000000b2", expires_in_days=60))
    finally:
        await keys.close()
    # A flag provisioned by hand as the operations guide does it, in 2024: not touched since.
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    client.put_item(
        TableName=table,
        Item={
            "PK": {"S": "FLAG#local#new-dashboard"},
            "SK": {"S": "METADATA"},
            "flagKey": {"S": "new-dashboard"},
            "defaultEnabled": {"BOOL": True},
            "owner": {"S": "frontend-team"},
            "createdAt": {"S": "2024-01-01T00:00:00Z"},
        },
    )
    client.close()

    settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with serving(settings) as app, connected(app) as c:
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("fresh", default="on")))
        await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="fresh"))
        # A start reads the flags' index; the hand-written item is found (and indexed) by the
        # first full reload, one poll later.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="new-dashboard"))
            if found.error_code != evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND:
                break
            await asyncio.sleep(0.1)
        where = ["--table", table, "--dynamodb-endpoint", endpoint]
        ran = await vexil("ops", "check", "daily", *server_args(app), *where, "--json")
        text = await vexil("ops", "check", "daily", *server_args(app), *where)

    assert ran.code == 7, ran.out + ran.err
    found = statuses(ran)
    assert found["keys"] == "FAIL"
    assert found["stale-flags"] == "WARN"
    assert found["backups"] == "FAIL"
    assert {found[c] for c in ("health", "error-rate", "performance", "security-alerts")} == {"PASS"}
    details = {r["check"]: r for r in json.loads(ran.out)["results"]}
    assert any("00000000000000b1" in d for d in details["keys"]["details"])
    assert not any("00000000000000b2" in d for d in details["keys"]["details"])
    assert any("local/new-dashboard" in d for d in details["stale-flags"]["details"])
    assert "fresh" not in " ".join(details["stale-flags"]["details"])
    assert "no backup in the last" in details["backups"]["summary"]

    assert text.code == 7
    assert "EXPIRED 00000000000000b1" in text.out and "local/new-dashboard (owner frontend-team)" in text.out


async def test_weekly_and_monthly_name_what_they_cannot_automate() -> None:
    async with serving(server_settings()) as app:
        weekly = await vexil("ops", "check", "weekly", *server_args(app), "--json")
        monthly = await vexil("ops", "check", "monthly", *server_args(app), "--json")
    assert statuses(weekly) == {
        "capacity": "PASS",
        "backups": "FAIL",  # no backup source given: never a silent pass
        "access-logs": "PASS",
        "security-patches": "MANUAL",
    }
    found = statuses(monthly)
    assert found["cost"] == "MANUAL" and found["capacity-planning"] == "PASS"
    assert found["dr-test"] == "WARN"  # no DynamoDB table: no drill on record to look at
    assert weekly.code == 7 and monthly.code == 0
