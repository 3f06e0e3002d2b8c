"""Evaluate and EvaluateAll answers are the bytes of the message clients always got.

The server encodes each answer once per snapshot and sends the bytes as they are, so this test
reads the raw bytes off the wire (no deserializer) and compares them with the message built
here from a table written in the test, serialized by protobuf: every field (value of each type,
variant, reason, error code and message, flag and config versions, flag metadata) for static,
targeting, fractional, disabled, killed, missing and erroneous flags, and a rule the compiler
folds to a constant.  EvaluateAll joins the answers of context-independent flags once per snapshot
and evaluates only the others: the flags' order interleaves the two kinds, and the bulk metrics
count every result by its reason.  After a write or a kill the answers follow the new snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import struct_pb2

from tests.support.flags import flag_pb
from tests.support.ops import scrape
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2, evaluation_pb2

R = evaluation_pb2
EVALUATE = "/vexil.v1.EvaluationService/Evaluate"
EVALUATE_ALL = "/vexil.v1.EvaluationService/EvaluateAll"
COLOURS = {"red": "r", "blue": "b"}

FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("static", {"default": "on", "metadata": {"team": "checkout", "tier": 2}}),
    (
        "targeted",
        {
            "variants": COLOURS,
            "default": "red",
            "targeting": {"if": [{"==": [{"var": "country"}, "DE"]}, "blue", None]},
        },
    ),
    (
        "no-default",
        {
            "variants": COLOURS,
            "default": None,
            "targeting": {"if": [{"==": [{"var": "country"}, "DE"]}, "blue", None]},
        },
    ),
    (
        "split",
        {
            "variants": COLOURS,
            "default": "red",
            "targeting": {"fractional": [{"var": "targetingKey"}, ["red", 0], ["blue", 100]]},
        },
    ),
    ("not-a-variant", {"variants": COLOURS, "default": "red", "targeting": {"var": "colour"}}),
    ("number", {"variants": {"one": 1, "two": 2}, "default": "two"}),
    ("ratio", {"variants": {"half": 0.5, "whole": 1.0}, "default": "half"}),
    ("settings", {"variants": {"cfg": {"a": [1, "x"], "b": None}}, "default": "cfg"}),
    ("killed", {"default": "on"}),
    (
        "folded",
        {
            "variants": COLOURS,
            "default": "red",
            "targeting": {"if": [{"==": [1, 2]}, "blue", None]},
        },
    ),
]
CONTEXT = {"country": "DE", "targetingKey": "user-7", "colour": "green"}
STATIC_METADATA = {"team": "checkout", "tier": 2}
NOT_A_VARIANT = "flag 'not-a-variant': the rule chose variant 'green', which the flag does not have"
BULK = {
    "static": R.VALUE_TYPE_BOOL,
    "targeted": R.VALUE_TYPE_STRING,
    "no-default": R.VALUE_TYPE_UNSPECIFIED,
    "split": R.VALUE_TYPE_STRING,
    "not-a-variant": R.VALUE_TYPE_STRING,
    "number": R.VALUE_TYPE_INT,
    "ratio": R.VALUE_TYPE_DOUBLE,
    "settings": R.VALUE_TYPE_OBJECT,
    "killed": R.VALUE_TYPE_BOOL,
    "folded": R.VALUE_TYPE_STRING,
}
"""Each flag's answer to EvaluateAll (which asks for no type) is its answer to this type."""


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def expected(config_version: int, killed_env: bool = False) -> dict[tuple[str, int], R.EvaluateResponse]:
    """(flag key, requested value type) -> the answer, written out field by field."""

    def answer(key: str, version: int = 1, **fields: Any) -> R.EvaluateResponse:
        return R.EvaluateResponse(flag_key=key, flag_version=version, config_version=config_version, **fields)

    disabled = {"reason": R.REASON_DISABLED}
    table = {
        ("static", R.VALUE_TYPE_BOOL): answer(
            "static", bool_value=True, variant="on", reason=R.REASON_STATIC, metadata=struct(STATIC_METADATA)
        ),
        ("static", R.VALUE_TYPE_STRING): answer(
            "static",
            reason=R.REASON_ERROR,
            error_code=R.ERROR_CODE_TYPE_MISMATCH,
            error_message="flag 'static' is a bool flag (variant 'on'), not string",
            metadata=struct(STATIC_METADATA),
        ),
        ("targeted", R.VALUE_TYPE_STRING): answer(
            "targeted", string_value="b", variant="blue", reason=R.REASON_TARGETING_MATCH
        ),
        ("no-default", R.VALUE_TYPE_UNSPECIFIED): answer(
            "no-default", string_value="b", variant="blue", reason=R.REASON_TARGETING_MATCH
        ),
        ("split", R.VALUE_TYPE_STRING): answer(
            "split", string_value="b", variant="blue", reason=R.REASON_TARGETING_MATCH
        ),
        ("not-a-variant", R.VALUE_TYPE_STRING): answer(
            "not-a-variant",
            reason=R.REASON_ERROR,
            error_code=R.ERROR_CODE_GENERAL,
            error_message=NOT_A_VARIANT,
        ),
        ("number", R.VALUE_TYPE_INT): answer("number", int_value=2, variant="two", reason=R.REASON_STATIC),
        ("ratio", R.VALUE_TYPE_DOUBLE): answer(
            "ratio", double_value=0.5, variant="half", reason=R.REASON_STATIC
        ),
        ("settings", R.VALUE_TYPE_OBJECT): answer(
            "settings",
            object_value=struct_pb2.Value(struct_value=struct({"a": [1, "x"], "b": None})),
            variant="cfg",
            reason=R.REASON_STATIC,
        ),
        ("killed", R.VALUE_TYPE_BOOL): answer("killed", version=2, **disabled),
        ("folded", R.VALUE_TYPE_STRING): answer(
            "folded", string_value="r", variant="red", reason=R.REASON_DEFAULT
        ),
        ("missing", R.VALUE_TYPE_BOOL): answer(
            "missing",
            version=0,
            reason=R.REASON_ERROR,
            error_code=R.ERROR_CODE_FLAG_NOT_FOUND,
            error_message="flag 'missing' not found",
        ),
    }
    if killed_env:
        for (key, kind), message in table.items():
            if key != "missing":
                table[(key, kind)] = answer(
                    key,
                    version=message.flag_version,
                    metadata=struct(STATIC_METADATA) if key == "static" else None,
                    **disabled,
                )
    return table


