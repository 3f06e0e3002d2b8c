"""Bad input gets a clear status naming what to fix; nothing stored is lost; the server carries on."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.support.flags import flag_pb
from tests.support.servers import Connected
from vexil.v1 import admin_pb2, evaluation_pb2, flag_pb2


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_unknown_flag(server: Connected) -> None:
    err = await rpc_error(server.admin.GetFlag(admin_pb2.GetFlagRequest(key="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()
    err = await rpc_error(server.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await rpc_error(server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("nope"))))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await rpc_error(server.admin.GetFlagHistory(admin_pb2.GetFlagHistoryRequest(key="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # Evaluation errors are data, not transport failures.
    res = await server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="nope"))
    assert res.reason == evaluation_pb2.REASON_ERROR
    assert res.error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
    assert "nope" in res.error_message


async def test_a_huge_unknown_key_is_not_found_and_not_echoed_twice(server: Connected) -> None:
    """A 3 MB key (a gRPC request may hold 4 MB) is simply not found. The answer echoes the key in
    its key field; were the message to quote it whole as well, the answer would pass the client's
    4 MB receive limit and the caller would see RESOURCE_EXHAUSTED instead of its default."""
    key = "k" * 3_000_000
    res = await server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))
    assert res.error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
    assert res.flag_key == key
    assert res.error_message.startswith("flag 'kkk") and len(res.error_message) < 200


def malformed_flags() -> list[tuple[str, flag_pb2.Flag, str]]:
    mixed = flag_pb("mixed")
    mixed.variants["other"].string_value = "x"
    missing_default = flag_pb("missing-default", default="maybe")
    bad_rule = flag_pb("bad-rule")
    bad_rule.targeting.update({"no_such_operator": [1, 2]})
    unknown_state = flag_pb("unknown-state")
    unknown_state.state = 99  # type: ignore[assignment]  (an open enum: any number decodes)
    huge = flag_pb("huge")
    huge.description = "x" * 4000
    huge.metadata.update({"blob": "y" * (310 * 1024)})
    return [
        ("mixed variant types", mixed, "variants"),
        ("default not a variant", missing_default, "default"),
        ("invalid targeting", bad_rule, "targeting"),
        ("key too long", flag_pb("k" * 129), "flag.key"),
        ("key with bad characters", flag_pb("has space"), "flag.key"),
        ("definition over 300 KB", huge, "flag"),
        ("unknown state", unknown_state, "flag.state"),
    ]


@pytest.mark.parametrize(("case", "flag", "field"), malformed_flags(), ids=[c[0] for c in malformed_flags()])
async def test_malformed_definitions_are_refused_and_nothing_is_stored(
    server: Connected, case: str, flag: flag_pb2.Flag, field: str
) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("keeper", default="on")))
    before = await server.admin.ListChanges(admin_pb2.ListChangesRequest())
    err = await rpc_error(server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert field.lower() in err.details().lower(), err.details()
    if field != "flag.key":
        # An update of an existing flag to the same bad body is refused too, leaving it intact.
        bad_update = flag_pb2.Flag()
        bad_update.CopyFrom(flag)
        bad_update.key = "keeper"
        err = await rpc_error(server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=bad_update)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = await server.admin.ListChanges(admin_pb2.ListChangesRequest())
    assert len(after.changes) == len(before.changes)
    keeper = await server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="keeper"))
    assert keeper.bool_value is True


def nested_request(levels: int) -> bytes:
    """EvaluateRequest bytes whose context is nested `levels` objects deep, encoded by hand so
    the test can send what a well-behaved client library would refuse to build."""

    def field(tag: int, payload: bytes) -> bytes:
        length, size = b"", len(payload)
        while True:
            low, size = size & 0x7F, size >> 7
            length += bytes([low | 0x80 if size else low])
            if not size:
                break
        return bytes([tag]) + length + payload

    struct = b""
    for _ in range(levels):
        value = field(0x2A, struct)  # Value.struct_value
        struct = field(0x0A, field(0x0A, b"a") + field(0x12, value))  # Struct.fields["a"]
    return field(0x0A, b"f") + field(0x12, struct)  # EvaluateRequest.flag_key, .context


async def test_context_too_deep_too_big_or_garbage(server: Connected) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f")))
    raw = server.channel.unary_unary(
        "/vexil.v1.EvaluationService/Evaluate",
        request_serializer=lambda b: b,
        response_deserializer=evaluation_pb2.EvaluateResponse.FromString,
    )
    assert (await raw(nested_request(30))).reason == evaluation_pb2.REASON_STATIC
    # Past our limit, and past protobuf's own decoding limit: both INVALID_ARGUMENT.
    for levels in (33, 40, 500):
        err = await rpc_error(raw(nested_request(levels)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, levels
        assert "32 levels" in err.details()
    err = await rpc_error(raw(b"\xff\xfe not a protobuf \x00\x01"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "could not be decoded" in err.details()
    # A context string that is not UTF-8 (proto3 strings must be): the message names that cause.
    value = bytes([0x1A, 2, 0xFF, 0xFE])  # Value.string_value = b"\xff\xfe"
    entry = bytes([0x0A, 1]) + b"a" + bytes([0x12, len(value)]) + value  # Struct.fields["a"]
    struct = bytes([0x0A, len(entry)]) + entry
    err = await rpc_error(raw(bytes([0x0A, 1]) + b"f" + bytes([0x12, len(struct)]) + struct))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not UTF-8" in err.details()

    big = struct_pb2.Struct()
    big.update({"blob": "z" * (70 * 1024)})
    err = await rpc_error(
        server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f", context=big))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "65536" in err.details()

    # the server is unaffected
    ok = await server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f"))
    assert ok.reason == evaluation_pb2.REASON_STATIC


async def test_other_bad_requests(server: Connected) -> None:
    err = await rpc_error(server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flag_key" in err.details()
    err = await rpc_error(
        server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f", environment="mars"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND and "mars" in err.details()
    err = await rpc_error(server.admin.CreateFlag(admin_pb2.CreateFlagRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("dup")))
    err = await rpc_error(server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("dup"))))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = await rpc_error(server.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in err.details()
    err = await rpc_error(server.admin.RollbackFlag(admin_pb2.RollbackFlagRequest(key="dup", to_version=9)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await rpc_error(server.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=10_000)).read())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "since_version" in err.details()
