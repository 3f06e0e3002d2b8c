"""Flag items written by hand that hold what vexil would never write, on the emulator.

docs/dynamodb.md ("Items written by hand") says what each reads as: a time no reader can carry is
unknown (0), epoch milliseconds are read as such, an impossible `version` is a hand-written
item's 1, `state` is honoured in its common spellings, and a definition vexil cannot use (JSON
text that does not parse or that Python cannot read, a value the admin API refuses, a `state`
that says neither) makes that one flag answer PARSE_ERROR, logged once naming the item.  Nothing
takes a whole environment down, and no write through vexil loses what the item holds.  Every
expected value below is taken from those rules (and the calendar), not from the code.

Items are written with plain boto3, as an operator does.  Each test uses its own flag keys: the
store reports an item once per process, so a key reused across tests would not be reported again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import partial
from typing import Any

import aiohttp
import grpc
import pytest

from tests.support import dynamo
from tests.support.client import FAST
from tests.support.flags import flag_model
from tests.support.openfeature import stub
from tests.support.servers import connected, running_app, server_settings
from vexil.client import AsyncClient
from vexil.client import ErrorCode as ClientErrorCode
from vexil.engine import ErrorCode, Reason
from vexil.errors import FailedPrecondition
from vexil.flagd_compat.document import flagd_configuration
from vexil.model import ChangeKind, Environment, Flag, FlagState
from vexil.snapshot import Snapshot
from vexil.store.dynamodb import DynamoStore
from vexil.transport import flagd_protos
from vexil.v1 import admin_pb2, evaluation_pb2
from vexil.wire import flag_to_pb

ENV = "staging"
GUIDE_CREATED_AT = 1755336600.0  # 2025-08-16T09:30:00Z, the guide's createdAt below
ON_OFF_TEXT = '{"on": true, "off": false}'
ITEMS_LOGGER = "vexil.store.dynamodb_items"

flag = partial(flag_model, environment=ENV)


def S(text: str) -> dict[str, Any]:
    return {"S": text}


def N(number: str) -> dict[str, Any]:
    return {"N": number}


def guide_item(key: str, env: str = ENV, **attributes: Any) -> dict[str, Any]:
    """The operations guide's `aws dynamodb put-item` example, with `attributes` added or replaced."""
    return dynamo.guide_item(key, env, **attributes)


def nested(levels: int) -> Any:
    value: Any = True
    for _ in range(levels):
        value = {"a": value}
    return value


def put(raw: Any, table: str, *items: dict[str, Any]) -> None:
    for item in items:
        raw.put_item(TableName=table, Item=item)


def stored_item(raw: Any, table: str, key: str) -> dict[str, Any]:
    return raw.get_item(
        TableName=table, Key={"PK": S(f"FLAG#{ENV}#{key}"), "SK": S("METADATA")}, ConsistentRead=True
    )["Item"]


def warnings_about(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    pk = f"FLAG#{ENV}#{key}"
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ITEMS_LOGGER and r.levelno == logging.WARNING and repr(pk) in r.getMessage()
    ]


def every_door_carries(flags: list[Flag]) -> None:
    """What ListFlags, GetFlag and Watch send (a protobuf Flag) and the flagd sync document can be
    built for every flag: one that could not be is what answered INTERNAL for a whole environment."""
    for f in flags:
        flag_to_pb(f).SerializeToString()
    json.dumps(flagd_configuration(Snapshot.build(Environment(name=ENV), flags)), allow_nan=False)


# --- F1: times --------------------------------------------------------------------------


