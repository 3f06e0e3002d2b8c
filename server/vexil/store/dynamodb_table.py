"""Creating and describing vexil's DynamoDB table: explicit operator actions, never done by `start`.

`table_spec` is the one definition of the table (keys, the two GSIs, streams); `create_table`
applies it idempotently (a new table also gets TTL on `expiresAt`, the change log's retention) and
`describe_table` reports what an operator checks before go-live (status, item count, indexes,
streams, point-in-time recovery, TTL, and for one environment the change log's size).  The index
names follow the operations guide (`GSI2-OWNER-INDEX`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal, Unpack

from botocore.exceptions import ClientError

from vexil.errors import InvalidArgument, Unavailable
from vexil.store import dynamodb_items as items
from vexil.store.dynamodb_client import (
    ClientSettings,
    Where,
    client_for,
    error_code,
    translated_errors,
)

GSI1_NAME = "GSI1-ENV-INDEX"
GSI2_NAME = "GSI2-OWNER-INDEX"
INDEXES = {GSI1_NAME: ("GSI1PK", "GSI1SK"), GSI2_NAME: ("GSI2PK", "GSI2SK")}
TABLE_KEYS = [("PK", "HASH"), ("SK", "RANGE")]

Billing = Literal["PAY_PER_REQUEST", "PROVISIONED"]


def table_spec(
    table: str,
    *,
    billing: Billing = "PAY_PER_REQUEST",
    read_capacity: int = 25,
    write_capacity: int = 25,
    streams: bool = True,
) -> dict[str, Any]:
    """CreateTable arguments for vexil's single table (25/25 is the guide's provisioned size)."""
    if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
        raise InvalidArgument("billing must be PAY_PER_REQUEST or PROVISIONED", field="billing")
    if billing == "PROVISIONED" and (read_capacity < 1 or write_capacity < 1):
        raise InvalidArgument("provisioned capacity must be at least 1", field="capacity")
    throughput = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
    indexes = []
    for name, (pk, sk) in INDEXES.items():
        index: dict[str, Any] = {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        if billing == "PROVISIONED":
            index["ProvisionedThroughput"] = throughput
        indexes.append(index)
    attributes = ["PK", "SK", *(a for pair in INDEXES.values() for a in pair)]
    spec: dict[str, Any] = {
        "TableName": table,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": indexes,
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        spec["ProvisionedThroughput"] = throughput
    if streams:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    return spec


async def create_table(
    table: str,
    *,
    billing: Billing = "PAY_PER_REQUEST",
    read_capacity: int = 25,
    write_capacity: int = 25,
    streams: bool = True,
    pitr: bool = False,
    wait_seconds: float = 300.0,
    **where: Unpack[Where],
) -> dict[str, Any]:
    """Create the table (and wait until it is ACTIVE); an existing table is reported, not an error.

    Returns `describe_table`'s report plus `created` (False when the table already existed; its
    settings are then left as they are, and `problems` says if its shape is not vexil's)."""
    spec = table_spec(
        table,
        billing=billing,
        read_capacity=read_capacity,
        write_capacity=write_capacity,
        streams=streams,
    )
    async with client_for(ClientSettings(**where)) as client:
        created = True
        with translated_errors(f"creating table {table}"):
            try:
                await client.create_table(**spec)
            except ClientError as exc:
                if error_code(exc) != "ResourceInUseException":
                    raise
                created = False
        await wait_active(client, table, wait_seconds)
        if created:
            with translated_errors(f"enabling TTL on {table}"):
                await client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": items.EXPIRES_AT},
                )
        if pitr and created:
            with translated_errors(f"enabling point-in-time recovery on {table}"):
                await client.update_continuous_backups(
                    TableName=table,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
        report = await _describe(client, table)
    return {"created": created, **report}


async def describe_table(
    table: str, *, environment: str = "", retention: dict[str, Any] | None = None, **where: Unpack[Where]
) -> dict[str, Any]:
    """Status, item count, size, billing, indexes, streams, PITR and TTL of the table, plus
    `problems`: what differs from `table_spec` (missing index, wrong key) so `vexil` can say what
    to fix.  With `environment`, also `changeLog`: its entries, oldest and newest version, and the
    configured `retention` (settings passed through); a table whose key is not vexil's has no
    change log to read, and its report says why in `problems` instead.  A missing table raises
    `TableNotFound`."""
    async with client_for(ClientSettings(**where)) as client:
        desc, report = await _describe_with(client, table)
        if environment and _key_schema(desc) == TABLE_KEYS:
            report["changeLog"] = {**await _change_log(client, table, environment), **(retention or {})}
        return report


async def _change_log(client: Any, table: str, env: str) -> dict[str, Any]:
    """How many change-log entries `env` holds and which versions they span (reads keys only).

    An entry's key is `CHANGE#` and PAD digits (`items.change_sk`); anything else under `CHANGE#`
    (an item written by hand) is no entry of the log: it is counted as `ignored`, never parsed as
    a version, so one stray item cannot stop the report."""
    args: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :change)",
        "ExpressionAttributeValues": {
            ":pk": items.s(items.env_pk(env)),
            ":change": items.s(items.CHANGE_PREFIX),
        },
        "ProjectionExpression": "SK",
    }
    versions: list[int] = []
    ignored = 0
    with translated_errors(f"reading the change log of {env}"):
        while True:
            page = await client.query(**args)
            for item in page.get("Items", []):
                version = items.change_version_of(item["SK"]["S"])
                if version is None:
                    ignored += 1
                else:
                    versions.append(version)
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {
        "environment": env,
        "entries": len(versions),
        "oldestVersion": min(versions, default=0),
        "newestVersion": max(versions, default=0),
        "ignored": ignored,
    }


