"""Benchmark of the evaluation engine against the reference evaluator (openfeature-flagd-core).

    python bench/engine.py [--quick] [--json PATH]

Scenarios: a static flag, nested targeting (if/and/or over context attributes), sem_ver,
fractional, and a realistic mix of 1,000 flags (static, simple and nested targeting, fractional
rollouts, version gates, shared `$evaluators`) evaluated against a pool of contexts.  Both
engines get the same flags, the same contexts and the same order of calls in one run; each
scenario is timed in rounds that alternate the engines (so drifting machine load hits both
alike) and the medians are reported, with the ratio reference time / vexil time.

For a fair comparison each side does what a caller does: vexil looks the compiled flag up in a
dict by key and calls `evaluate`; the reference is called through `FlagdCore.resolve_*_value`
(which does its own lookup) with a ready `EvaluationContext`.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import vexil.engine  # noqa: F401
except ImportError:  # running from a checkout without installing: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from vexil.engine import CompiledFlag, ValueType, compile_flag, evaluate
from vexil.engine.fractional import CBOR, HASHING_KEY
from vexil.model import Flag

try:
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext
except ImportError:  # the reference is a development dependency
    FlagdCore = None  # type: ignore[assignment,misc]
    EvaluationContext = None  # type: ignore[assignment,misc]

EVALUATORS: dict[str, Any] = {
    "isInternal": {"ends_with": [{"var": "email"}, "@corp.example"]},
    "isEU": {"in": [{"var": "country"}, ["DE", "FR", "ES", "IT", "NL", "PL", "SE"]]},
    "modernClient": {"sem_ver": [{"var": "appVersion"}, ">=", "3.2.0"]},
}

NESTED = {
    "if": [
        {"and": [{"==": [{"var": "country"}, "US"]}, {">=": [{"var": "age"}, 21]}, {"var": "verified"}]},
        "gold",
        {
            "or": [
                {"in": [{"var": "plan"}, ["pro", "enterprise"]]},
                {"ends_with": [{"var": "email"}, "@corp.example"]},
            ]
        },
        "silver",
        {"and": [{"<": [18, {"var": "age"}, 30]}, {"!": {"var": "churned"}}]},
        "bronze",
        None,
    ]
}
CBOR_SET = {HASHING_KEY: CBOR}
"""The flag-set metadata that makes vexil hash `fractional` as the reference does."""

SEM_VER = {"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "3.2.0"]}, "new", "old"]}
FRACTIONAL = {"fractional": [["control", 50], ["treatment-a", 25], ["treatment-b", 25]]}

TIERS = {"gold": "gold", "silver": "silver", "bronze": "bronze", "none": "none"}


def definition(flag: Flag) -> dict[str, Any]:
    return flag.definition()


def single_flags() -> dict[str, Flag]:
    return {
        "static": Flag("static-flag", "bench", {"on": True, "off": False}, "on"),
        "targeting": Flag("nested-flag", "bench", TIERS, "none", targeting=NESTED),
        "sem_ver": Flag("version-flag", "bench", {"new": True, "old": False}, "old", targeting=SEM_VER),
        "fractional": Flag(
            "rollout-flag",
            "bench",
            {"control": "control", "treatment-a": "a", "treatment-b": "b"},
            "control",
            targeting=FRACTIONAL,
        ),
    }


SCENARIO_TYPES = {
    "static": ValueType.BOOL,
    "targeting": ValueType.STRING,
    "sem_ver": ValueType.BOOL,
    "fractional": ValueType.STRING,
}


def mixed_flags(count: int, rng: random.Random) -> list[tuple[Flag, ValueType]]:
    """A realistic environment: mostly static switches, then simple rules, rollouts, gates."""
    flags: list[tuple[Flag, ValueType]] = []
    for i in range(count):
        roll = rng.random()
        key = f"flag-{i:04d}"
        if roll < 0.40:
            flags.append(
                (Flag(key, "bench", {"on": True, "off": False}, rng.choice(["on", "off"])), ValueType.BOOL)
            )
        elif roll < 0.55:
            rule = {
                "if": [
                    rng.choice(
                        [
                            {"==": [{"var": "country"}, rng.choice(["US", "DE", "JP"])]},
                            {"in": [{"var": "email"}, [f"user{j}@example.com" for j in range(5)]]},
                            {"starts_with": [{"var": "email"}, "user1"]},
                            {">": [{"var": "age"}, rng.randint(18, 60)]},
                            {"$ref": "isInternal"},
                            {"$ref": "isEU"},
                        ]
                    ),
                    "on",
                    "off",
                ]
            }
            flags.append(
                (Flag(key, "bench", {"on": True, "off": False}, "off", targeting=rule), ValueType.BOOL)
            )
        elif roll < 0.70:
            flags.append((Flag(key, "bench", TIERS, "none", targeting=NESTED), ValueType.STRING))
        elif roll < 0.85:
            weights = [rng.randint(1, 100) for _ in range(rng.randint(2, 4))]
            buckets = [[f"v{j}", w] for j, w in enumerate(weights)]
            variants = {f"v{j}": j for j in range(len(weights))}
            if rng.random() < 0.5:
                rule = {"fractional": buckets}
            else:
                rule = {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, *buckets]}
            flags.append((Flag(key, "bench", variants, "v0", targeting=rule), ValueType.INT))
        elif roll < 0.95:
            rule = {
                "if": [
                    {
                        "sem_ver": [
                            {"var": "appVersion"},
                            rng.choice([">=", "<", "^", "~"]),
                            rng.choice(["3.2", "2.9.1"]),
                        ]
                    },
                    "new",
                    "old",
                ]
            }
            flags.append(
                (Flag(key, "bench", {"new": "new", "old": "old"}, "old", targeting=rule), ValueType.STRING)
            )
        else:
            rule = {"if": [{"and": [{"$ref": "modernClient"}, {"$ref": "isEU"}]}, "on", "off"]}
            flags.append(
                (Flag(key, "bench", {"on": 1.5, "off": 0.5}, "off", targeting=rule), ValueType.FLOAT)
            )
    return flags


def contexts(count: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        out.append(
            {
                "targetingKey": f"user-{rng.randint(0, 10**6)}",
                "email": rng.choice([f"user{i % 9}@example.com", f"dev{i}@corp.example", f"x{i}@mail.test"]),
                "country": rng.choice(["US", "DE", "FR", "JP", "BR"]),
                "age": rng.randint(13, 80),
                "plan": rng.choice(["free", "pro", "enterprise"]),
                "verified": rng.random() < 0.7,
                "churned": rng.random() < 0.1,
                "appVersion": rng.choice(["3.2.0", "3.1.9", "3.10.1", "2.9.1", "4.0.0-rc.1", "v3.2"]),
            }
        )
    return out


# -- timing -------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    engine: str
    ns_per_eval: float
    evals_per_second: float
    rounds: list[float]


def time_calls(run: Callable[[], int]) -> float:
    """ns per evaluation of one call of `run` (which returns how many evaluations it made)."""
    gc.disable()
    try:
        start = time.perf_counter_ns()
        n = run()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / n


def vexil_runner(
    calls: list[tuple[str, dict[str, Any], ValueType]], table: dict[str, CompiledFlag]
) -> Callable[[], int]:
    def run() -> int:
        for key, context, value_type in calls:
            evaluate(table[key], context, value_type)
        return len(calls)

    return run


_METHODS = {
    ValueType.BOOL: ("resolve_boolean_value", False),
    ValueType.STRING: ("resolve_string_value", ""),
    ValueType.INT: ("resolve_integer_value", 0),
    ValueType.FLOAT: ("resolve_float_value", 0.0),
    ValueType.OBJECT: ("resolve_object_value", {}),
}


def reference_runner(calls: list[tuple[str, dict[str, Any], ValueType]], core: Any) -> Callable[[], int]:
    prepared = []
    for key, context, value_type in calls:
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        method, default = _METHODS[value_type]
        prepared.append(
            (getattr(core, method), key, default, EvaluationContext(context.get("targetingKey"), attributes))
        )

    def run() -> int:
        for method, key, default, ctx in prepared:
            method(key, default, ctx)
        return len(prepared)

    return run


def check_agreement(
    calls: list[tuple[str, dict[str, Any], ValueType]], table: dict[str, CompiledFlag], core: Any
) -> int:
    """Both engines must choose the same variants on the benchmark's own inputs."""
    disagreements = 0
    for key, context, value_type in calls[:2000]:
        ours = evaluate(table[key], context, value_type)
        method, default = _METHODS[value_type]
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        theirs = getattr(core, method)(
            key, default, EvaluationContext(context.get("targetingKey"), attributes)
        )
        if (ours.variant, str(ours.reason)) != (theirs.variant, str(theirs.reason)):
            disagreements += 1
    return disagreements