@pytest.fixture
async def served() -> AsyncIterator[Connected]:
    async with running_app(server_settings()) as app, connected(app) as conn:
        for key, fields in FLAGS:
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key, **fields)))
        await conn.admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="killed", killed=True, reason="test")
        )
        yield conn


async def config_version(conn: Connected) -> int:
    changes = await conn.admin.ListChanges(admin_pb2.ListChangesRequest())
    return max(change.config_version for change in changes.changes)


async def raw(conn: Connected, path: str, request: Any) -> bytes:
    call = conn.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString())
    return await call(request)


def same(got: bytes, want: Any) -> None:
    """`got` encodes exactly `want`: the same fields and values and not one byte more.  Byte for
    byte where `want` holds no map (protobuf leaves the order of a Struct's entries open)."""
    parsed = type(want).FromString(got)
    assert parsed == want, (parsed, want)
    assert len(got) == want.ByteSize()
    if b"metadata" not in str(want).encode() and not str(want).count("fields {"):
        assert got == want.SerializeToString()


async def check_every_answer(conn: Connected, table: dict[tuple[str, int], R.EvaluateResponse]) -> None:
    for (key, kind), want in table.items():
        request = R.EvaluateRequest(flag_key=key, value_type=kind, context=struct(CONTEXT))
        for _ in range(2):  # the first answer is encoded, the second one reused
            same(await raw(conn, EVALUATE, request), want)
    every = sorted(BULK)
    results = [table[(key, BULK[key])] for key in every]
    want_all = R.EvaluateAllResponse(results=results, config_version=results[0].config_version)
    for request in (
        R.EvaluateAllRequest(context=struct(CONTEXT)),
        R.EvaluateAllRequest(context=struct(CONTEXT), flag_keys=every),
    ):
        same(await raw(conn, EVALUATE_ALL, request), want_all)