async def wait_active(
    client: Any,
    table: str,
    wait_seconds: float,
    *,
    delay: float = 0.5,
    waiting: Callable[[list[Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll until the table and its indexes are ACTIVE (seconds on AWS, instant on moto; a
    restore takes minutes) and return its description.  `waiting` hears each poll's statuses
    while they are not (progress lines); no poll sleeps past `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with translated_errors(f"describing table {table}"):
            desc: dict[str, Any] = (await client.describe_table(TableName=table))["Table"]
        statuses = [desc.get("TableStatus")] + [
            i.get("IndexStatus") for i in desc.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return desc
        if time.monotonic() + delay > deadline:
            raise Unavailable(f"table {table} not ACTIVE after {wait_seconds:.0f} s: {statuses}")
        if waiting is not None:
            waiting(statuses)
        await asyncio.sleep(delay)


async def _describe(client: Any, table: str) -> dict[str, Any]:
    return (await _describe_with(client, table))[1]


async def _describe_with(client: Any, table: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """DescribeTable's answer, and the report made of it (`_describe`)."""
    with translated_errors(f"describing table {table}"):
        desc = (await client.describe_table(TableName=table))["Table"]
        try:
            backups = (await client.describe_continuous_backups(TableName=table))[
                "ContinuousBackupsDescription"
            ]
            pitr = backups.get("PointInTimeRecoveryDescription", {}).get(
                "PointInTimeRecoveryStatus", "DISABLED"
            )
        except ClientError as exc:
            if error_code(exc) not in ("AccessDeniedException", "UnknownOperationException"):
                raise
            pitr = "UNKNOWN"
        try:
            ttl = (await client.describe_time_to_live(TableName=table)).get("TimeToLiveDescription", {})
        except ClientError as exc:
            if error_code(exc) not in ("AccessDeniedException", "UnknownOperationException"):
                raise
            ttl = {"TimeToLiveStatus": "UNKNOWN"}
    stream = desc.get("StreamSpecification") or {}
    throughput = desc.get("ProvisionedThroughput") or {}
    billing = (desc.get("BillingModeSummary") or {}).get("BillingMode") or (
        "PROVISIONED" if throughput.get("ReadCapacityUnits") else "PAY_PER_REQUEST"
    )
    indexes = [
        {
            "name": index["IndexName"],
            "status": index.get("IndexStatus", ""),
            "keys": [k["AttributeName"] for k in index.get("KeySchema", [])],
            "itemCount": index.get("ItemCount", 0),
        }
        for index in desc.get("GlobalSecondaryIndexes", [])
    ]
    return desc, {
        "table": desc["TableName"],
        "arn": desc.get("TableArn", ""),
        "status": desc.get("TableStatus", ""),
        "itemCount": desc.get("ItemCount", 0),
        "sizeBytes": desc.get("TableSizeBytes", 0),
        "billing": billing,
        "readCapacity": throughput.get("ReadCapacityUnits", 0),
        "writeCapacity": throughput.get("WriteCapacityUnits", 0),
        "indexes": indexes,
        "streams": {
            "enabled": bool(stream.get("StreamEnabled")),
            "viewType": stream.get("StreamViewType", ""),
            "arn": desc.get("LatestStreamArn", ""),
        },
        "pitr": pitr,
        "ttl": {"status": ttl.get("TimeToLiveStatus", "DISABLED"), "attribute": ttl.get("AttributeName", "")},
        "problems": _problems(desc),
    }


def _key_schema(desc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in desc.get("KeySchema", [])]


def _problems(desc: dict[str, Any]) -> list[str]:
    problems = []
    keys = _key_schema(desc)
    if keys != TABLE_KEYS:
        problems.append(f"table key is {keys}, vexil needs PK (HASH) + SK (RANGE)")
    present = {
        i["IndexName"]: [k["AttributeName"] for k in i.get("KeySchema", [])]
        for i in desc.get("GlobalSecondaryIndexes", [])
    }
    for name, pair in INDEXES.items():
        if name not in present:
            problems.append(f"index {name} ({pair[0]}, {pair[1]}) is missing")
        elif present[name] != list(pair):
            problems.append(f"index {name} has keys {present[name]}, expected {list(pair)}")
    return problems
