"""flagd.evaluation v1 and v2 on the wire: typed answers, "no value" answers, error statuses, events."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.support.flags import flag_pb
from tests.support.flagset import FLAGS, store_broken_flag
from tests.support.openfeature import stub
from tests.support.servers import Connected
from vexil.engine import ValueType
from vexil.snapshot import Snapshot
from vexil.transport.flagd_protos import EVALUATION_V1, EVALUATION_V2, evaluation_v1, evaluation_v2
from vexil.v1 import admin_pb2
from vexil.wire import MAX_CONTEXT_BYTES, dict_to_struct, struct_to_dict


def ctx(**attrs: Any) -> struct_pb2.Struct:
    return dict_to_struct(attrs)


async def status_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_v2_typed_answers_and_no_value_answers(flagd_server: Connected) -> None:
    v2 = stub(flagd_server.channel, EVALUATION_V2)
    res = await v2.ResolveInt(evaluation_v2.ResolveIntRequest(flag_key="limit", context=ctx(tier="gold")))
    assert (res.value, res.variant, res.reason) == (100, "big", "TARGETING_MATCH")
    # Flag-set metadata is merged under the flag's own, as flagd answers it.
    res = await v2.ResolveString(
        evaluation_v2.ResolveStringRequest(flag_key="color", context=ctx(country="JP"))
    )
    assert struct_to_dict(res.metadata) == {"team": "platform", "tier": 1, "owner-team": "web"}
    res = await v2.ResolveObject(
        evaluation_v2.ResolveObjectRequest(flag_key="theme", context=ctx(targetingKey="u"))
    )
    assert res.HasField("value") and set(struct_to_dict(res.value)) == {"bg", "size"}
    res = await v2.ResolveFloat(evaluation_v2.ResolveFloatRequest(flag_key="limit"))
    assert (res.value, res.variant, res.reason) == (10.0, "small", "DEFAULT")

    disabled = await v2.ResolveBoolean(evaluation_v2.ResolveBooleanRequest(flag_key="killed"))
    assert disabled.reason == "DISABLED"
    assert not disabled.HasField("value") and not disabled.HasField("variant")
    no_default = await v2.ResolveString(evaluation_v2.ResolveStringRequest(flag_key="no-default"))
    assert no_default.reason == "DEFAULT"
    assert not no_default.HasField("value") and not no_default.HasField("variant")


async def test_v1_typed_answers_and_resolve_all(flagd_server: Connected) -> None:
    v1 = stub(flagd_server.channel, EVALUATION_V1)
    res = await v1.ResolveBoolean(evaluation_v1.ResolveBooleanRequest(flag_key="bool-static"))
    assert (res.value, res.variant, res.reason) == (True, "on", "STATIC")
    disabled = await v1.ResolveBoolean(evaluation_v1.ResolveBooleanRequest(flag_key="killed"))
    assert (disabled.value, disabled.variant, disabled.reason) == (False, "", "DISABLED")

    everything = await v1.ResolveAll(evaluation_v1.ResolveAllRequest(context=ctx(country="JP", tier="gold")))
    flags = everything.flags
    # As flagd: flags with no value for this context (disabled, no default) are left out.
    assert set(flags) == {"bool-static", "color", "limit", "ratio", "theme", "new-ui"}
    assert flags["color"].string_value == "red" and flags["color"].reason == "TARGETING_MATCH"
    assert flags["limit"].double_value == 100.0 and flags["bool-static"].bool_value is True
    assert flags["theme"].WhichOneof("value") == "object_value"
    assert struct_to_dict(everything.metadata) == {"team": "platform", "tier": 1}


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_errors_are_flagds_status_codes(flagd_server: Connected, version: str) -> None:
    pb, service = (evaluation_v1, EVALUATION_V1) if version == "v1" else (evaluation_v2, EVALUATION_V2)
    api = stub(flagd_server.channel, service)
    echo = flag_pb("echo", {"a": "A"}, default="a", targeting={"var": "pick"})
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=echo))
    await store_broken_flag(flagd_server, "hand-written")
    listing = flag_pb("listing", {"l": [1, 2]}, default="l")
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=listing))

    bool_req, obj_req = pb.ResolveBooleanRequest, pb.ResolveObjectRequest
    assert await status_of(api.ResolveBoolean(bool_req(flag_key="missing"))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(api.ResolveBoolean(bool_req(flag_key="color"))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(api.ResolveBoolean(bool_req(flag_key="hand-written"))) == grpc.StatusCode.DATA_LOSS
    chosen = pb.ResolveStringRequest(flag_key="echo", context=ctx(pick="zzz"))  # not a variant: GENERAL
    assert await status_of(api.ResolveString(chosen)) == grpc.StatusCode.UNKNOWN
    assert await status_of(api.ResolveObject(obj_req(flag_key="listing"))) == grpc.StatusCode.INVALID_ARGUMENT


async def next_event(stream: Any, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
    event = await asyncio.wait_for(stream.read(), timeout)
    return event.type, struct_to_dict(event.data)


async def test_event_stream(flagd_server: Connected) -> None:
    """provider_ready first, keep_alive while idle (heartbeat 0.5 s here), then one
    configuration_change per write naming the flags it touched."""
    v2 = stub(flagd_server.channel, EVALUATION_V2)
    stream = v2.EventStream(evaluation_v2.EventStreamRequest())
    assert await next_event(stream) == ("provider_ready", {})
    assert await next_event(stream) == ("keep_alive", {})

    admin = flagd_server.admin
    fresh = flag_pb("fresh", {"on": True}, default="on")
    await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=fresh))
    assert await next_event(stream) == ("configuration_change", {"flags": {"fresh": {"type": "write"}}})
    await admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=fresh))
    assert await next_event(stream) == ("configuration_change", {"flags": {"fresh": {"type": "update"}}})
    await admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="fresh"))
    assert await next_event(stream) == ("configuration_change", {"flags": {"fresh": {"type": "delete"}}})

    await admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="incident"))
    kind, data = await next_event(stream)
    assert kind == "configuration_change"
    assert set(data["flags"]) == set(FLAGS)
    stream.cancel()


WIDE = {f"attr{i:04d}": f"v{i:010d}" for i in range(2000)}
"""About 50 KB of attributes no rule reads."""


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_wide_context_answers_as_a_narrow_one(flagd_server: Connected, version: str) -> None:
    pb, service = (evaluation_v1, EVALUATION_V1) if version == "v1" else (evaluation_v2, EVALUATION_V2)
    api = stub(flagd_server.channel, service)
    for sent in ({"country": "JP"}, {**WIDE, "country": "JP"}):
        res = await api.ResolveString(pb.ResolveStringRequest(flag_key="color", context=dict_to_struct(sent)))
        assert (res.value, res.variant, res.reason) == ("red", "red", "TARGETING_MATCH")
    if version == "v1":
        narrow = await api.ResolveAll(pb.ResolveAllRequest(context=ctx(country="JP", tier="gold")))
        wide = await api.ResolveAll(
            pb.ResolveAllRequest(context=dict_to_struct({**WIDE, "country": "JP", "tier": "gold"}))
        )
        assert wide == narrow


def deep_struct(levels: int) -> struct_pb2.Struct:
    """`country` beside an attribute nesting lists `levels` deep (protobuf itself parses lists
    past vexil's limit of 32, objects not)."""
    value = struct_pb2.Value(string_value="leaf")
    for _ in range(levels):
        outer = struct_pb2.Value()
        outer.list_value.values.add().CopyFrom(value)
        value = outer
    top = struct_pb2.Struct()
    top.fields["deep"].CopyFrom(value)
    top.fields["country"].string_value = "JP"
    return top


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_context_limits_hold_whatever_the_rule_reads(flagd_server: Connected, version: str) -> None:
    """Too deep (33 levels) or too large (over 64 KiB encoded) is INVALID_ARGUMENT, as for
    Evaluate, even though the rule reads only `country`; 32 levels are fine."""
    pb, service = (evaluation_v1, EVALUATION_V1) if version == "v1" else (evaluation_v2, EVALUATION_V2)
    api = stub(flagd_server.channel, service)
    fine = await api.ResolveString(pb.ResolveStringRequest(flag_key="color", context=deep_struct(32)))
    assert fine.reason == "TARGETING_MATCH"
    too_deep = pb.ResolveStringRequest(flag_key="color", context=deep_struct(33))
    assert await status_of(api.ResolveString(too_deep)) == grpc.StatusCode.INVALID_ARGUMENT
    large = pb.ResolveStringRequest(
        flag_key="color", context=ctx(country="JP", blob="x" * (MAX_CONTEXT_BYTES + 1))
    )
    assert await status_of(api.ResolveString(large)) == grpc.StatusCode.INVALID_ARGUMENT
    if version == "v1":
        assert await status_of(api.ResolveAll(pb.ResolveAllRequest(context=deep_struct(33)))) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


async def test_a_rule_reading_one_attribute_converts_one(
    flagd_server: Connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wide context reaches the engine unconverted: only what the rule reads is."""
    seen: list[Any] = []
    evaluate = Snapshot.evaluate

    def spy(snapshot: Snapshot, key: str, context: Any, value_type: ValueType = ValueType.ANY) -> Any:
        seen.append(context)
        return evaluate(snapshot, key, context, value_type)

    monkeypatch.setattr(Snapshot, "evaluate", spy)
    api = stub(flagd_server.channel, EVALUATION_V2)
    sent = dict_to_struct({**WIDE, "country": "JP"})
    res = await api.ResolveString(evaluation_v2.ResolveStringRequest(flag_key="color", context=sent))
    assert res.reason == "TARGETING_MATCH"
    assert len(seen) == 1 and len(seen[0]) == len(WIDE) + 1
    assert seen[0].converted == 1
