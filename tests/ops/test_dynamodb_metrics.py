"""DynamoDB call metrics from a server on the emulator (latency, errors, consumed capacity) and
from a store whose endpoint throttles every request (throttles are counted per attempt)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from tests.support.flags import flag_pb
from tests.support.ops import scrape
from tests.support.servers import connected, free_port, running_app, server_settings
from tests.support.site import site
from vexil.errors import Unavailable
from vexil.observability.metrics import Metrics
from vexil.ops.scrape import Scrape
from vexil.store.dynamodb import DynamoStore
from vexil.v1 import admin_pb2, evaluation_pb2


def total(s, name: str, **labels: str) -> float:
    return s.sum(name, lambda found: all(found.get(k) == v for k, v in labels.items()))


async def test_dynamodb_latency_errors_and_capacity(dynamo_table) -> None:
    endpoint, table = dynamo_table
    settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with running_app(settings) as app, connected(app) as c:
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("ddb-flag", default="on")))
        await c.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("ddb-flag", default="off")))
        await c.admin.GetFlag(admin_pb2.GetFlagRequest(key="ddb-flag"))
        await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="ddb-flag"))
        # A start reads the environment item (GetItem) and the flags by their index (Query); the
        # first full reload, one poll later, also scans for hand-written items (Scan).
        wanted = {"GetItem", "Query", "Scan", "TransactWriteItems"}
        deadline = time.monotonic() + 15
        while True:
            s = await scrape(app)
            operations = s.label_values("vexil_dynamodb_request_duration_seconds_count", "operation")
            if wanted <= operations or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

    assert wanted <= operations
    for operation in ("GetItem", "Query", "Scan", "TransactWriteItems"):
        count = total(s, "vexil_dynamodb_request_duration_seconds_count", operation=operation)
        seconds = total(s, "vexil_dynamodb_request_duration_seconds_sum", operation=operation)
        assert count >= 1 and 0 < seconds / count < 2.0, operation
    # The emulator reports capacity for reads and single-item writes (not for transactions).
    assert total(s, "vexil_dynamodb_consumed_capacity_units_total", operation="GetItem", kind="read") > 0
    for operation in ("Query", "Scan"):
        assert total(s, "vexil_dynamodb_consumed_capacity_units_total", operation=operation, kind="read") > 0
    assert total(s, "vexil_dynamodb_throttles_total") == 0


async def test_conditional_races_are_counted_as_errors(dynamo_table) -> None:
    endpoint, table = dynamo_table
    metrics = Metrics()
    store = DynamoStore(table, endpoint_url=endpoint)
    store.instrument(metrics.dynamodb.attach)
    await store.start()
    try:
        client = store._require_client()
        with pytest.raises(Exception):  # noqa: B017 - the condition fails
            await client.put_item(
                TableName=table,
                Item={"PK": {"S": "X"}, "SK": {"S": "Y"}},
                ConditionExpression="attribute_exists(PK)",
            )
    finally:
        await store.close()
    s = Scrape.parse(metrics.exposition().decode())
    assert (
        total(s, "vexil_dynamodb_errors_total", operation="PutItem", code="ConditionalCheckFailedException")
        == 1
    )


async def test_throttled_attempts_are_counted_each(monkeypatch) -> None:
    """An endpoint that throttles everything: every SDK attempt is a throttle, the call one error."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    throttled = web.json_response(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        },
        status=400,
    )
    seen = 0

    async def refuse(request: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        return web.Response(
            status=400, body=throttled.body, headers={"Content-Type": "application/x-amz-json-1.0"}
        )

    fake = web.Application()
    fake.router.add_post("/", refuse)
    port = free_port()
    metrics = Metrics()
    store = DynamoStore("throttled", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    store.instrument(metrics.dynamodb.attach)
    async with site(fake, port):
        try:
            await store.start()
            with pytest.raises(Unavailable, match="throttling"):
                await store.get_flag("local", "anything")
        finally:
            await store.close()
    s = Scrape.parse(metrics.exposition().decode())
    assert seen >= 2  # the SDK retried
    assert total(s, "vexil_dynamodb_throttles_total", operation="GetItem") == seen
    errors = "ProvisionedThroughputExceededException"
    assert total(s, "vexil_dynamodb_errors_total", operation="GetItem", code=errors) == 1
    assert total(s, "vexil_dynamodb_request_duration_seconds_count", operation="GetItem") == 1
