"""Serving a flagd flag file: the demo flags load, and editing the file reaches subscribers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc

from tests.support.flags import flag_definition
from tests.support.servers import running_app, server_settings
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def doc(default: str) -> dict:
    return {"flags": {"hot": flag_definition({"a": "A", "b": "B"}, default)}}


async def test_demo_flags_are_served() -> None:
    settings = server_settings(flags=str(ROOT / "server" / "demo-flags.yaml"))
    async with running_app(settings) as app, grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(ch)

        async def value(key: str, **ctx):
            req = evaluation_pb2.EvaluateRequest(flag_key=key)
            req.context.update(ctx)
            return await stub.Evaluate(req)

        assert (await value("new-checkout")).bool_value is True
        assert (await value("banner-text", country="JP")).string_value == "いらっしゃいませ"
        assert (await value("banner-text", country="FR")).string_value == "Hello"
        beta = await value("checkout-config", email="kim@beta.example.com")
        assert beta.object_value.struct_value.fields["maxItems"].number_value == 100
        assert (await value("legacy-reports")).reason == evaluation_pb2.REASON_DISABLED
        rollout = [
            (await value("search-v2-rollout", targetingKey=f"user-{i}")).bool_value for i in range(200)
        ]
        assert 25 < sum(rollout) < 75  # about a quarter


async def test_editing_the_file_reaches_watchers(tmp_path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(doc("a")))
    async with running_app(server_settings(flags=str(path))) as app:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(ch)
            watch = stub.Watch(evaluation_pb2.WatchRequest())
            assert (await watch.read()).type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT

            path.write_text("{ this is not json or yaml: [")  # broken: ignored, still serving
            await asyncio.sleep(0.6)
            still = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="hot"))
            assert still.string_value == "A"

            path.write_text(json.dumps(doc("b")))
            event = await asyncio.wait_for(watch.read(), 10)
            assert event.type == evaluation_pb2.WatchEvent.TYPE_UPSERT
            assert event.flag.default_variant == "b"
            assert event.change.actor == "file:flags.json"
            now = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="hot"))
            assert now.string_value == "B"
            watch.cancel()
