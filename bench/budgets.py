"""Bounded work: the most expensive rule the limits allow, and the requests that used to stall.

The most expensive rule is the costliest per evaluation of a few candidates (`CANDIDATES`), each
given the largest caller context (at most 64 KB) it still serves within the default budget.  A
vexil process (memory store, one process) serves it beside the issue's stalling rules (a reduce
over the caller's array around a reduce over 250 elements; a reduce doubling a string with
`cat`), which the budget now cuts off ("evaluation budget exceeded"), and `checkout-v2`, a
one-comparison flag that EvaluateAll names 300,000 times.  For each load, callers send it back to
back for a few seconds while a probe (gRPC health Check on its own connection, every 10 ms)
measures its latency from when each check was due; the target is a probe p99 under 100 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import flagset
from bench.flagset import ENVIRONMENT, LARGE_FLAGS, STATIC, large_flags, write_flagd_file
from bench.load import percentile
from vexil.engine import ValueType, compile_flag, evaluate
from vexil.engine.budget import DEFAULT_OPERATIONS
from vexil.model import Flag
from vexil.v1 import evaluation_pb2
from vexil.wire import MAX_CONTEXT_BYTES

ACC = {"var": "accumulator"}
CUR = {"var": "current"}
VERSIONS = [f"1.{i // 50}.{i % 50}" for i in range(250)]
BOOLS = {"on": True, "off": False}
PROBE_EVERY = 0.010
PROBE_TARGET_MS = 100.0


def _copies(count: int) -> dict[str, Any]:
    """An array of `count` references to the current element (what a rule can multiply)."""
    return {"merge": [{"var": ""}] * count}


def _pick(rule: Any) -> dict[str, Any]:
    return {"if": [rule, "on", "off"]}


# Candidates for the most expensive rule the limits allow, each with the caller context that
# makes it spend the most it may (sized by `sized`): loops nested as deep as allowed with sem_ver
# inside; numbers compared with a word (a failed number parse each); every element's array
# printed to compare it with a string; a long string parsed as a number again and again.  The
# heaviest of them per evaluation is the one measured.
_VERSIONS = {"all": [VERSIONS, {"sem_ver": [{"var": ""}, ">=", "1.0.0"]}]}
CANDIDATES: dict[str, tuple[dict[str, Any], Callable[[int], dict[str, Any]]]] = {
    "sem_ver in nested loops": (
        _pick({"reduce": [{"var": "xs"}, {"and": [ACC, _VERSIONS]}, True]}),
        lambda n: {"xs": ["x"] * n},
    ),
    "numbers compared with a word in loops": (
        _pick({"some": [{"var": "xs"}, {"some": [_copies(50), {"==": [{"var": ""}, "x"]}]}]}),
        lambda n: {"xs": [list(range(n))]},
    ),
    "printing arrays in loops": (
        _pick({"some": [{"var": "xs"}, {"==": [{"var": ""}, "x"]}]}),
        lambda n: {"xs": [list(range(100))] * n},
    ),
    "parsing long strings in loops": (
        _pick({"some": [{"var": "xs"}, {"some": [_copies(200), {">": [{"var": ""}, 5]}]}]}),
        lambda n: {"xs": ["1." + "0" * n]},
    ),
}
_SUM_250 = {"reduce": [list(range(250)), {"+": [ACC, CUR]}, 0]}
NESTED = _pick({">": [{"reduce": [{"var": "xs"}, {"+": [ACC, _SUM_250]}, 0]}, 0]})
DOUBLING = _pick({"reduce": [{"var": "xs"}, {"cat": [ACC, ACC]}, "ab"]})
PLAIN = _pick({"==": [{"var": "country"}, "JP"]})
PLAIN_KEY = "checkout-v2"
"""Eleven characters, as in the issue: 300,000 copies make a 3.9 MB request."""
HEAVIEST_KEY = "heaviest-allowed"


def flags(heaviest: dict[str, Any]) -> list[Flag]:
    rules = {HEAVIEST_KEY: heaviest, "nested-reduce": NESTED, "doubling-cat": DOUBLING, PLAIN_KEY: PLAIN}
    return [Flag(key, ENVIRONMENT, BOOLS, "off", targeting=rule) for key, rule in rules.items()]


def sized(rule: dict[str, Any], context: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """The largest context of this shape that a caller may send and the rule still serves
    within the default budget (both limits are deterministic: a binary search finds it)."""
    compiled = compile_flag(Flag("probe", ENVIRONMENT, BOOLS, "off", targeting=rule))
    low, high = 1, 1 << 17
    while low < high:
        mid = (low + high + 1) // 2
        candidate = context(mid)
        served = evaluate(compiled, candidate, ValueType.BOOL).error_code is None
        if served and struct(candidate).ByteSize() <= MAX_CONTEXT_BYTES:
            low = mid
        else:
            high = mid - 1
    return context(low)


def heaviest() -> tuple[str, dict[str, Any], dict[str, Any], dict[str, float]]:
    """(name, rule, context, engine ms of every candidate) of the costliest candidate."""
    costs: dict[str, float] = {}
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for name, (rule, context) in CANDIDATES.items():
        ctx = sized(rule, context)
        found[name] = (rule, ctx)
        costs[name] = engine_cost_ms(rule, ctx)
    name = max(costs, key=lambda n: costs[n])
    return name, *found[name], costs


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


Call = tuple[str, bytes, Any]
"""A load: the method path, the request already serialized (so this process spends nothing
encoding it beside the probe), and the response class."""


async def probed(target: str, callers: int, seconds: float, load: Call) -> dict[str, Any]:
    """`callers` loops of `load` for `seconds` beside the health probe: the figures."""
    async with (
        grpc.aio.insecure_channel(target) as probe_channel,
        grpc.aio.insecure_channel(
            target, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
        ) as load_channel,
    ):
        health = health_pb2_grpc.HealthStub(probe_channel)
        path, payload, response_type = load
        method = load_channel.unary_unary(path, response_deserializer=response_type.FromString)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        stop = time.monotonic() + seconds
        probes: list[float] = []
        calls: list[float] = []
        answers: list[Any] = []

        async def probe() -> None:
            due = time.perf_counter()
            while time.monotonic() < stop:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                ended = time.perf_counter()
                probes.append((ended - due) * 1000)
                due = ended + PROBE_EVERY
                await asyncio.sleep(PROBE_EVERY)

        async def caller() -> None:
            while time.monotonic() < stop and len(calls) < 10_000:
                started = time.perf_counter()
                answers.append(await method(payload, timeout=60))
                calls.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(probe(), *(caller() for _ in range(callers)))
    probes.sort()
    calls.sort()
    return {
        "callers": callers,
        "calls": len(calls),
        "call_p50_ms": round(percentile(calls, 0.5), 2) if calls else None,
        "probe_samples": len(probes),
        "probe_p99_ms": round(percentile(probes, 0.99), 2),
        "probe_max_ms": round(probes[-1], 2),
        "answer": describe(answers[-1]) if answers else None,
    }


def describe(response: Any) -> str:
    if isinstance(response, evaluation_pb2.EvaluateAllResponse):
        return f"{len(response.results)} result(s), {response.ByteSize():,} bytes"
    reason = evaluation_pb2.Reason.Name(response.reason)
    return reason + (f": {response.error_message}" if response.error_message else "")


EVALUATE = "/vexil.v1.EvaluationService/Evaluate"
EVALUATE_ALL = "/vexil.v1.EvaluationService/EvaluateAll"


def evaluate_call(key: str, context: dict[str, Any]) -> Call:
    request = evaluation_pb2.EvaluateRequest(flag_key=key, context=struct(context))
    return EVALUATE, request.SerializeToString(), evaluation_pb2.EvaluateResponse


def engine_cost_ms(rule: dict[str, Any], context: dict[str, Any], rounds: int = 15) -> float:
    compiled = compile_flag(Flag("probe", ENVIRONMENT, BOOLS, "off", targeting=rule))
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate(compiled, context, ValueType.BOOL)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(
    target: str,
    seconds: float,
    say: Callable[[str], None],
    found: tuple[str, dict[str, Any], dict[str, Any], dict[str, float]],
) -> dict[str, Any]:
    name, _, heavy, costs = found
    say(f"  candidates, engine ms per evaluation: {costs}; heaviest: {name}")
    result: dict[str, Any] = {
        "budget_operations": DEFAULT_OPERATIONS,
        "candidates_engine_ms": {n: round(c, 2) for n, c in costs.items()},
        "heaviest": {"rule": name, "engine_ms": round(costs[name], 2)},
    }
    result["heaviest"].update(await probed(target, 2, seconds, evaluate_call(HEAVIEST_KEY, heavy)))
    say(f"    {result['heaviest']}")
    dupes = evaluation_pb2.EvaluateAllRequest(
        flag_keys=[PLAIN_KEY] * 300_000, context=struct({"country": "JP"})
    ).SerializeToString()
    loads: dict[str, tuple[str, Call]] = {
        "nested_reduce": (
            "reduce over 5,000 caller elements around a reduce over 250",
            evaluate_call("nested-reduce", {"xs": ["x"] * 5_000}),
        ),
        "doubling_cat": (
            "reduce doubling a string with cat, 64 steps",
            evaluate_call("doubling-cat", {"xs": list(range(64))}),
        ),
        "evaluate_all_duplicates": (
            f"EvaluateAll naming one key 300,000 times ({len(dupes) / 1e6:.1f} MB)",
            (EVALUATE_ALL, dupes, evaluation_pb2.EvaluateAllResponse),
        ),
    }
    result["stalling"] = {}
    for name, (what, load) in loads.items():
        figures = await probed(target, 1, seconds, load)
        figures["what"] = what
        result["stalling"][name] = figures
        say(f"  {name}: {figures}")
    return result


def run(
    logs: Path,
    server_factory: Callable[..., Any],
    run_async: Callable[..., Any],
    seconds: float,
    say: Callable[[str], None],
    reload_flags: int = LARGE_FLAGS,
) -> dict[str, Any]:
    """Start a vexil serving the four flags, measure, stop it (`bench.run` passes its helpers);
    then the probe beside full reloads of `reload_flags` flags (`reloads`)."""
    found = heaviest()  # before the server starts: the engine figures are this process's alone
    flags_file = write_flagd_file(logs / "budget-flags.json", flags(found[1]))
    with server_factory(logs, "--flags", str(flags_file), "--heartbeat-seconds", "300") as server:
        result = run_async(measure(server.target, seconds, say, found))
    result["reload"] = reloads(logs, server_factory, run_async, reload_flags, say)
    return result


def reloads(
    logs: Path,
    server_factory: Callable[..., Any],
    run_async: Callable[..., Any],
    count: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The probe beside a vexil holding `count` flags whose cache TTL is short enough for two full
    reloads to fall in the window: a reload reads the whole environment again, compares it with
    the served snapshot and replaces it, and must not hold the calls (nor may the garbage collector
    walking the snapshots, or freeing the old one).  The flags do not change, so a reload keeps
    their compiled entries; compiling a whole environment (the start, new `$evaluators`) is paced
    the same way and checked by `tests/unit/test_heap.py`."""
    ttl = 2 if count < 20_000 else 4
    flags_file = write_flagd_file(logs / "reload-flags.json", large_flags(count))
    server = server_factory(
        logs,
        "--flags",
        str(flags_file),
        "--cache-maxsize",
        str(count),
        "--cache-ttl",
        str(ttl),
        "--heartbeat-seconds",
        "300",
    )
    try:
        server.start(timeout=600)
        figures: dict[str, Any] = run_async(
            probed(server.target, 1, 3 * ttl, evaluate_call(STATIC, flagset.context()))
        )
    finally:
        server.stop()
    figures.update(flags=count, ttl_seconds=ttl, what=f"full reloads of {count:,} flags every {ttl} s")
    say(f"  reload: {figures}")
    return figures
