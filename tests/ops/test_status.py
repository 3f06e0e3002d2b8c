"""`vexil status`: the guide's health table from GetStatus and /metrics, JSON for scripts, colour
on request, and a non-zero exit when an indicator is critical or the server cannot be reached."""

from __future__ import annotations

import json

from aiohttp import web

from tests.support.flags import flag_pb
from tests.support.ops import Ran, server_args, vexil
from tests.support.servers import connected, free_port, running_app, server_settings
from tests.support.site import site
from vexil.ops.health import report
from vexil.ops.scrape import Scrape, quantile
from vexil.v1 import admin_pb2, evaluation_pb2

SICK_METRICS = """\
# TYPE vexil_requests_total counter
vexil_requests_total{protocol="vexil",method="Evaluate",code="OK",outcome="ok"} 900
vexil_requests_total{protocol="vexil",method="Evaluate",code="UNAVAILABLE",outcome="server_error"} 100
# TYPE vexil_request_duration_seconds histogram
vexil_request_duration_seconds_bucket{protocol="vexil",method="Evaluate",le="0.1"} 500
vexil_request_duration_seconds_bucket{protocol="vexil",method="Evaluate",le="0.2"} 800
vexil_request_duration_seconds_bucket{protocol="vexil",method="Evaluate",le="0.5"} 1000
vexil_request_duration_seconds_bucket{protocol="vexil",method="Evaluate",le="+Inf"} 1000
vexil_request_duration_seconds_count{protocol="vexil",method="Evaluate"} 1000
vexil_request_duration_seconds_sum{protocol="vexil",method="Evaluate"} 150
# TYPE vexil_snapshot_age_seconds gauge
vexil_snapshot_age_seconds{environment="prod"} 420
"""


async def test_status_of_a_healthy_server() -> None:
    async with running_app(server_settings()) as app, connected(app) as c:
        await c.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f", default="on")))
        for _ in range(10):
            await c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f"))
        text = await vexil("status", *server_args(app))
        data = await vexil("status", *server_args(app), "--json")
        coloured = await vexil("status", *server_args(app), "--color", "always")

    assert text.code == 0, text.out + text.err
    lines = text.out.splitlines()
    assert "SERVING" in lines[0]
    header = next(line for line in lines if line.startswith("INDICATOR"))
    assert header.split()[:6] == ["INDICATOR", "TARGET", "WARNING", "CRITICAL", "CURRENT", "STATE"]
    latency = next(line for line in lines if line.startswith("API response time (p99)"))
    assert "< 100.0 ms" in latency and "> 200.0 ms" in latency and "> 500.0 ms" in latency
    assert next(line for line in lines if line.startswith("Availability")).split()[-6] == "OK"
    assert "overall: OK" in text.out

    parsed = json.loads(data.out)
    assert parsed["state"] == "SERVING" and parsed["level"] == "OK"  # the table's name
    by_name = {i["indicator"]: i for i in parsed["indicators"]}
    assert set(by_name) == {
        "api_response_time",
        "error_rate",
        "availability",
        "dynamodb_throttles",
        "snapshot_age",
        "change_feed_lag",
        "capacity",
    }
    assert by_name["error_rate"]["value"] == 0 and by_name["availability"]["value"] == 1
    assert 0 < by_name["api_response_time"]["value"] < 0.1
    assert by_name["capacity"]["value"] == 0.01  # 1 of the local profile's 100 flags
    assert parsed["environments"][0]["name"] == "local"
    assert "\x1b[32m" in coloured.out and "\x1b[" not in text.out


async def status_given_metrics(text: str) -> Ran:
    """`vexil status --json` against a real server whose `/metrics` answers `text`."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text)

    fake = web.Application()
    fake.router.add_get("/metrics", metrics)
    port = free_port()
    async with site(fake, port), running_app(server_settings()) as app:
        target = ["--target", f"127.0.0.1:{app.port}", "--http-url", f"http://127.0.0.1:{port}"]
        return await vexil("status", *target, "--json")


async def test_status_exits_non_zero_on_critical_and_when_unreachable() -> None:
    sick = await status_given_metrics(SICK_METRICS)
    assert sick.code == 7, sick.out + sick.err
    levels = {i["indicator"]: i["level"] for i in json.loads(sick.out)["indicators"]}
    assert levels["error_rate"] == "CRIT"  # 10 %
    assert levels["availability"] == "CRIT"  # 90 %
    assert levels["api_response_time"] == "WARN"  # p99 between 200 and 500 ms
    assert levels["snapshot_age"] == "CRIT"  # 7 minutes, beyond the RPO

    gone = await vexil(
        "status", "--target", f"127.0.0.1:{free_port()}", "--http-url", f"http://127.0.0.1:{free_port()}"
    )
    assert gone.code == 6 and "UNREACHABLE" in gone.out


def calls(method: str, le: dict[str, int]) -> str:
    """Histogram lines of `method` (protocol vexil) with these cumulative bucket counts."""
    labels = f'protocol="vexil",method="{method}"'
    buckets = "".join(
        f'vexil_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}\n'
        for bound, count in le.items()
    )
    return buckets + f"vexil_request_duration_seconds_count{{{labels}}} {le['+Inf']}\n"


# 600 evaluations within 100 ms; 20 each of flag writes, key writes and pokes taking 0.5-1 s
# (1 in 11 of all calls: a p99 over every call would be past the 500 ms critical threshold).
SLOW_NON_EVALUATIONS = (
    "# TYPE vexil_request_duration_seconds histogram\n"
    + calls("vexil.v1.EvaluationService/Evaluate", {"0.1": 600, "0.5": 600, "1.0": 600, "+Inf": 600})
    + "".join(
        calls(method, {"0.1": 0, "0.5": 0, "1.0": 20, "+Inf": 20})
        for method in (
            "vexil.v1.AdminService/UpdateFlag",
            "vexil.v1.KeyService/CreateKey",
            "vexil.v1.ReplicaService/Poke",
        )
    )
)


async def test_only_evaluations_count_for_the_response_time_target() -> None:
    """Flag and API-key writes wait for DynamoDB and pokes are replicas talking: none of them is
    an evaluation, so slow ones leave the latency indicator OK (as they leave the alerts quiet)."""
    ran = await status_given_metrics(SLOW_NON_EVALUATIONS)
    latency = {i["indicator"]: i for i in json.loads(ran.out)["indicators"]}["api_response_time"]
    assert latency["level"] == "OK" and latency["value"] < 0.1, latency
    assert latency["detail"] == "600 evaluation requests", latency


def test_quantile_matches_prometheus_histogram_quantile() -> None:
    buckets = {0.1: 500.0, 0.2: 800.0, 0.5: 1000.0, float("inf"): 1000.0}
    assert abs(quantile(0.99, buckets) - 0.485) < 1e-9  # 0.2 + 0.3 * (990 - 800) / 200
    assert abs(quantile(0.5, buckets) - 0.1) < 1e-9
    assert quantile(0.99, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {0.1: 1.0, float("inf"): 10.0}) == 0.1  # beyond the last bound


def test_window_uses_increases_between_two_scrapes() -> None:
    before = Scrape.parse(SICK_METRICS)
    after = Scrape.parse(
        SICK_METRICS.replace("} 900", "} 1900").replace(
            'code="UNAVAILABLE",outcome="server_error"} 100', 'code="UNAVAILABLE",outcome="server_error"} 101'
        )
    )
    recent = report({"state": "STATE_SERVING"}, after.since(before), "last 10 s")
    rate = next(r for r in recent.readings if r.indicator.name == "error_rate")
    assert abs(rate.value - 1 / 1001) < 1e-9
