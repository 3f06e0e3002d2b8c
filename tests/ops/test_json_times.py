"""Operations commands print times in JSON as the rest of the CLI does: one ISO-8601 UTC string
per time, never epoch seconds beside it."""

from __future__ import annotations

import json
import re

from tests.support.ops import vexil

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_backup_json_times_are_iso(dynamo_table: tuple[str, str]) -> None:
    endpoint, table = dynamo_table
    where = ["--dynamodb-endpoint", endpoint, "--table", table, "--json", "--quiet"]
    created = await vexil("backup", "create", *where)
    assert created.code == 0, created.err
    listed = await vexil("backup", "list", *where)
    for backup in [json.loads(created.out), *json.loads(listed.out)]:
        times = {k: v for k, v in backup.items() if "created" in k.lower()}
        assert list(times) == ["created_at"], backup
        assert isinstance(times["created_at"], str) and ISO_UTC.match(times["created_at"]), backup
