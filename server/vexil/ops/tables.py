"""Reading and writing whole tables, item by item, for exports, imports, verify and the DR drill.

Reads are consistent Scans (a backup taken from eventually consistent reads could miss the last
writes).  Writes are BatchWriteItem in chunks of 25 (DynamoDB's limit), re-sending whatever
DynamoDB returns as unprocessed with exponential backoff, so throttling slows an import down
instead of silently dropping items.  SDK errors become `vexil.errors` values, as everywhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from vexil.errors import FailedPrecondition, Unavailable
from vexil.ops.items import Item, is_data, key_of
from vexil.ops.progress import Progress
from vexil.store.dynamodb_client import error_code, translated_errors

BATCH = 25
MAX_UNPROCESSED_ROUNDS = 12


async def scan_items(client: Any, table: str, progress: Progress | None = None) -> list[Item]:
    """Every data item of `table`, by consistent Scan (replica registry items are left out:
    `items.is_data`)."""
    progress = progress or Progress.quiet()
    found: list[Item] = []
    start: dict[str, Any] | None = None
    while True:
        args: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if start:
            args["ExclusiveStartKey"] = start
        with translated_errors(f"scanning {table}"):
            page = await client.scan(**args)
        found.extend(item for item in page.get("Items", []) if is_data(item))
        progress.update(f"scanned {len(found)} items of {table}")
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


async def is_empty(client: Any, table: str) -> bool:
    with translated_errors(f"reading {table}"):
        page = await client.scan(TableName=table, Limit=1, ProjectionExpression="PK")
    return not page.get("Items") and not page.get("LastEvaluatedKey")


async def write_items(
    client: Any, table: str, items: Sequence[Item], progress: Progress | None = None
) -> int:
    """Put every item (overwriting items with the same key); returns how many were written."""
    requests = [{"PutRequest": {"Item": item}} for item in items]
    return await _batches(client, table, requests, "wrote", progress or Progress.quiet())


async def delete_items(
    client: Any, table: str, items: Sequence[Item], progress: Progress | None = None
) -> int:
    """Delete the items with the keys of `items`; returns how many were deleted."""
    requests = [{"DeleteRequest": {"Key": _key(item)}} for item in items]
    return await _batches(client, table, requests, "deleted", progress or Progress.quiet())


def _key(item: Item) -> Item:
    pk, sk = key_of(item)
    return {"PK": {"S": pk}, "SK": {"S": sk}}


async def _batches(
    client: Any, table: str, requests: list[dict[str, Any]], done: str, progress: Progress
) -> int:
    """BatchWriteItem in chunks of 25, re-sending what DynamoDB leaves unprocessed."""
    finished = 0
    for start in range(0, len(requests), BATCH):
        chunk = requests[start : start + BATCH]
        for attempt in range(MAX_UNPROCESSED_ROUNDS):
            with translated_errors(f"writing items to {table}"):
                response = await client.batch_write_item(RequestItems={table: chunk})
            chunk = (response.get("UnprocessedItems") or {}).get(table, [])
            if not chunk:
                break
            await asyncio.sleep(min(5.0, 0.05 * 2**attempt))
        else:
            raise Unavailable(
                f"DynamoDB kept {len(chunk)} items unprocessed in {table}; {finished} of"
                f" {len(requests)} were {done}. Retry the import (it overwrites, so it is safe)"
            )
        finished += min(BATCH, len(requests) - start)
        progress.update(f"{done} {finished} of {len(requests)} items in {table}")
    return finished


async def table_exists(client: Any, table: str) -> bool:
    try:
        with translated_errors(f"describing {table}"):
            await client.describe_table(TableName=table)
    except Unavailable as exc:
        if (
            isinstance(exc.__cause__, ClientError)
            and error_code(exc.__cause__) == "ResourceNotFoundException"
        ):
            return False
        raise
    return True


async def require_empty(client: Any, table: str) -> None:
    """Imports and restores go into empty tables, so nothing of a newer state is overwritten."""
    if not await is_empty(client, table):
        raise FailedPrecondition(
            f"table {table} is not empty; import into a new or empty table (or pass --force to overwrite)"
        )


async def delete_table(client: Any, table: str) -> None:
    with translated_errors(f"deleting {table}"):
        await client.delete_table(TableName=table)
