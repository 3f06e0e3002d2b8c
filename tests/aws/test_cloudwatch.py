"""The opt-in CloudWatch publisher: what it computes (unit tests with expected values written
here), what reaches the emulator's CloudWatch from a real server within one interval, that it
stays off the request path, and that an unreachable CloudWatch never hurts serving."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import grpc
import pytest

from tests.support.dynamo import REGION
from tests.support.servers import connected, free_port, running_app, server_settings
from vexil import config
from vexil.errors import NotFound
from vexil.observability import cloudwatch
from vexil.observability.cloudwatch import CloudWatchPublisher, quantile
from vexil.observability.metrics import Metrics
from vexil.v1 import admin_pb2, evaluation_pb2, flag_pb2

NAMESPACE = "Vexil/test"
INTERVAL_S = 2.0
PUT_ALLOWANCE_S = 3.0
"""Time one PutMetricData may take on the loaded emulator, beyond the interval itself."""

# LATENCY_BUCKETS bounds: 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10
# (then the overflow bucket).  Expected values worked out by hand with histogram_quantile's rule.
QUANTILES = [
    # (q, {bucket index: count}, expected)
    (0.5, {1: 100}, 0.00075),  # halfway through (0.5 ms, 1 ms]
    (0.99, {1: 100}, 0.000995),
    (0.5, {0: 90, 9: 10}, 0.0005 * 50 / 90),  # inside the first bucket, from 0
    (0.99, {0: 90, 9: 10}, 0.47),  # rank 99: 9 of the 10 in (200 ms, 500 ms]
    (0.9, {0: 90, 9: 10}, 0.0005),  # exactly the end of the first bucket
    (0.99, {14: 5}, 10.0),  # all beyond the last bound: the largest finite bound
    (0.5, {}, None),  # no observations: nothing to report
]


@pytest.mark.parametrize(("q", "counts", "expected"), QUANTILES)
def test_quantile(q: float, counts: dict[int, int], expected: float | None) -> None:
    buckets = [counts.get(i, 0) for i in range(15)]
    found = quantile(q, buckets)
    assert found == pytest.approx(expected) if expected is not None else found is None


class FakeCache:
    """The two things the publisher reads from the snapshot cache."""

    environments = ("prod", "loading")

    def status(self, env: str) -> Any:
        if env == "loading":
            raise NotFound("not loaded yet")
        return SimpleNamespace(staleness_seconds=12.5)


def by_name(data: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["MetricName"]: d for d in data}


def test_sample_sends_the_change_since_the_previous_sample() -> None:
    metrics = Metrics()
    publisher = CloudWatchPublisher(
        metrics,
        FakeCache(),
        namespace=NAMESPACE,
        interval=60,
        region=REGION,  # type: ignore[arg-type]
    )
    evaluate = metrics.requests.call("vexil", "vexil.v1.EvaluationService/Evaluate")
    for _ in range(97):
        evaluate.finished(0.0007, "OK")
    evaluate.finished(0.0007, "NOT_FOUND")  # the caller's error: not a server error
    evaluate.finished(0.3, "INTERNAL")
    evaluate.finished(0.3, "UNAVAILABLE")
    admin = metrics.requests.call("vexil", "vexil.v1.AdminService/UpdateFlag")
    admin.finished(4.0, "OK")  # counted as a request, left out of the evaluation latency
    keys = metrics.requests.call("vexil", "vexil.v1.KeyService/CreateKey")
    keys.finished(4.0, "OK")  # an API-key write waits for DynamoDB too: no evaluation either
    poke = metrics.requests.call("vexil", "vexil.v1.ReplicaService/Poke")
    poke.finished(4.0, "OK")
    metrics.dynamodb.throttles.labels("GetItem").inc(3)

    first = by_name(publisher.sample())
    assert first["Requests"]["Value"] == 103
    assert first["ServerErrors"]["Value"] == 2
    assert first["DynamoDBThrottles"]["Value"] == 3
    assert first["LatencyP50"]["Value"] == pytest.approx(0.0005 + 0.0005 * 50 / 98)
    assert first["LatencyP99"]["Value"] == pytest.approx(0.2 + 0.3 * 0.5)  # rank 99 of 100: 1 of 2
    assert first["LatencyP50"]["Unit"] == "Seconds" and first["Requests"]["Unit"] == "Count"
    age = first["SnapshotAge"]
    assert age["Value"] == 12.5
    assert age["Dimensions"] == [{"Name": "Environment", "Value": "prod"}]  # "loading" has no age yet
    assert [d["MetricName"] for d in publisher.sample() if d["MetricName"] == "SnapshotAge"] == [
        "SnapshotAge"
    ]

    evaluate.finished(0.0007, "OK")
    second = by_name(publisher.sample())
    assert second["Requests"]["Value"] == 1
    assert second["ServerErrors"]["Value"] == 0
    assert second["DynamoDBThrottles"]["Value"] == 0
    assert second["LatencyP99"]["Value"] == pytest.approx(0.0005 + 0.0005 * 0.99)
    third = by_name(publisher.sample())  # a quiet interval: counts of 0, no latency at all
    assert third["Requests"]["Value"] == 0 and "LatencyP99" not in third and "LatencyP50" not in third


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("cloudwatch_namespace", "AWS/DynamoDB", "reserved for AWS"),
        ("cloudwatch_namespace", "Vexil prod", "is not a CloudWatch namespace"),
        ("cloudwatch_interval", "0.5", "at least 1 seconds"),
    ],
)
def test_bad_settings_stop_start_up_with_what_to_fix(setting: str, value: str, message: str) -> None:
    environ = {"VEXIL_CLOUDWATCH_NAMESPACE": NAMESPACE, f"VEXIL_{setting.upper()}": value}
    with pytest.raises(config.ConfigError, match=message) as raised:
        config.load(environ=environ)
    assert setting in str(raised.value) and f"VEXIL_{setting.upper()}" in str(raised.value)


def test_off_by_default() -> None:
    settings = config.load(environ={})
    assert settings.cloudwatch_namespace == ""
    assert settings.cloudwatch_interval == 60.0


def statistic(client: Any, name: str, stat: str, **dimensions: str) -> float | None:
    """`stat` of `name` over the last few minutes (one 10-minute period), None without data."""
    now = datetime.now(UTC)
    points = client.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=[stat],
    )["Datapoints"]
    return sum(p[stat] for p in points) if stat == "Sum" and points else (points[0][stat] if points else None)


def flag(key: str) -> flag_pb2.Flag:
    return flag_pb2.Flag(key=key, variants={"on": _bool(True), "off": _bool(False)}, default_variant="on")


def _bool(value: bool) -> Any:
    from google.protobuf import struct_pb2

    return struct_pb2.Value(bool_value=value)


async def test_a_server_publishes_the_alarm_metrics_within_one_interval(aws_endpoint: str) -> None:
    settings = server_settings(
        cloudwatch_namespace=NAMESPACE,
        cloudwatch_interval=INTERVAL_S,
        cloudwatch_endpoint=aws_endpoint,
        dynamodb_region=REGION,
    )
    watch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=aws_endpoint)
    async with running_app(settings) as app, connected(app) as c:
        assert app.cloudwatch is not None
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag("published")))
        evaluations = 40
        for _ in range(evaluations):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="published"))
        with pytest.raises(grpc.aio.AioRpcError):  # a client error: counted, not a server error
            await c.admin.GetFlag(admin_pb2.GetFlagRequest(key="missing"))
        sent = time.monotonic()
        deadline = sent + INTERVAL_S + PUT_ALLOWANCE_S
        requests = None
        while time.monotonic() < deadline:
            # boto3 blocks: in a thread, so the server (and its publisher) on this loop keep running
            requests = await asyncio.to_thread(statistic, watch, "Requests", "Sum")
            if requests is not None and requests >= evaluations + 2:
                break
            await asyncio.sleep(0.1)
        waited = time.monotonic() - sent
        assert requests is not None and requests >= evaluations + 2, (requests, waited)
        print(f"metrics visible {waited:.2f} s after the last call (interval {INTERVAL_S} s)")

        assert statistic(watch, "ServerErrors", "Sum") == 0
        assert statistic(watch, "DynamoDBThrottles", "Sum") == 0
        p50, p99 = statistic(watch, "LatencyP50", "Maximum"), statistic(watch, "LatencyP99", "Maximum")
        assert p50 is not None and p99 is not None
        assert 0 < p50 <= p99 < 1.0
        age = statistic(watch, "SnapshotAge", "Maximum", Environment=settings.env)
        assert age is not None and 0 <= age < 60
        listed = watch.list_metrics(Namespace=NAMESPACE)["Metrics"]
        assert {m["MetricName"] for m in listed} == set(cloudwatch.METRIC_NAMES)

        # Off the request path: a burst of calls makes no extra PutMetricData, only the interval does.
        before, started = app.cloudwatch.published, time.monotonic()
        for _ in range(200):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="published"))
        intervals = (time.monotonic() - started) / INTERVAL_S
        assert app.cloudwatch.published - before <= intervals + 1


async def test_unreachable_cloudwatch_never_hurts_serving() -> None:
    settings = server_settings(
        cloudwatch_namespace=NAMESPACE,
        cloudwatch_interval=1.0,
        cloudwatch_endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
    )
    async with running_app(settings) as app, connected(app) as c:
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag("still-served")))
        deadline = time.monotonic() + 10.0
        publisher = app.cloudwatch
        assert publisher is not None
        while not publisher.last_failure and time.monotonic() < deadline:
            answer = await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="still-served"))
            assert answer.bool_value is True and answer.variant == "on"
            await asyncio.sleep(0.1)
        assert publisher.last_failure  # it tried, failed, and the server kept answering
        assert publisher.published == 0
        started = time.monotonic()
    assert time.monotonic() - started < cloudwatch.FLUSH_TIMEOUT_S + 3.0  # stop stays bounded


def test_serve_flags_carry_the_settings_to_worker_children() -> None:
    """`vexil serve --workers N` starts children with every setting spelled out as a flag: the
    CloudWatch settings must be flags `vexil serve` accepts, and arrive unchanged."""
    from vexil.cli.main import build_parser, worker_command

    environ = {
        "VEXIL_CLOUDWATCH_NAMESPACE": NAMESPACE,
        "VEXIL_CLOUDWATCH_INTERVAL": "15",
        "VEXIL_CLOUDWATCH_REGION": "eu-west-1",
        "VEXIL_CLOUDWATCH_ENDPOINT": "http://127.0.0.1:4566",
    }
    parent = config.load(environ=environ)
    command = worker_command(parent)
    args = build_parser().parse_args(command[command.index("serve") :])
    names = ("cloudwatch_namespace", "cloudwatch_interval", "cloudwatch_region", "cloudwatch_endpoint")
    child = config.load(cli={name: getattr(args, name) for name in names}, environ={})
    assert [getattr(child, n) for n in names] == [NAMESPACE, 15.0, "eu-west-1", "http://127.0.0.1:4566"]
