"""Every gRPC error carries the richer error model (AIP-193), readable by any language's client.

A real server on loopback, with both stores: each failure is decoded from its
`grpc-status-details-bin` trailer by `grpc_status` (which also checks that the details' code and
message are the call's) and compared with the table below, written from the API's contract: the
reason a client branches on, the field it must fix, how long to wait.  The trailers sent before
the details existed stay.  A successful call carries no details (nothing is built on success).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.grpcurl import run_grpcurl
from tests.support.proxy import FaultProxy
from tests.support.richstatus import from_error, rich_error
from tests.support.rpcs import Rpc, call
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.model import FlagState
from vexil.store.memory import MemoryStore
from vexil.transport.flagd_protos import EVALUATION_V1, EVALUATION_V2, evaluation_v1, evaluation_v2
from vexil.v1 import admin_pb2, evaluation_pb2

DOMAIN = "vexil.dev"
DETAILS = "grpc-status-details-bin"
C = grpc.StatusCode


@dataclass(frozen=True)
class Expected:
    code: grpc.StatusCode
    reason: str
    fields: tuple[str, ...] | None = None
    """BadRequest field paths (None: no BadRequest at all)."""
    retry: float | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    preconditions: tuple[tuple[str, str], ...] = ()


Failing = Callable[[Connected], Awaitable[Any]]


async def get_absent(conn: Connected) -> Any:
    return conn.admin.GetFlag(admin_pb2.GetFlagRequest(key="absent"))


async def update_absent(conn: Connected) -> Any:
    return conn.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("absent")))


async def create_twice(conn: Connected) -> Any:
    await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("twice")))
    return conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("twice")))


async def update_stale(conn: Connected) -> Any:
    await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("stale")))
    request = admin_pb2.UpdateFlagRequest(flag=flag_pb("stale", default="on"), expected_version=7)
    return conn.admin.UpdateFlag(request)


async def update_kills(conn: Connected) -> Any:
    await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("live")))
    request = admin_pb2.UpdateFlagRequest(flag=flag_pb("live", state=FlagState.DISABLED))
    return conn.admin.UpdateFlag(request)


async def evaluate_no_key(conn: Connected) -> Any:
    return conn.evaluation.Evaluate(evaluation_pb2.EvaluateRequest())


async def create_long_description(conn: Connected) -> Any:
    flag = flag_pb("wordy", description="x" * 5000)
    return conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))


async def rollback_to_zero(conn: Connected) -> Any:
    return conn.admin.RollbackFlag(admin_pb2.RollbackFlagRequest(key="any", to_version=0))


async def get_unserved_environment(conn: Connected) -> Any:
    return conn.admin.GetFlag(admin_pb2.GetFlagRequest(environment="nowhere", key="absent"))


async def history_absent(conn: Connected) -> Any:
    return conn.admin.GetFlagHistory(admin_pb2.GetFlagHistoryRequest(key="absent"))


async def rollback_deleted(conn: Connected) -> Any:
    await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("gone")))
    await conn.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="gone"))
    return conn.admin.RollbackFlag(admin_pb2.RollbackFlagRequest(key="gone", to_version=1))


async def watch_unserved_environment(conn: Connected) -> Any:
    return conn.evaluation.Watch(evaluation_pb2.WatchRequest(environment="nowhere"))


CASES: dict[str, tuple[Failing, Expected]] = {
    "GetFlag of a missing flag": (get_absent, Expected(C.NOT_FOUND, "FLAG_NOT_FOUND")),
    "UpdateFlag of a missing flag": (update_absent, Expected(C.NOT_FOUND, "FLAG_NOT_FOUND")),
    "CreateFlag of an existing flag": (create_twice, Expected(C.ALREADY_EXISTS, "FLAG_ALREADY_EXISTS")),
    "UpdateFlag with a stale version": (
        update_stale,
        Expected(
            C.ABORTED,
            "STALE_VERSION",
            metadata=(("current_version", "1"),),
            preconditions=(("STALE_VERSION", "expected_version"),),
        ),
    ),
    "UpdateFlag changing the state": (
        update_kills,
        Expected(
            C.FAILED_PRECONDITION,
            "KILL_SWITCH_ADMIN_ONLY",
            preconditions=(("KILL_SWITCH_ADMIN_ONLY", "flag.state"),),
        ),
    ),
    "Evaluate without a flag key": (
        evaluate_no_key,
        Expected(C.INVALID_ARGUMENT, "INVALID_ARGUMENT", fields=("flag_key",)),
    ),
    "CreateFlag with a 5000-character description": (
        create_long_description,
        Expected(C.INVALID_ARGUMENT, "INVALID_ARGUMENT", fields=("flag.description",)),
    ),
    "RollbackFlag to version 0": (
        rollback_to_zero,
        Expected(C.INVALID_ARGUMENT, "INVALID_ARGUMENT", fields=("to_version",)),
    ),
    "GetFlag in an environment not served": (
        get_unserved_environment,
        Expected(C.NOT_FOUND, "ENVIRONMENT_NOT_SERVED"),
    ),
    "GetFlagHistory of a flag never written": (history_absent, Expected(C.NOT_FOUND, "VERSION_NOT_FOUND")),
    "RollbackFlag of a deleted flag": (rollback_deleted, Expected(C.FAILED_PRECONDITION, "FLAG_DELETED")),
    "Watch of an environment not served (a stream)": (
        watch_unserved_environment,
        Expected(C.NOT_FOUND, "ENVIRONMENT_NOT_SERVED"),
    ),
}


def check(found: Any, expected: Expected) -> None:
    assert found.code == expected.code, found
    assert found.infos == 1, f"exactly one ErrorInfo expected: {found}"
    assert (found.reason, found.domain) == (expected.reason, DOMAIN), found
    for key, value in expected.metadata:
        assert found.metadata.get(key) == value, found
    assert found.fields == (list(expected.fields) if expected.fields is not None else None), found
    assert found.retry_seconds == expected.retry, found
    assert found.preconditions == list(expected.preconditions), found


@pytest.mark.parametrize("case", list(CASES))
async def test_each_error_carries_its_reason_and_details(server: Connected, case: str) -> None:
    failing, expected = CASES[case]
    found, trailers = await rich_error(await failing(server))
    check(found, expected)
    if expected.reason == "STALE_VERSION":  # the trailer older clients read stays
        assert trailers.get("vexil-current-version") == "1"


async def test_an_undecodable_request_names_the_request_as_a_whole(server: Connected) -> None:
    rpc = Rpc(evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"], _method("Evaluate"))
    error = await call(server.channel, rpc, raw=b"\xff\xff\xff\xff")
    assert error is not None
    check(from_error(error), Expected(C.INVALID_ARGUMENT, "MALFORMED_REQUEST", fields=("",)))


async def test_flagd_resolution_errors_carry_reasons(server: Connected) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("greeting", {"a": "x"}, "a")))
    resolve = Rpc(EVALUATION_V1, EVALUATION_V1.methods_by_name["ResolveBoolean"])
    missing = await call(
        server.channel, resolve, request=evaluation_v1.ResolveBooleanRequest(flag_key="nope")
    )
    assert missing is not None
    check(from_error(missing), Expected(C.NOT_FOUND, "FLAG_NOT_FOUND"))
    mismatch = await call(
        server.channel, resolve, request=evaluation_v1.ResolveBooleanRequest(flag_key="greeting")
    )
    assert mismatch is not None
    check(from_error(mismatch), Expected(C.INVALID_ARGUMENT, "TYPE_MISMATCH"))


LONG_KEYS = {"8,000 letters": "k" * 8000, "20,000 letters": "k" * 20000, "3,000 kana": "あ" * 3000}
"""Flag keys no flag can have (the key rule allows 128 characters), which error messages quote."""


@pytest.mark.parametrize("key", list(LONG_KEYS))
async def test_an_error_quoting_a_huge_request_stays_within_what_clients_read(
    server: Connected, key: str
) -> None:
    """gRPC's C-core (Python, Ruby, C++...) and Java refuse trailers over 8 KiB with
    RESOURCE_EXHAUSTED, which a client takes for a rate limit: a message quoting the request is
    cut (at most 1 KiB of it is sent, saying how much was left out), and the call ends with its
    own status, readable details and all."""
    flag_key = LONG_KEYS[key]
    calls = {
        "flagd v1 ResolveBoolean": (EVALUATION_V1, evaluation_v1.ResolveBooleanRequest(flag_key=flag_key)),
        "flagd v2 ResolveString": (EVALUATION_V2, evaluation_v2.ResolveStringRequest(flag_key=flag_key)),
        "GetFlag": (
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
            admin_pb2.GetFlagRequest(key=flag_key),
        ),
    }
    for name, (service, request) in calls.items():
        method = type(request).__name__.removesuffix("Request").removeprefix("Get")
        rpc = Rpc(service, service.methods_by_name["GetFlag" if name == "GetFlag" else method])
        error = await call(server.channel, rpc, request=request)
        assert error is not None, name
        found = from_error(error)
        assert found.code in (C.NOT_FOUND, C.INVALID_ARGUMENT), (name, found.code, error.details()[:200])
        said = error.details() or ""
        assert len(said.encode()) <= 1100, (name, said[-80:])


async def test_a_flagd_selector_not_understood(server: Connected) -> None:
    resolve = Rpc(EVALUATION_V1, EVALUATION_V1.methods_by_name["ResolveBoolean"])
    request = evaluation_v1.ResolveBooleanRequest(flag_key="any")
    error = await call(server.channel, resolve, [("flagd-selector", "source=a,b")], request=request)
    assert error is not None
    check(from_error(error), Expected(C.FAILED_PRECONDITION, "INVALID_SELECTOR"))


async def test_success_carries_no_details(server: Connected) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("ok")))
    answer = server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="ok"))
    await answer
    assert DETAILS not in dict(await answer.trailing_metadata() or ())


async def test_the_flag_limit_of_the_cache_profile() -> None:
    async with running_app(server_settings(cache_maxsize=1)) as app, connected(app) as conn:
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("first")))
        found, _ = await rich_error(
            conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("second")))
        )
        check(found, Expected(C.FAILED_PRECONDITION, "FLAG_LIMIT_REACHED"))


class BrokenStore(MemoryStore):
    """A real store with a bug in one read: what an unexpected exception looks like to a caller."""

    async def get_flag(self, env: str, key: str) -> Any:
        if key == "boom":
            raise RuntimeError("a bug the caller must not see")
        return await super().get_flag(env, key)


async def test_an_unexpected_error_is_internal_and_says_nothing_more() -> None:
    async with running_app(server_settings(), BrokenStore()) as app, connected(app) as conn:
        found, _ = await rich_error(conn.admin.GetFlag(admin_pb2.GetFlagRequest(key="boom")))
        check(found, Expected(C.INTERNAL, "INTERNAL"))
        assert "a bug" not in found.message and "server log" in found.message
        assert found.metadata == {}


async def test_a_server_shutting_down_says_retry() -> None:
    async with running_app(server_settings()) as app, connected(app) as conn:
        app.gate.close()
        found, _ = await rich_error(conn.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="x")))
        check(found, Expected(C.UNAVAILABLE, "SERVER_SHUTTING_DOWN", retry=1.0))


async def test_streams_ended_by_a_shutdown_say_the_server_is_stopping() -> None:
    """README's reasons: SERVER_SHUTTING_DOWN is "this replica is stopping: retry, on another
    one"; the streams a shutdown ends said STORE_UNAVAILABLE ("the store cannot be reached")."""
    async with running_app(server_settings()) as app, connected(app) as conn:
        streams = {
            "Watch": conn.evaluation.Watch(evaluation_pb2.WatchRequest()),
            "flagd v1 EventStream": conn.channel.unary_stream(
                f"/{EVALUATION_V1.full_name}/EventStream",
                request_serializer=evaluation_v1.EventStreamRequest.SerializeToString,
                response_deserializer=evaluation_v1.EventStreamResponse.FromString,
            )(evaluation_v1.EventStreamRequest()),
            "flagd v2 EventStream": conn.channel.unary_stream(
                f"/{EVALUATION_V2.full_name}/EventStream",
                request_serializer=evaluation_v2.EventStreamRequest.SerializeToString,
                response_deserializer=evaluation_v2.EventStreamResponse.FromString,
            )(evaluation_v2.EventStreamRequest()),
        }
        for call in streams.values():
            await call.read()  # open: the snapshot or provider_ready
        app.hub.close_all("server shutting down")
        for name, call in streams.items():
            found, _ = await rich_error(call)
            assert (found.code, found.reason) == (C.UNAVAILABLE, "SERVER_SHUTTING_DOWN"), (name, found)
            assert found.retry_seconds == 1.0, (name, found)