def measure(
    scenario: str,
    flags: list[tuple[Flag, ValueType]],
    ctxs: list[dict[str, Any]],
    calls_per_round: int,
    rounds: int,
    rng: random.Random,
    evaluators: dict[str, Any] | None = None,
) -> tuple[list[Result], int]:
    table = {flag.key: compile_flag(flag, evaluators) for flag, _ in flags}
    calls = []
    for _ in range(calls_per_round):
        flag, value_type = flags[rng.randrange(len(flags))]
        calls.append((flag.key, ctxs[rng.randrange(len(ctxs))], value_type))
    runners: dict[str, Callable[[], int]] = {"vexil": vexil_runner(calls, table)}
    disagreements = 0
    if FlagdCore is not None:
        core = FlagdCore()
        flag_set: dict[str, Any] = {"flags": {flag.key: definition(flag) for flag, _ in flags}}
        if evaluators:
            flag_set["$evaluators"] = evaluators
        core.set_flags(flag_set)
        runners["reference"] = reference_runner(calls, core)
        # The reference hashes `fractional` as CBOR: agreement is checked in that mode, while the
        # timings are of the default (flagd's string hashing).
        cbor = {flag.key: compile_flag(flag, evaluators, flag_set_metadata=CBOR_SET) for flag, _ in flags}
        disagreements = check_agreement(calls, cbor, core)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():  # warm-up
        time_calls(run)
    for _ in range(rounds):
        for name, run in runners.items():
            samples[name].append(time_calls(run))
    results = []
    for name, values in samples.items():
        median = statistics.median(values)
        results.append(Result(scenario, name, median, 1e9 / median, values))
    return results, disagreements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 15 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    rng = random.Random(20261128)
    ctxs = contexts(256, rng)
    single_rounds, single_calls = (15, 4000) if args.quick else (31, 10000)
    mix_rounds, mix_calls = (15, 6000) if args.quick else (31, 20000)

    started = time.perf_counter()
    results: list[Result] = []
    disagreements: dict[str, int] = {}
    for scenario, flag in single_flags().items():
        found, bad = measure(
            scenario, [(flag, SCENARIO_TYPES[scenario])], ctxs, single_calls, single_rounds, rng
        )
        results += found
        disagreements[scenario] = bad
    found, bad = measure(
        "mix of 1,000 flags", mixed_flags(1000, rng), ctxs, mix_calls, mix_rounds, rng, evaluators=EVALUATORS
    )
    results += found
    disagreements["mix of 1,000 flags"] = bad
    elapsed = time.perf_counter() - started

    by_scenario: dict[str, dict[str, Result]] = {}
    for result in results:
        by_scenario.setdefault(result.scenario, {})[result.engine] = result
    mode = "quick" if args.quick else "full"
    print(f"vexil engine benchmark ({mode}; medians of rounds; Python {platform.python_version()})")
    header = (
        f"{'scenario':<20} {'vexil ns/eval':>14} {'vexil evals/s':>14} "
        f"{'ref ns/eval':>12} {'ref evals/s':>12} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    summary = []
    for scenario, engines in by_scenario.items():
        ours = engines["vexil"]
        theirs = engines.get("reference")
        ratio = theirs.ns_per_eval / ours.ns_per_eval if theirs else None
        print(
            f"{scenario:<20} {ours.ns_per_eval:>14,.0f} {ours.evals_per_second:>14,.0f} "
            + (
                f"{theirs.ns_per_eval:>12,.0f} {theirs.evals_per_second:>12,.0f} {ratio:>6.1f}x"
                if theirs
                else f"{'-':>12} {'-':>12} {'-':>7}"
            )
        )
        summary.append(
            {
                "scenario": scenario,
                "vexil_ns_per_eval": ours.ns_per_eval,
                "vexil_evals_per_second": ours.evals_per_second,
                "reference_ns_per_eval": theirs.ns_per_eval if theirs else None,
                "reference_evals_per_second": theirs.evals_per_second if theirs else None,
                "ratio": ratio,
                "disagreements": disagreements[scenario],
            }
        )
    if FlagdCore is None:
        print("(reference not installed: pip install openfeature-flagd-core==2.0.0 to compare)")
    bad_total = sum(disagreements.values())
    print(
        f"variant/reason disagreements with the reference on sampled calls: {bad_total}; took {elapsed:.1f} s"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "mode": "quick" if args.quick else "full",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "seconds": elapsed,
            "results": summary,
            "rounds": [asdict(r) for r in results],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