async def test_answers_are_the_messages_clients_always_got(served: Connected) -> None:
    await check_every_answer(served, expected(await config_version(served)))


async def test_answers_follow_each_change(served: Connected) -> None:
    await check_every_answer(served, expected(await config_version(served)))
    await served.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="incident"))
    await check_every_answer(served, expected(await config_version(served), killed_env=True))
    await served.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=False))
    await check_every_answer(served, expected(await config_version(served)))
    # A new definition: new value, new flag version, new config version.
    update = flag_pb("number", variants={"one": 1, "two": 2}, default="one")
    await served.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=update))
    version = await config_version(served)
    got = await raw(served, EVALUATE, R.EvaluateRequest(flag_key="number", value_type=R.VALUE_TYPE_INT))
    want = R.EvaluateResponse(
        flag_key="number",
        int_value=1,
        variant="one",
        reason=R.REASON_STATIC,
        flag_version=2,
        config_version=version,
    )
    same(got, want)


async def bulk_counts(conn: Connected) -> Counter[str]:
    """The server's `vexil_evaluations_total{flag="(bulk)"}` by reason."""
    samples = await scrape(conn.app)
    series = samples.series("vexil_evaluations_total", lambda labels: labels.get("flag") == "(bulk)")
    return Counter({sample.labels["reason"]: int(sample.value) for sample in series})


async def test_bulk_answers_are_counted_by_reason(served: Connected) -> None:
    """Context-independent results are counted once per snapshot, yet every call counts each of
    its results once: the counts are those of the answers in the table, call by call."""

    def reasons(keys: list[str], table: dict[tuple[str, int], R.EvaluateResponse]) -> Counter[str]:
        return Counter(
            R.Reason.Name(table[(key, BULK.get(key, R.VALUE_TYPE_BOOL))].reason)[7:] for key in keys
        )

    table = expected(await config_version(served))
    before = await bulk_counts(served)
    for _ in range(3):
        await served.evaluation.EvaluateAll(R.EvaluateAllRequest(context=struct(CONTEXT)))
    named = ["static", "targeted", "missing", "killed"]
    await served.evaluation.EvaluateAll(R.EvaluateAllRequest(context=struct(CONTEXT), flag_keys=named))
    want = Counter()
    for _ in range(3):
        want.update(reasons(sorted(BULK), table))
    want.update(reasons(named, table))
    got = await bulk_counts(served) - before
    assert got == want


async def test_answers_made_per_call_are_not_kept(served: Connected) -> None:
    """An error naming something of the call is encoded per call: however many calls, what the
    snapshot keeps stays bounded by the flags' own resolutions."""
    snapshot = served.app.cache.get(served.app.service.environment(""))

    def held() -> int:
        tables = [part[1] for part in snapshot.memo["bulk plan"].result().parts if isinstance(part, tuple)]
        return len(snapshot.memo) + sum(len(table) for table in tables)

    request = R.EvaluateAllRequest(context=struct(CONTEXT))
    for _ in range(2):
        await served.evaluation.EvaluateAll(request)
    before = held()
    for _ in range(20):
        response = await served.evaluation.EvaluateAll(request)
        errors = [r.error_message for r in response.results if r.reason == R.REASON_ERROR]
        assert errors == [NOT_A_VARIANT]
    assert held() == before