async def test_a_time_no_reader_can_carry_is_unknown_and_every_write_works(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, table = dynamo_table
    put(
        raw,
        table,
        guide_item("ts-millis", createdAt=N("1705276800000")),
        guide_item("ts-year-1", createdAt=S("0001-01-01T00:00:00+14:00")),
        guide_item("ts-year-9999", createdAt=S("9999-12-31T23:59:59-14:00")),
        guide_item("ts-huge", createdAt=N("1E+125")),
        guide_item("ts-updated-huge", updatedAt=N("1E+125")),
    )
    caplog.set_level(logging.WARNING, ITEMS_LOGGER)
    _, flags = await dstore.load_environment(ENV)
    times = {f.key: (f.created_at, f.updated_at) for f in flags}
    assert times == {
        "ts-millis": (1705276800.0, 1705276800.0),  # 2024-01-15T00:00:00Z, in milliseconds
        "ts-year-1": (0.0, 0.0),  # 0000-12-31T10:00:00Z: before year 1
        "ts-year-9999": (0.0, 0.0),  # 10000-01-01T13:59:59Z: after year 9999
        "ts-huge": (0.0, 0.0),
        "ts-updated-huge": (GUIDE_CREATED_AT, 0.0),
    }
    every_door_carries(flags)
    for key in ("ts-year-1", "ts-year-9999", "ts-huge", "ts-updated-huge"):
        said = warnings_about(caplog, key)
        assert len(said) == 1 and "outside the years 1 to 9999" in said[0], (key, said)
    assert warnings_about(caplog, "ts-millis") == []  # documented: not a mistake

    # The kill switch, an update and a delete all work on them.
    killed = await dstore.update_flag(
        flag("ts-huge", default="on", state=FlagState.DISABLED),
        expected_version=1,
        kind=ChangeKind.KILL,
        actor="a",
    )
    assert killed.flag is not None and not killed.flag.enabled and killed.flag.created_at == 0.0
    await dstore.update_flag(flag("ts-year-9999", description="via vexil"), expected_version=1, actor="a")
    await dstore.delete_flag(ENV, "ts-updated-huge", expected_version=1, actor="a")
    assert stored_item(raw, table, "ts-year-9999")["createdAt"] == S("1970-01-01T00:00:00.000000Z")

    # A reload (every cache TTL) does not report the same items again.
    caplog.clear()
    await dstore.load_environment(ENV)
    assert [r for r in caplog.records if r.name == ITEMS_LOGGER] == []


# --- F2, F3, F4, F8: definitions that cannot be used ----------------------------------


UNUSABLE: dict[str, tuple[dict[str, Any], str]] = {
    "var-long-number": (
        {"variants": S('{"a": 1' + "0" * 5000 + "}"), "defaultVariant": S("a")},
        "variants: JSON text that cannot be read",
    ),
    "tgt-deep-brackets": (
        {
            "variants": S(ON_OFF_TEXT),
            "defaultVariant": S("off"),
            "targeting": S('{"if": [' + "[" * 100_000 + "]" * 100_000 + ', "on", "off"]}'),
        },
        "targeting: JSON text that cannot be read",
    ),
    "var-surrogate": (
        {"variants": S('{"a": "\\ud800"}'), "defaultVariant": S("a")},
        "variants.a: ",  # the admin API's own wording follows: "... holds a lone surrogate"
    ),
    "var-deep": (
        {"variants": S(json.dumps({"a": nested(40)})), "defaultVariant": S("a")},
        "nested deeper than 32 levels",
    ),
    "tgt-deep": (
        {
            "variants": S(ON_OFF_TEXT),
            "defaultVariant": S("off"),
            "targeting": S(json.dumps({"if": [nested(60), "on", "off"]})),
        },
        "targeting.if[0].a",
    ),
    "tgt-not-json": (
        {"variants": S(ON_OFF_TEXT), "defaultVariant": S("off"), "targeting": S('{"if": [true, "on"')},
        "targeting: not JSON text",
    ),
    "var-not-json": ({"variants": S("{not json"), "defaultVariant": S("on")}, "variants: not JSON text"),
    "state-paused": ({"state": S("paused")}, 'state {"S": "paused"} is neither ENABLED nor DISABLED'),
    "dv-number": (
        {"variants": S('{"1": 1, "2": 2}'), "defaultVariant": N("1")},
        "defaultVariant: a DynamoDB N",
    ),
}


async def test_a_definition_that_cannot_be_used_is_that_flags_parse_error_only(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, table = dynamo_table
    put(raw, table, guide_item("plain"), *(guide_item(k, **attrs) for k, (attrs, _) in UNUSABLE.items()))
    caplog.set_level(logging.WARNING, ITEMS_LOGGER)
    environment, flags = await dstore.load_environment(ENV)
    by_key = {f.key: f for f in flags}
    assert set(by_key) == {"plain", *UNUSABLE}
    snapshot = Snapshot.build(environment, flags)
    for key, (_, why) in UNUSABLE.items():
        found = by_key[key]
        assert why in found.problem, (key, found.problem)
        assert (found.variants, found.default_variant, found.targeting) == ({}, None, None)
        resolution, _ = snapshot.evaluate(key, {})
        assert (resolution.reason, resolution.error_code) == (Reason.ERROR, ErrorCode.PARSE_ERROR), key
        assert why in (resolution.error_message or ""), key
        said = warnings_about(caplog, key)
        assert len(said) == 1 and "PARSE_ERROR" in said[0] and why in said[0], (key, said)
    plain, _ = snapshot.evaluate("plain", {})
    assert (plain.value, plain.reason) == (True, Reason.STATIC)
    assert list(flagd_configuration(snapshot)["flags"]) == ["plain"]
    every_door_carries(flags)
    # Listing (the index, now that the load indexed them) and a point read agree.
    listed = await dstore.list_flags(ENV, page_size=100)
    assert [f.key for f in listed.items] == sorted(by_key)
    assert all(f == by_key[f.key] for f in listed.items)
    every_door_carries(listed.items)
    assert await dstore.get_flag(ENV, "tgt-not-json") == by_key["tgt-not-json"]

    # Reported once: reloads, listings and point reads of the same items say nothing more...
    caplog.clear()
    await dstore.load_environment(ENV)
    await dstore.list_flags(ENV, page_size=100)
    assert [r for r in caplog.records if r.name == ITEMS_LOGGER] == []
    # ...until an item reads wrong differently, or reads right again (and later wrong anew).
    put(raw, table, guide_item("var-not-json", variants=S("[1, 2"), defaultVariant=S("on")))
    put(raw, table, guide_item("state-paused", state=S("DISABLED")))
    _, flags = await dstore.load_environment(ENV)
    assert len(warnings_about(caplog, "var-not-json")) == 1
    assert warnings_about(caplog, "state-paused") == []
    assert {f.key: f.enabled for f in flags}["state-paused"] is False


async def test_a_write_over_a_definition_that_cannot_be_used_is_refused_and_keeps_it(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    rule = '{"if": [true, "on"'
    put(raw, table, guide_item("typo", variants=S(ON_OFF_TEXT), defaultVariant=S("off"), targeting=S(rule)))
    current = await dstore.get_flag(ENV, "typo")
    assert current is not None and current.problem
    for kind, written in (
        (ChangeKind.UPDATE, current),  # what a read-modify-write client sends back
        (ChangeKind.UPDATE, flag("typo", description="via vexil")),
        (ChangeKind.KILL, flag("typo", state=FlagState.DISABLED)),
    ):
        with pytest.raises(FailedPrecondition, match=r"cannot be used as stored .*targeting: not JSON text"):
            await dstore.update_flag(written, expected_version=1, kind=kind, actor="a")
    assert stored_item(raw, table, "typo")["targeting"] == S(rule)
    # A delete is what it says: the flag goes (its history keeps a record).
    await dstore.delete_flag(ENV, "typo", expected_version=1, actor="a")
    assert await dstore.get_flag(ENV, "typo") is None


# --- F7, F8: read around, reported ----------------------------------------------------


async def test_state_spellings_versions_and_keys_are_read_as_documented_and_reported(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, table = dynamo_table
    states = {
        "st-lower": (S("disabled"), False),
        "st-killed": (S("KILLED"), False),
        "st-zero": (N("0"), False),
        "st-false": ({"BOOL": False}, False),
        "st-text-false": (S("false"), False),
        "st-mixed-case": (S("Enabled"), True),
        "st-canonical": (S("DISABLED"), False),
    }
    put(raw, table, *(guide_item(k, state=v) for k, (v, _) in states.items()))
    put(
        raw,
        table,
        guide_item("ver-negative", version=N("-5")),
        guide_item("ver-huge", version=N("1E+125")),
        guide_item("ver-zero", version=N("0")),
        guide_item("key-mismatch", flagKey=S("plain")),
    )
    caplog.set_level(logging.WARNING, ITEMS_LOGGER)
    environment, flags = await dstore.load_environment(ENV)
    by_key = {f.key: f for f in flags}
    assert {k: by_key[k].enabled for k in states} == {k: enabled for k, (_, enabled) in states.items()}
    snapshot = Snapshot.build(environment, flags)
    killed, _ = snapshot.evaluate("st-lower", {})
    assert killed.reason == Reason.DISABLED
    for key in ("st-lower", "st-killed", "st-zero", "st-false", "st-text-false", "st-mixed-case"):
        said = warnings_about(caplog, key)
        assert len(said) == 1 and "state" in said[0] and "read as" in said[0], (key, said)
    assert warnings_about(caplog, "st-canonical") == []
    for key in ("ver-negative", "ver-huge", "ver-zero"):
        assert by_key[key].version == 1 and not by_key[key].problem
        said = warnings_about(caplog, key)
        assert len(said) == 1 and "version" in said[0], (key, said)
    assert by_key["key-mismatch"].key == "key-mismatch"
    said = warnings_about(caplog, "key-mismatch")
    assert len(said) == 1 and 'flagKey {"S": "plain"}' in said[0]
    every_door_carries(flags)
    # An impossible version is a hand-written item's: its first write records it and goes on.
    change = await dstore.update_flag(flag("ver-negative", description="d"), expected_version=1, actor="a")
    assert (change.before_version, change.after_version) == (1, 2)
    history = await dstore.get_history(ENV, "ver-negative")
    assert [r.flag.version for r in history.items] == [2, 1]
    assert stored_item(raw, table, "ver-negative")["version"] == N("2")


# --- F9: what vexil does not know of an item ------------------------------------------


async def test_a_write_keeps_the_attributes_vexil_does_not_know(
    dstore: DynamoStore, raw: Any, dynamo_table: tuple[str, str]
) -> None:
    _, table = dynamo_table
    put(raw, table, guide_item("extra", customAttr=S("keep me"), ttlAt=N("1999999999")))
    await dstore.load_environment(ENV)  # a discovery indexes it: GSI1 and, with its owner, GSI2
    assert stored_item(raw, table, "extra")["GSI2PK"] == S(f"OWNER#{ENV}#dev-team")
    await dstore.update_flag(flag("extra", description="via vexil", owner=""), expected_version=1, actor="a")
    item = stored_item(raw, table, "extra")
    assert (item["customAttr"], item["ttlAt"]) == (S("keep me"), N("1999999999"))
    assert item["description"] == S("via vexil") and item["version"] == N("2")
    assert "GSI2PK" not in item  # vexil's own attributes are vexil's to drop: no owner, no GSI2
    await dstore.update_flag(
        flag("extra", state=FlagState.DISABLED), expected_version=2, kind=ChangeKind.KILL, actor="a"
    )
    item = stored_item(raw, table, "extra")
    assert (item["customAttr"], item["ttlAt"], item["state"]) == (
        S("keep me"),
        N("1999999999"),
        S("DISABLED"),
    )


# --- every door, on a running server --------------------------------------------------


async def test_no_whole_environment_answer_fails_over_one_item(
    dynamo_table: tuple[str, str], raw: Any
) -> None:
    """The tester's items behind a real server: each answers for itself (PARSE_ERROR when it
    cannot be used), and every answer about the whole environment is OK."""
    endpoint_url, table = dynamo_table

    def indexed(key: str, **attributes: Any) -> dict[str, Any]:  # as an earlier discovery left it
        return {
            **guide_item(key, env="local", **attributes),
            "GSI1PK": S("ENV#local"),
            "GSI1SK": S(f"FLAG#{key}"),
        }

    put(
        raw,
        table,
        indexed("door-plain"),
        indexed("door-time", createdAt=N("1E+125")),
        indexed("door-long-number", variants=S('{"a": 1' + "0" * 5000 + "}"), defaultVariant=S("a")),
        indexed("door-surrogate", variants=S('{"a": "\\ud800"}'), defaultVariant=S("a")),
        indexed(
            "door-typo", variants=S(ON_OFF_TEXT), defaultVariant=S("off"), targeting=S('{"if": [true, "on"')
        ),
        indexed("door-version", version=N("-5")),
    )
    unusable = {"door-long-number", "door-surrogate", "door-typo"}
    every = {"door-plain", "door-time", "door-version", *unusable}
    store = DynamoStore(table, endpoint_url=endpoint_url)
    async with running_app(server_settings(), store) as app, connected(app) as c:
        for key in sorted(every):
            answer = await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))
            code = evaluation_pb2.ErrorCode.Name(answer.error_code)
            if key in unusable:
                assert code == "ERROR_CODE_PARSE_ERROR", key
            else:
                assert (answer.bool_value, code) == (True, "ERROR_CODE_UNSPECIFIED"), key
        every_answer = await c.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest())
        assert {r.flag_key for r in every_answer.results} >= every - unusable
        listed = await c.admin.ListFlags(admin_pb2.ListFlagsRequest(page_size=100))
        assert {f.key for f in listed.flags} == every
        watch = c.evaluation.Watch(evaluation_pb2.WatchRequest())
        first = await asyncio.wait_for(watch.read(), 10)
        watch.cancel()
        assert {f.key for f in first.flags} == every
        # Why a flag cannot be used travels with it: an operator reading it, and an SDK
        # evaluating locally from Watch, get the reason the item cannot be read.
        said = {f.key: f.problem for f in first.flags}
        assert "targeting: not JSON text" in said["door-typo"] and said["door-plain"] == ""
        got = await c.admin.GetFlag(admin_pb2.GetFlagRequest(key="door-typo"))
        assert "targeting: not JSON text" in got.problem
        async with AsyncClient(target=f"127.0.0.1:{app.port}", mode="local", **FAST) as local:
            assert await local.wait_for_ready(10)
            details = await local.bool_details("door-typo", False)
            assert (details.value, details.error_code) == (False, ClientErrorCode.PARSE_ERROR)
            assert "targeting: not JSON text" in (details.error_message or "")
            assert await local.bool_value("door-plain", False) is True
        sync = stub(c.channel, flagd_protos.SYNC_V1)
        fetched = await sync.FetchAllFlags(flagd_protos.sync_v1.FetchAllFlagsRequest())
        assert set(json.loads(fetched.flag_configuration)["flags"]) == every - unusable
        base = f"http://127.0.0.1:{app.http_port}/ofrep/v1/evaluate/flags"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/door-typo", json={"context": {}}) as r:
                assert (r.status, (await r.json())["errorCode"]) == (400, "PARSE_ERROR")
            async with http.post(base, json={"context": {}}) as r:
                assert r.status == 200
        # The kill switch stops the flag with the impossible time; a write over the typo is refused.
        await c.admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="door-time", killed=True, reason="t")
        )
        killed = await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="door-time"))
        assert evaluation_pb2.Reason.Name(killed.reason) == "REASON_DISABLED"
        typo = await c.admin.GetFlag(admin_pb2.GetFlagRequest(key="door-typo"))
        typo.description = "via vexil"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await c.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=typo, reason="t"))
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "targeting: not JSON text" in (refused.value.details() or "")
        # `problem` is output only: a write that claims one is served as the definition it holds.
        claimed = flag_to_pb(flag_model("door-claims", default="on"))
        claimed.problem = "made up by the caller"
        created = await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=claimed, reason="t"))
        assert created.flag.problem == ""
        answer = await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="door-claims"))
        assert (answer.bool_value, evaluation_pb2.Reason.Name(answer.reason)) == (True, "REASON_STATIC")
