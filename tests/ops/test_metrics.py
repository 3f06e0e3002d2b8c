"""`/metrics` after real traffic on every protocol: each metric the operations guide needs is
there, with the values the traffic implies."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.openfeature import stub
from tests.support.ops import metrics_text, scrape
from tests.support.servers import connected, running_app, server_settings
from vexil.transport import flagd_protos
from vexil.v1 import admin_pb2, evaluation_pb2

TARGETED = {"if": [{"==": [{"var": "country"}, "JP"]}, "off", None]}


def value(s, name: str, **labels: str) -> float:
    return s.sum(name, lambda found: all(found.get(k) == v for k, v in labels.items()))


async def test_every_metric_after_traffic() -> None:
    async with running_app(server_settings()) as app, connected(app) as c:
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("static-flag", default="on")))
        await c.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("targeted", default="on", targeting=TARGETED))
        )
        for _ in range(3):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="static-flag"))
        request = evaluation_pb2.EvaluateRequest(flag_key="targeted")
        request.context.update({"country": "JP"})
        await c.evaluation.Evaluate(request)
        await c.evaluation.Evaluate(request)
        await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="no-such-flag"))
        await c.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest())
        with pytest.raises(grpc.aio.AioRpcError):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=""))

        flagd = stub(c.channel, flagd_protos.EVALUATION_V2)
        v2 = flagd_protos.evaluation_v2
        for _ in range(2):
            await flagd.ResolveBoolean(v2.ResolveBooleanRequest(flag_key="static-flag"))
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await flagd.ResolveBoolean(v2.ResolveBooleanRequest(flag_key="gone"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND

        base = f"http://127.0.0.1:{app.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/ofrep/v1/evaluate/flags/static-flag", json={"context": {}}) as r:
                assert r.status == 200
            async with http.post(f"{base}/ofrep/v1/evaluate/flags", json={"context": {}}) as r:
                assert r.status == 200
            async with http.get(f"{base}/no/such/path") as r:
                assert r.status == 404
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ready"

        # One of each subscriber stream, open while we scrape.
        watch = c.evaluation.Watch(evaluation_pb2.WatchRequest())
        await watch.read()
        events = stub(c.channel, flagd_protos.EVALUATION_V2).EventStream(v2.EventStreamRequest())
        await events.read()
        sync = stub(c.channel, flagd_protos.SYNC_V1).SyncFlags(flagd_protos.sync_v1.SyncFlagsRequest())
        await sync.read()
        during = await scrape(app)
        for method in (
            "vexil.v1.EvaluationService/Watch",
            "flagd.evaluation.v2.Service/EventStream",
            "flagd.sync.v1.FlagSyncService/SyncFlags",
        ):
            assert value(during, "vexil_streams_open", method=method) == 1, method
        assert value(during, "vexil_subscribers", environment="local") == 3
        # The scrape itself is the one HTTP request in flight.
        assert value(during, "vexil_requests_in_flight", protocol="http") == 1
        assert value(during, "vexil_requests_in_flight", protocol="vexil") == 0

        # A write while subscribed: the change feed applies it (lag) and pushes it.
        await c.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("static-flag", default="off")))
        assert (await asyncio.wait_for(watch.read(), 5)).type == evaluation_pb2.WatchEvent.TYPE_UPSERT
        for stream in (watch, events, sync):
            stream.cancel()
        app.metrics.rate_limit_rejected("client", "vexil")
        app.metrics.rate_limited.labels(scope="global", protocol="ofrep").inc(2)
        app.metrics.auth_failed("expired", "flagd")
        app.metrics.auth_failed("a client id, say", "flagd")  # never becomes a label value
        await asyncio.sleep(0.1)
        s = await scrape(app)

    evaluate = "vexil.v1.EvaluationService/Evaluate"
    # Requests by protocol, method and code, with the outcome the alert rules read.
    assert value(s, "vexil_requests_total", method=evaluate, code="OK", outcome="ok") == 6
    assert (
        value(s, "vexil_requests_total", method=evaluate, code="INVALID_ARGUMENT", outcome="client_error")
        == 1
    )
    resolve = "flagd.evaluation.v2.Service/ResolveBoolean"
    assert value(s, "vexil_requests_total", protocol="flagd", method=resolve, code="OK") == 2
    assert value(s, "vexil_requests_total", protocol="flagd", method=resolve, code="NOT_FOUND") == 1
    ofrep = "POST /ofrep/v1/evaluate/flags/{key}"
    assert value(s, "vexil_requests_total", protocol="ofrep", method=ofrep, code="200", outcome="ok") == 1
    assert value(s, "vexil_requests_total", protocol="http", method="(unmatched)", code="404") == 1
    assert value(s, "vexil_requests_total", method="vexil.v1.EvaluationService/Watch", code="CANCELLED") == 1
    assert value(s, "vexil_requests_total", outcome="server_error") == 0

    # Latency histograms per RPC and protocol: every unary call observed, plausible times.
    assert value(s, "vexil_request_duration_seconds_count", method=evaluate) == 7
    assert value(s, "vexil_request_duration_seconds_count", protocol="flagd") == 3
    assert value(s, "vexil_request_duration_seconds_count", protocol="ofrep") == 2
    assert 0 < value(s, "vexil_request_duration_seconds_sum", method=evaluate) < 7 * 0.5
    buckets = s.series("vexil_request_duration_seconds_bucket", lambda labels: labels["method"] == evaluate)
    assert {b.labels["le"] for b in buckets} >= {"0.1", "0.2", "0.5", "+Inf"}
    assert (
        s.quantile(0.99, "vexil_request_duration_seconds", lambda labels: labels["method"] == evaluate) < 0.5
    )
    # Streams closed again.
    assert value(s, "vexil_streams_open") == 0

    # Evaluations by flag and reason: single evaluations by flag, bulk answers together.
    assert value(s, "vexil_evaluations_total", flag="static-flag", reason="STATIC") == 3 + 2 + 1
    assert value(s, "vexil_evaluations_total", flag="targeted", reason="TARGETING_MATCH") == 2
    assert value(s, "vexil_evaluations_total", flag="(other)", reason="ERROR") == 2  # unknown keys
    assert value(s, "vexil_evaluations_total", flag="(bulk)") == 2 + 2  # EvaluateAll + OFREP bulk
    assert "no-such-flag" not in s.label_values("vexil_evaluations_total", "flag")
    assert value(s, "vexil_evaluation_flag_labels") == 2

    # Cache, hub and change feed.
    assert value(s, "vexil_config_version", environment="local") == 3
    assert value(s, "vexil_snapshot_flags", environment="local") == 2
    assert value(s, "vexil_snapshot_flags_limit", environment="local") == 100
    assert 0 <= value(s, "vexil_snapshot_age_seconds", environment="local") < 5
    assert value(s, "vexil_store_healthy", environment="local") == 1
    assert value(s, "vexil_environment_loaded", environment="local") == 1
    assert value(s, "vexil_change_feed_lag_seconds_count", environment="local") == 3
    assert value(s, "vexil_change_feed_lag_seconds_sum", environment="local") < 3 * 1.0

    # Security counters the auth and rate-limit interceptors call.
    assert value(s, "vexil_rate_limited_total", scope="client", protocol="vexil") == 1
    assert value(s, "vexil_rate_limited_total", scope="global", protocol="ofrep") == 2
    assert value(s, "vexil_auth_failures_total", reason="expired", protocol="flagd") == 1
    assert value(s, "vexil_auth_failures_total", reason="other", protocol="flagd") == 1

    assert s.has("vexil_build_info") and s.has("process_start_time_seconds")


async def test_registry_per_app_so_servers_do_not_share_counts() -> None:
    async with running_app(server_settings()) as a, running_app(server_settings()) as b:
        async with connected(a) as c:
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="x"))
        first, second = await scrape(a), await scrape(b)
    assert value(first, "vexil_requests_total", protocol="vexil") == 1
    assert value(second, "vexil_requests_total", protocol="vexil") == 0


async def test_metrics_text_documents_every_family() -> None:
    async with running_app(server_settings()) as app:
        text = await metrics_text(app)
    for family in (
        "vexil_requests_total",
        "vexil_request_duration_seconds",
        "vexil_requests_in_flight",
        "vexil_streams_open",
        "vexil_evaluations_total",
        "vexil_snapshot_age_seconds",
        "vexil_config_version",
        "vexil_change_feed_lag_seconds",
        "vexil_subscribers",
        "vexil_dynamodb_request_duration_seconds",
        "vexil_dynamodb_errors_total",
        "vexil_dynamodb_throttles_total",
        "vexil_dynamodb_consumed_capacity_units_total",
        "vexil_rate_limited_total",
        "vexil_auth_failures_total",
    ):
        assert f"# HELP {family} " in text, family
