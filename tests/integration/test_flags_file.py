"""Serving a flagd flag file: the demo flags load, and editing the file reaches subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import grpc

from tests.support.calls import eventually
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


async def test_a_flag_no_json_holds_is_skipped_and_the_rest_applies(tmp_path, caplog) -> None:
    """NaN, Infinity and numbers past a double's range (Python's JSON reads them; no JSON text
    holds them) skip that flag, naming where it is, at start and on an edit: the other flags of
    the file are applied, before and after it, and nothing is half-written."""
    path = tmp_path / "flags.json"
    bad = {"variants": {"a": {"x": [1, float("nan")]}}, "defaultVariant": "a"}
    huge = {"variants": {"a": 1, "b": 1e999}, "defaultVariant": "a"}
    first = {"ok": flag_definition({"a": "v1"}, "a"), "bad": bad, "huge": huge}
    path.write_text(json.dumps({"flags": first}))  # json writes NaN and Infinity as bare words
    with caplog.at_level(logging.WARNING, logger="vexil.flagfile"):
        async with running_app(server_settings(flags=str(path))) as app:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
                stub = evaluation_pb2_grpc.EvaluationServiceStub(ch)

                async def value(key: str) -> evaluation_pb2.EvaluateResponse:
                    return await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))

                assert (await value("ok")).string_value == "v1"
                assert (await value("bad")).error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
                assert (await value("huge")).error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
                warned = " | ".join(r.getMessage() for r in caplog.records)
                assert "flag 'bad' skipped: flag.variants.a.x[1]: nan is not a finite number" in warned
                assert "flag 'huge' skipped: flag.variants.b: inf is not a finite number" in warned

                edited = {"aa": flag_definition({"a": "new"}, "a"), "ok": flag_definition({"a": "v2"}, "a")}
                path.write_text(
                    json.dumps(
                        {
                            "flags": {
                                **edited,
                                "bad": bad,
                                "huge": huge,
                                "zz": flag_definition({"a": "z"}, "a"),
                            }
                        }
                    )
                )

                async def applied() -> bool:
                    return (await value("zz")).string_value == "z"

                await eventually(applied, timeout=15)
                assert (await value("aa")).string_value == "new"
                assert (await value("ok")).string_value == "v2"
                assert (await value("bad")).error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND


async def test_a_flag_the_store_refuses_is_reported_and_the_rest_applies(tmp_path, caplog) -> None:
    """The environment's flag limit reached part-way through the file: that flag is reported,
    the flags after it are still updated, and the server keeps serving."""
    path = tmp_path / "flags.json"
    path.write_text(
        json.dumps(
            {"flags": {"a": flag_definition({"v": "a1"}, "v"), "b": flag_definition({"v": "b1"}, "v")}}
        )
    )
    async with running_app(server_settings(flags=str(path), cache_maxsize=2)) as app:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(ch)

            async def value(key: str) -> evaluation_pb2.EvaluateResponse:
                return await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))

            with caplog.at_level(logging.WARNING, logger="vexil.flagfile"):
                flags = {"a": flag_definition({"v": "a2"}, "v"), "aa": flag_definition({"v": "new"}, "v")}
                flags["b"] = flag_definition({"v": "b2"}, "v")
                path.write_text(json.dumps({"flags": flags}))

                async def updated() -> bool:
                    return (await value("b")).string_value == "b2"

                await eventually(updated, timeout=15)
            assert (await value("a")).string_value == "a2"
            assert (await value("aa")).error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
            warned = " | ".join(r.getMessage() for r in caplog.records)
            assert "flag aa not written" in warned and "limit" in warned, warned
