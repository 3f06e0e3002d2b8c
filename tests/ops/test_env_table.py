"""`--env NAME` names the table `feature-flags-NAME` for every operations command, as their
`--help` says: `vexil ops check` finds the table's backups from `--env` alone, as `vexil backup`
does, without also needing `--table`."""

from __future__ import annotations

import json

from tests.support.ops import server_args, vexil
from tests.support.servers import running_app, server_settings


async def test_ops_check_finds_the_table_from_env(dynamo_table: tuple[str, str]) -> None:
    endpoint, _ = dynamo_table  # a wiped emulator; the table named by --env is made here
    where = ["--env", "staging", "--dynamodb-endpoint", endpoint]
    made = await vexil("dynamodb", "create-table", *where)
    assert made.code == 0, made.out + made.err
    backup = await vexil("backup", "create", *where, "--quiet")
    assert backup.code == 0, backup.out + backup.err
    async with running_app(server_settings()) as app:
        ran = await vexil("ops", "check", "daily", *server_args(app), *where, "--json")
    results = {r["check"]: r for r in json.loads(ran.out)["results"]}
    assert results["backups"]["status"] == "PASS", results["backups"]
    assert "feature-flags-staging-manual-" in results["backups"]["summary"], results["backups"]
