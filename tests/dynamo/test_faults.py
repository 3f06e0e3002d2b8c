"""DynamoDB misbehaving behind a loopback proxy: evaluation keeps serving the last snapshot at full
speed, health keeps SERVING while GetStatus says DEGRADED, writes fail with UNAVAILABLE, and after
the fault is gone changes made meanwhile by another replica appear without a restart; no
acknowledged write is lost."""

from __future__ import annotations

import time
import urllib.parse

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.calls import eventually
from tests.support.flags import flag_pb
from tests.support.proxy import FaultProxy
from tests.support.servers import connected, running_app, server_settings
from vexil.v1 import admin_pb2, evaluation_pb2

DEGRADED = admin_pb2.ServerStatus.STATE_DEGRADED
SERVING = admin_pb2.ServerStatus.STATE_SERVING


async def eval_latencies(conn, key: str, n: int = 200) -> list[float]:
    out = []
    for _ in range(n):
        began = time.perf_counter()
        res = await conn.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key))
        out.append(time.perf_counter() - began)
        assert res.reason == evaluation_pb2.REASON_STATIC
    return sorted(out)


@pytest.mark.parametrize("fault", ["cut", "error"])
async def test_store_outage_and_recovery(dynamo_table, fault: str) -> None:
    endpoint, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint)
    proxy = await FaultProxy(upstream.hostname, upstream.port).start()
    common = {"store": "dynamodb", "dynamodb_table": table, "poll_interval": 0.2}
    try:
        async with (
            running_app(server_settings(dynamodb_endpoint=proxy.endpoint, **common)) as app_a,
            running_app(server_settings(dynamodb_endpoint=endpoint, **common)) as app_b,
            connected(app_a) as a,
            connected(app_b) as b,
        ):
            acked = {}
            for key in ("f1", "f2"):
                resp = await a.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key)))
                acked[key] = resp.flag.version
            before = await eval_latencies(a, "f1")

            proxy.set(fault)

            async def degraded():
                status = await a.admin.GetStatus(admin_pb2.GetStatusRequest())
                return status if status.state == DEGRADED else None

            status = await eventually(degraded, timeout=30)
            assert status, f"GetStatus never reported DEGRADED under {fault}"
            env = status.environments[0]
            assert not env.healthy and env.last_error
            health = health_pb2_grpc.HealthStub(a.channel)
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
            assert_same_speed(before, await eval_latencies(a, "f1"))

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await a.admin.UpdateFlag(
                    admin_pb2.UpdateFlagRequest(flag=flag_pb("f1", default="on")), timeout=60
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

            # Meanwhile the other replica, which still reaches DynamoDB, keeps writing.
            resp = await b.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("f2", default="on"), expected_version=acked["f2"])
            )
            acked["f2"] = resp.flag.version
            resp = await b.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f3", default="on")))
            acked["f3"] = resp.flag.version
            staleness = (await a.admin.GetStatus(admin_pb2.GetStatusRequest())).environments[0]
            assert staleness.staleness_seconds > 0

            proxy.set("pass")

            async def caught_up():
                res = await a.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f3"))
                status = await a.admin.GetStatus(admin_pb2.GetStatusRequest())
                return res.bool_value and status.state == SERVING

            assert await eventually(caught_up, timeout=40), "A did not catch up after the fault"
            f2 = await a.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f2"))
            assert f2.bool_value is True and f2.flag_version == acked["f2"]

            # Every acknowledged write is in the store, at the version that was acknowledged.
            for key, version in acked.items():
                stored = await b.admin.GetFlag(admin_pb2.GetFlagRequest(key=key))
                assert stored.version == version, key
    finally:
        await proxy.stop()


async def test_slow_store_does_not_slow_evaluation(dynamo_table) -> None:
    """A 1 s delay on every request to DynamoDB: writes are slow but land; evaluations are not.
    (The write deadline is raised all the same, so a loaded machine's slower round trips cannot
    make this about the deadline: `test_write_faults` is about that.)"""
    endpoint, table = dynamo_table
    upstream = urllib.parse.urlsplit(endpoint)
    proxy = await FaultProxy(upstream.hostname, upstream.port).start()
    settings = server_settings(
        store="dynamodb",
        dynamodb_table=table,
        dynamodb_endpoint=proxy.endpoint,
        poll_interval=0.2,
        write_timeout=30.0,
    )
    try:
        async with running_app(settings) as app, connected(app) as a:
            await a.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("f1")))
            before = await eval_latencies(a, "f1")
            proxy.set("delay", delay=1.0)
            began = time.monotonic()
            resp = await a.admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(flag=flag_pb("f1"), expected_version=1), timeout=60
            )
            assert resp.flag.version == 2 and time.monotonic() - began >= 1.0
            assert_same_speed(before, await eval_latencies(a, "f1"))
            proxy.set("pass")
    finally:
        await proxy.stop()


def assert_same_speed(before: list[float], during: list[float]) -> None:
    """Evaluations answer from memory: a store fault must not show in their latency.  The bound is
    generous (this is a shared machine); a store round trip would cost seconds, not this."""
    p99_before, p99_during = before[int(len(before) * 0.99)], during[int(len(during) * 0.99)]
    assert p99_during < max(0.05, 5 * p99_before), (p99_before, p99_during)
