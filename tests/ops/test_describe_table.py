"""`vexil dynamodb describe` against the emulator reports a table as it is, never failing on what
it finds there: an item under `CHANGE#` written by hand, a table of another shape (its problems
and exit 1, as the README says)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.dynamo import DUMMY_AWS_ENV, REGION
from tests.support.servers import VEXIL

TABLE_PROBLEMS = 1
"""The README's exit-code table: 1, `vexil dynamodb describe` found problems with the table."""


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [VEXIL, *args], capture_output=True, text=True, timeout=90, env={**os.environ, "NO_COLOR": "1"}
    )


@pytest.fixture
def boto(dynamo_table: tuple[str, str]) -> Iterator[Any]:
    """Plain boto3 on the emulator: the operator writing items and tables by hand."""
    import boto3

    endpoint, _ = dynamo_table
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, **_keys())
    yield client
    client.close()


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def describe(endpoint: str, table: str, *extra: str) -> subprocess.CompletedProcess:
    return run(
        ["dynamodb", "describe", "--env", "local", "--table", table, "--dynamodb-endpoint", endpoint, *extra]
    )


def test_describe_skips_a_hand_written_item_under_change(boto: Any, dynamo_table: tuple[str, str]) -> None:
    """Entries are `CHANGE#` and 12 digits; the server reads no other key as one, nor does describe."""
    endpoint, table = dynamo_table
    for sk in ("CHANGE#000000000001", "CHANGE#000000000002", "CHANGE#abc"):
        boto.put_item(
            TableName=table, Item={"PK": {"S": "ENV#local"}, "SK": {"S": sk}, "note": {"S": "by hand"}}
        )
    done = describe(endpoint, table, "--json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    log = json.loads(done.stdout)["changeLog"]
    assert (log["entries"], log["oldestVersion"], log["newestVersion"], log["ignored"]) == (2, 1, 2, 1), log
    text = describe(endpoint, table)
    assert "2 entries (versions 1-2)" in text.stdout and "1 other items under CHANGE# ignored" in text.stdout


def test_describe_reports_a_table_of_another_shape(boto: Any, dynamo_table: tuple[str, str]) -> None:
    endpoint, _ = dynamo_table
    boto.create_table(
        TableName="not-vexils",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    done = describe(endpoint, "not-vexils", "--json")
    assert done.returncode == TABLE_PROBLEMS, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert any("vexil needs PK (HASH) + SK (RANGE)" in p for p in report["problems"]), report["problems"]
    assert any("GSI1-ENV-INDEX" in p for p in report["problems"]), report["problems"]
    assert "changeLog" not in report  # nothing to read it by: the report says why instead
    text = describe(endpoint, "not-vexils")
    assert text.returncode == TABLE_PROBLEMS and "PROBLEM      table key is" in text.stdout, text.stdout
