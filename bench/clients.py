"""Through the real client: OpenFeature's flagd provider against vexil, evaluations per second.

    python -m bench.clients --port PORT --mode rpc|in-process --seconds S

The provider (`openfeature-provider-flagd`) runs in a process of its own, never in the server's:
in RPC mode every evaluation is a gRPC call to vexil's `flagd.evaluation.v2` service, except that
the provider caches STATIC answers (its default LRU cache), so the static flag measures that
cache and the targeting flag measures the round trip; in in-process mode the provider syncs the
flags once over `flagd.sync.v1` and evaluates them itself with flagd's reference evaluator.  Each
flag is evaluated through `OpenFeatureClient.get_*_details` in a loop bounded in count and time,
after checking that the answer is real (no ERROR reason) and is the value vexil's own `Evaluate`
gives for the same flag and context.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.flagset import SCENARIO_FLAGS, context

MODES = ("rpc", "in-process")
FLAGS = {"static": ("boolean", False), "targeting": ("string", "")}
MAX_CALLS = 2_000_000


def measure(port: int, mode: str, seconds: float) -> dict[str, Any]:
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    resolver = ResolverType.RPC if mode == "rpc" else ResolverType.IN_PROCESS
    provider = FlagdProvider(host="127.0.0.1", port=port, resolver_type=resolver, deadline_ms=5000)
    api.set_provider_and_wait(provider)
    try:
        client = api.get_client()
        ctx = context()
        evaluation_context = EvaluationContext(
            ctx["targetingKey"], {k: v for k, v in ctx.items() if k != "targetingKey"}
        )
        out: dict[str, Any] = {"mode": mode}
        for case, (kind, default) in FLAGS.items():
            getter: Callable[..., Any] = getattr(client, f"get_{kind}_details")
            key = SCENARIO_FLAGS[case]
            first = getter(key, default, evaluation_context)
            if first.reason == "ERROR" or first.error_code is not None:
                raise RuntimeError(
                    f"{mode}: {key} answered {first.reason} {first.error_code} {first.error_message}"
                )
            for _ in range(200):  # warm-up (connections, caches)
                getter(key, default, evaluation_context)
            calls = 0
            began = time.perf_counter()
            deadline = began + seconds
            while calls < MAX_CALLS:
                for _ in range(100):
                    getter(key, default, evaluation_context)
                calls += 100
                if time.perf_counter() >= deadline:
                    break
            elapsed = time.perf_counter() - began
            out[case] = {
                "flag": key,
                "value": first.value,
                "reason": str(first.reason),
                "evaluations": calls,
                "seconds": elapsed,
                "evaluations_per_second": calls / elapsed,
                "us_per_evaluation": elapsed / calls * 1e6,
            }
        return out
    finally:
        api.shutdown()


def native_values(port: int) -> dict[str, Any]:
    """What vexil's own Evaluate answers for the measured flags (the provider must agree)."""
    from bench.evaluate import EVALUATE, requests
    from bench.load import call_once
    from vexil.v1 import evaluation_pb2

    frames = requests()
    values = {}
    for case in FLAGS:
        answer = evaluation_pb2.EvaluateResponse.FromString(
            call_once(f"127.0.0.1:{port}", EVALUATE, frames[case][1])
        )
        values[case] = getattr(answer, answer.WhichOneof("value") or "bool_value")
    return values


def run(port: int, seconds: float, say: Callable[[str], None]) -> dict[str, Any]:
    """Each mode in a fresh process (so neither inherits the other's threads, caches or GC state)."""
    expected = native_values(port)
    results: dict[str, Any] = {}
    for mode in MODES:
        args = [sys.executable, "-m", "bench.clients", "--port", str(port), "--mode", mode]
        out = subprocess.run(
            [*args, "--seconds", str(seconds)], capture_output=True, text=True, timeout=60 + 4 * seconds
        )
        if out.returncode != 0:
            raise RuntimeError(f"flagd provider ({mode}) failed: {out.stderr[-1500:]}")
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        for case, value in expected.items():
            if results[mode][case]["value"] != value:
                raise RuntimeError(
                    f"flagd provider ({mode}) answered {results[mode][case]['value']!r} for "
                    f"{case}, vexil's Evaluate {value!r}"
                )
        say(
            f"  flagd provider {mode:<10} static {results[mode]['static']['evaluations_per_second']:>9,.0f}/s"
            f"  targeting {results[mode]['targeting']['evaluations_per_second']:>9,.0f}/s"
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.port, args.mode, args.seconds)))


if __name__ == "__main__":
    main()