async def test_an_unreachable_store_says_retry(dynamo_table: tuple[str, str]) -> None:
    endpoint, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint)
    proxy = await FaultProxy(upstream.hostname or "127.0.0.1", upstream.port or 0).start()
    values = {"store": "dynamodb", "dynamodb_table": table, "dynamodb_endpoint": proxy.endpoint}
    try:
        async with running_app(server_settings(**values)) as app, connected(app) as conn:
            proxy.set("error")
            found: Any = None
            for _ in range(3):  # a write the feed had not yet seen failing still fails UNAVAILABLE
                found, _ = await rich_error(
                    conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("down")), timeout=60)
                )
                if found.code == C.UNAVAILABLE:
                    break
                await asyncio.sleep(0.5)
            check(found, Expected(C.UNAVAILABLE, "STORE_UNAVAILABLE", retry=1.0))
    finally:
        proxy.set("pass")
        await proxy.stop()


async def test_grpcurl_shows_the_details(server: Connected) -> None:
    """The real grpcurl decodes the trailer (`-format-error` prints the google.rpc.Status as JSON;
    a failed call exits with 64 + the status code)."""
    missing = json.dumps({"key": "absent"})
    code, _, err = await run_grpcurl(
        "-format-error", "-d", missing, server.target, "vexil.v1.AdminService/GetFlag"
    )
    assert code == 64 + 5, err
    status = json.loads(err)
    assert status["code"] == 5
    assert status["details"] == [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": DOMAIN, "reason": "FLAG_NOT_FOUND"}
    ]
    code, _, err = await run_grpcurl(
        "-format-error", "-d", "{}", server.target, "vexil.v1.EvaluationService/Evaluate"
    )
    assert code == 64 + 3, err
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in json.loads(err)["details"]}
    assert details["ErrorInfo"]["reason"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in details["BadRequest"]["field_violations"]] == ["flag_key"]


def _method(name: str) -> Any:
    return evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].methods_by_name[name]
