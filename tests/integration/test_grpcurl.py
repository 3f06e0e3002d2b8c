"""The real grpcurl binary against a real server: reflection, describe and a JSON Evaluate call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.flags import flag_pb
from tests.support.grpcurl import grpcurl, grpcurl_binary
from tests.support.servers import Connected
from vexil.v1 import admin_pb2


async def test_list_shows_every_service(server: Connected) -> None:
    services = (await grpcurl(server.target, "list")).split()
    for name in (
        "vexil.v1.EvaluationService",
        "vexil.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ):
        assert name in services


async def test_describe_and_json_evaluate(server: Connected) -> None:
    described = await grpcurl(server.target, "describe", "vexil.v1.EvaluationService")
    assert "rpc Evaluate ( .vexil.v1.EvaluateRequest ) returns ( .vexil.v1.EvaluateResponse )" in described
    message = await grpcurl(server.target, "describe", "vexil.v1.Flag")
    assert "map<string, .google.protobuf.Value> variants" in message

    flag = flag_pb(
        "greeting",
        {"hi": "hello", "yo": "yo!"},
        "hi",
        {"if": [{"==": [{"var": "country"}, "JP"]}, "yo", None]},
    )
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))

    body = json.dumps({"flag_key": "greeting", "context": {"targetingKey": "u1", "country": "JP"}})
    answer = json.loads(await grpcurl("-d", body, server.target, "vexil.v1.EvaluationService/Evaluate"))
    assert answer["string_value"] == "yo!", answer
    assert answer["variant"] == "yo"
    assert answer["reason"] == "REASON_TARGETING_MATCH"
    assert answer["flag_version"] == "1"


async def test_health_check_is_serving(server: Connected) -> None:
    answer = json.loads(await grpcurl(server.target, "grpc.health.v1.Health/Check"))
    assert answer == {"status": "SERVING"}


def test_grpcurl_is_the_real_binary() -> None:
    assert sys.platform.startswith("linux")
    assert Path(grpcurl_binary()).stat().st_size > 1_000_000
