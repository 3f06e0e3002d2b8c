"""Writes against a failing DynamoDB fail fast and retry only what is retryable.

- A stalled table: a write fails with UNAVAILABLE within the write deadline (not after the SDK's
  retries and read timeouts), and once the server knows the store is unhealthy, at once.
- A transaction cancelled for `TransactionConflict` or throttling decides nothing: the write is
  retried and succeeds, instead of answering ALREADY_EXISTS or NOT_FOUND.  The emulator never
  produces these reasons, so the fault proxy answers with DynamoDB's documented error body.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import grpc
import pytest

from tests.support.calls import eventually
from tests.support.flags import flag_pb
from tests.support.proxy import FaultProxy
from tests.support.richstatus import from_error
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2

WRITE_TIMEOUT = 5.0
"""The product's default write deadline (tests run with the default on purpose)."""
MARGIN = 1.5
"""Slack for a shared, loaded machine: far below the ~44 s a stalled write used to take."""
AT_ONCE = 0.5

DEGRADED = admin_pb2.ServerStatus.STATE_DEGRADED


def transaction_cancelled(code: str, index: int = 1) -> Callable[[bytes], bytes]:
    """DynamoDB's answer to a TransactWriteItems cancelled with `code` on action `index` (the
    flag item in vexil's transactions), as AWS documents it: HTTP 400, TransactionCanceledException
    with one CancellationReasons entry per action, "None" for the actions that did not fail."""
    messages = {
        "TransactionConflict": "Transaction is ongoing for the item",
        "ThrottlingError": "Throughput exceeds the current capacity of your table or index.",
        "ProvisionedThroughputExceeded": "The level of configured provisioned throughput was exceeded.",
    }

    def respond(request_body: bytes) -> bytes:
        actions = len(json.loads(request_body)["TransactItems"])
        reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(actions)]
        reasons[index] = {"Code": code, "Message": messages[code]}
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "CancellationReasons": reasons,
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons"
                f" [{', '.join(r['Code'] for r in reasons)}]",
            }
        ).encode()
        head = (
            "HTTP/1.1 400 Bad Request\r\n"
            "x-amzn-RequestId: 4GBQ1K6GSLIQ8J3O2C4TPVCBJRVV4KQNSO5AEMVJF66Q9ASUAAJG\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return respond


@asynccontextmanager
async def server_behind_proxy(dynamo_table, **settings) -> AsyncIterator[tuple[Connected, FaultProxy]]:
    endpoint, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint)
    proxy = await FaultProxy(upstream.hostname, upstream.port).start()
    values = {"store": "dynamodb", "dynamodb_table": table, "dynamodb_endpoint": proxy.endpoint}
    try:
        async with running_app(server_settings(**values, **settings)) as app, connected(app) as conn:
            yield conn, proxy
    finally:
        await proxy.stop()


async def change_log(conn: Connected) -> list[tuple[int, str, int]]:
    changes = await conn.admin.ListChanges(admin_pb2.ListChangesRequest(since_version=0))
    return [(c.config_version, c.flag_key, c.after_version) for c in changes.changes]


async def history_versions(conn: Connected, key: str) -> list[int]:
    page = await conn.admin.GetFlagHistory(admin_pb2.GetFlagHistoryRequest(key=key))
    return sorted(r.flag.version for r in page.revisions)


async def test_stalled_store_fails_a_write_within_the_deadline(dynamo_table) -> None:
    # The default deadline; a slow change feed, so the write meets the stall before the feed does.
    async with server_behind_proxy(dynamo_table, poll_interval=3.0) as (conn, proxy):
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
        proxy.set("stall")

        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await conn.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on"), expected_version=1),
                timeout=120,
            )
        took = time.monotonic() - began
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert took < WRITE_TIMEOUT + MARGIN, f"a write against a stalled store took {took:.1f} s"
        # It stalled reading, before any transaction was sent.
        assert "write deadline" in err.value.details() and "nothing was written" in err.value.details()

        proxy.set("pass")
        assert await change_log(conn) == [(1, "f1", 1)]
        assert await history_versions(conn, "f1") == [1]


