"""No request stalls the server: the issue's stalling requests against a real server, each with a
probe beside it (gRPC health checks on the same server) that must stay fast.

The in-process server runs on the test's event loop, exactly like a real one runs on its own:
an evaluation that held the loop would hold the probe's calls too, and show in their latency.
The bound here is generous for a loaded test machine; the strict 100 ms figure is `make bench`'s.

The server shares its heap with the test run, though, and late in a full run a full pass of the
garbage collector over that heap holds the loop for 0.2-0.4 s (a `serve` process leaves what
starting made out of those passes: `vexil.heap.settle_startup`).  So before a probe measures,
what the test made so far is frozen the same way (`settle`, as `tests/conftest.py` does before
each module): what the probe sees is the server's.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.calls import context
from tests.support.flags import flag_pb
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2, evaluation_pb2

ACC = {"var": "accumulator"}
CUR = {"var": "current"}
PROBE_P99 = 0.5
"""Seconds: a probe call's 99th percentile latency while the stalling requests run."""


@pytest.fixture
async def server() -> AsyncIterator[Connected]:
    async with (
        running_app(server_settings(evaluate_all_max_keys=1000, cache_maxsize=1000)) as app,
        connected(app) as conn,
    ):
        yield conn


def targeting(rule: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(rule, struct)
    return struct


async def create(server: Connected, key: str, rule: dict[str, Any]) -> None:
    flag = flag_pb(key)
    flag.targeting.CopyFrom(targeting({"if": [rule, "on", "off"]}))
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))


def settle() -> None:
    """What the test made so far (its flags above all) out of the collector's full passes."""
    gc.collect()
    gc.freeze()


async def probed(server: Connected, load: Callable[[], Awaitable[Any]]) -> tuple[Any, list[float]]:
    """Run `load` while health checks probe the server back to back; (its result, latencies)."""
    health = health_pb2_grpc.HealthStub(server.channel)
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        # Latency counts from when a call was due (every 5 ms), not from when the loop got round
        # to sending it: a hold that starts between two calls is seen too.
        deadline = time.monotonic() + 60.0
        due = time.perf_counter()
        while not done.is_set() and time.monotonic() < deadline:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            ended = time.perf_counter()
            latencies.append(ended - due)
            due = ended + 0.005
            await asyncio.sleep(0.005)

    settle()
    task = asyncio.create_task(probe())
    try:
        await asyncio.sleep(0.05)  # the probe is running before the load starts
        result = await load()
    finally:
        done.set()
        await task
    return result, latencies


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def evaluate_times(server: Connected, key: str, ctx: dict[str, Any], times: int) -> list[Any]:
    request = evaluation_pb2.EvaluateRequest(flag_key=key, context=context(**ctx))
    return [await server.evaluation.Evaluate(request, timeout=60) for _ in range(times)]


def assert_cut_off(responses: list[Any]) -> None:
    for response in responses:
        assert response.reason == evaluation_pb2.REASON_ERROR
        assert "evaluation budget exceeded" in response.error_message


async def test_nested_iterators_over_the_callers_data_are_cut_off(server: Connected) -> None:
    # Two nested reduce (the most a rule may nest): 5,000 elements of the caller's array times a
    # literal 250: 1.25 million steps uncut (seconds of the event loop).
    inner = {"reduce": [list(range(250)), {"+": [ACC, CUR]}, 0]}
    await create(server, "nested", {">": [{"reduce": [{"var": "xs"}, {"+": [ACC, inner]}, 0]}, 0]})
    ctx = {"xs": ["x"] * 5_000}
    responses, latencies = await probed(server, lambda: evaluate_times(server, "nested", ctx, 5))
    assert_cut_off(responses)
    assert len(latencies) >= 5 and p99(latencies) < PROBE_P99, sorted(latencies)[-3:]
    # A small array is evaluated (sum of 0..249 = 31,125 per element, computed here).
    served = await evaluate_times(server, "nested", {"xs": ["x", "y"]}, 1)
    assert served[0].reason == evaluation_pb2.REASON_TARGETING_MATCH and served[0].bool_value is True


async def test_three_nested_iterators_are_refused_naming_the_path(server: Connected) -> None:
    inner = {"reduce": [CUR, {"+": [ACC, CUR]}, 0]}
    middle = {"reduce": [CUR, {"+": [ACC, inner]}, 0]}
    flag = flag_pb("deep")
    flag.targeting.CopyFrom(
        targeting({"if": [{"reduce": [{"var": "xs"}, {"+": [ACC, middle]}, 0]}, "on", "off"]})
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "targeting.if[0].reduce[1].+[1].reduce[1].+[1].reduce" in err.value.details()
    assert "nest at most 2" in err.value.details()
    listed = await server.admin.ListFlags(admin_pb2.ListFlagsRequest())
    assert [f.key for f in listed.flags] == []


async def test_a_doubling_string_is_cut_off_without_growing_the_process(server: Connected) -> None:
    await create(server, "doubling", {"reduce": [{"var": "xs"}, {"cat": [ACC, ACC]}, "ab"]})
    ctx = {"xs": list(range(64))}  # 2**65 characters uncut
    responses, latencies = await probed(server, lambda: evaluate_times(server, "doubling", ctx, 5))
    assert_cut_off(responses)
    assert p99(latencies) < PROBE_P99, sorted(latencies)[-3:]


async def test_evaluate_all_ignores_duplicate_keys(server: Connected) -> None:
    await create(server, "checkout-v2", {"==": [{"var": "country"}, "JP"]})
    # The issue's request: 300,000 times the same key, 3.9 MB.
    request = evaluation_pb2.EvaluateAllRequest(
        flag_keys=["checkout-v2"] * 300_000, context=context(country="JP")
    )
    assert request.ByteSize() > 3_000_000

    async def call() -> Any:
        return await server.evaluation.EvaluateAll(request, timeout=60)

    response, latencies = await probed(server, call)
    assert [(r.flag_key, r.bool_value) for r in response.results] == [("checkout-v2", True)]
    assert response.ByteSize() < 1_000
    assert p99(latencies) < PROBE_P99, sorted(latencies)[-3:]


async def test_evaluate_all_refuses_more_distinct_keys_than_the_limit(server: Connected) -> None:
    await create(server, "plain", {"==": [{"var": "country"}, "JP"]})
    keys = [f"k{i}" for i in range(1_001)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=keys))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "flag_keys" in err.value.details() and "1,000" in err.value.details()
    # Exactly the limit is served (unknown keys answer FLAG_NOT_FOUND, in the order named).
    response = await server.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=keys[:1_000]))
    assert [r.flag_key for r in response.results] == keys[:1_000]


async def test_evaluating_every_flag_gives_the_loop_back_between_flags(server: Connected) -> None:
    # 300 flags of a few ms each: a bulk answer holds about a second of work, which must be
    # served in slices, the probe passing between them.
    inner = {"reduce": [list(range(100)), {"+": [ACC, CUR]}, 0]}
    rule = {">": [{"reduce": [{"var": "xs"}, {"+": [ACC, inner]}, 0]}, 0]}
    for i in range(300):
        await create(server, f"heavy-{i:02d}", rule)
    ctx = {"xs": ["x"] * 20}  # 20 x 100 inner steps: inside the budget, not cut off

    async def call() -> Any:
        return await server.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(context=context(**ctx)))

    response, latencies = await probed(server, call)
    assert len(response.results) == 300
    assert all(r.reason == evaluation_pb2.REASON_TARGETING_MATCH for r in response.results)
    assert p99(latencies) < PROBE_P99, sorted(latencies)[-3:]