async def test_writes_fail_at_once_while_the_store_is_known_unhealthy(dynamo_table) -> None:
    # A short deadline (also the SDK's read timeout) so the change feed notices the stall quickly:
    # this test is about what writes do once it has.
    async with server_behind_proxy(dynamo_table, write_timeout=1.0) as (conn, proxy):
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
        proxy.set("stall")

        async def degraded():
            status = await conn.admin.GetStatus(admin_pb2.GetStatusRequest())
            return status if status.state == DEGRADED else None

        assert await eventually(degraded, timeout=60), "the server never reported DEGRADED"
        writes = (
            lambda: conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f2")), timeout=120),
            lambda: conn.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("f1")), timeout=120),
            lambda: conn.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="f1"), timeout=120),
        )
        for write in writes:  # one at a time: a call starts when it is made
            began = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await write()
            took = time.monotonic() - began
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert took < AT_ONCE, f"a write while DEGRADED took {took:.2f} s instead of failing at once"
            found = re.match(r"store unavailable since (\S+): .+", err.value.details())
            assert found, err.value.details()
            since = datetime.fromisoformat(found.group(1))
            assert since.tzinfo is not None and abs((datetime.now(UTC) - since).total_seconds()) < 120

        proxy.set("pass")

        async def writable():
            try:
                return await conn.admin.UpdateFlag(
                    admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on"), expected_version=1)
                )
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                return None

        updated = await eventually(writable, timeout=60, interval=0.5)
        assert updated and updated.flag.version == 2
        assert await change_log(conn) == [(1, "f1", 1), (2, "f1", 2)]


RETRYABLE = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"]


@pytest.mark.parametrize("reason", RETRYABLE)
async def test_create_and_update_retry_a_transaction_cancelled_without_a_decision(
    dynamo_table, reason: str
) -> None:
    async with server_behind_proxy(dynamo_table) as (conn, proxy):
        proxy.inject("TransactWriteItems", transaction_cancelled(reason))
        created = await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
        assert proxy.injected == 1, "the injected cancellation never reached the server"
        assert created.flag.version == 1

        proxy.inject("TransactWriteItems", transaction_cancelled(reason))
        updated = await conn.admin.UpdateFlag(
            admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on"), expected_version=1)
        )
        assert proxy.injected == 2
        assert updated.flag.version == 2

        proxy.inject("TransactWriteItems", transaction_cancelled(reason))
        await conn.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="f1", expected_version=2))
        assert proxy.injected == 3

        # Each write landed exactly once: no duplicate history, a gap-free change log.
        assert await history_versions(conn, "f1") == [1, 2, 3]
        assert await change_log(conn) == [(1, "f1", 1), (2, "f1", 2), (3, "f1", 3)]


async def test_conflict_that_never_clears_gives_up_within_the_deadline(dynamo_table) -> None:
    async with server_behind_proxy(dynamo_table) as (conn, proxy):
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
        proxy.inject("TransactWriteItems", transaction_cancelled("TransactionConflict"), times=10**6)
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await conn.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on"), expected_version=1),
                timeout=120,
            )
        took = time.monotonic() - began
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "TransactionConflict" in err.value.details()
        assert proxy.injected > 1, "a conflict was not retried"
        assert took < WRITE_TIMEOUT + MARGIN
        # Nothing was written.
        assert await history_versions(conn, "f1") == [1]
        assert await change_log(conn) == [(1, "f1", 1)]


async def test_a_write_whose_answer_is_lost_says_it_may_have_been_applied(dynamo_table) -> None:
    """README, reasons: STORE_UNAVAILABLE means nothing was written.  A transaction that reached
    the table and whose answer was lost (the connection dropped, and the SDK's retries got no
    answer either) may have been applied, and here it was: the answer must say so
    (WRITE_OUTCOME_UNKNOWN, "may have been applied"), never "unavailable, nothing written"."""
    async with server_behind_proxy(dynamo_table, poll_interval=3.0) as (conn, proxy):
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
        proxy.lose_answers("TransactWriteItems", times=10)  # every one of the SDK's attempts
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await conn.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on"), expected_version=1),
                timeout=60,
            )
        assert proxy.injected >= 1
        error = from_error(err.value)
        assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "WRITE_OUTCOME_UNKNOWN"), error
        assert "may have been applied" in error.message
        assert (1, "f1", 1) in await change_log(conn) and (2, "f1", 2) in await change_log(conn)
