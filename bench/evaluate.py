"""Evaluate and EvaluateAll under load: one vexil process and `--workers 2`, each beside its floor.

Three loads per server and call: saturation (h2load -c8 -m4, as fast as it answers), serial
(-c1 -m1: latency with nothing queued), and paced at half the floor's saturation rate, evenly
spaced over 8 connections (the latency a comfortably loaded server gives).

The machine's load drifts (other work shares it), so no figure is compared across minutes.  Each
round measures every server in short slices taken in turn (floor, static, targeting, fractional,
floor EvaluateAll, EvaluateAll, then the two-worker servers, and again), each slice with its own
short warm-up, and pools a server's slices into its figure for the round: a burst of outside load
then hits all servers of the round alike instead of one of them.  The other servers keep running
meanwhile.  Stopping them (SIGSTOP) while one is measured was tried and taken back.  It kept the
idle servers' periodic work (about 55 ms of CPU a second, mostly the two-worker vexil's polls and
the emulator answering them) off the measured server, but the half-load tails stayed (a floor
alone on the machine shows them), and it moves a server's own overdue work (the 50,000-flag
server's full reload, every 60 s) into the slice right after it is continued, against that
server alone: one run put the 50,000-flag targeting p50 at 1.13x, above any run before.  Ratios
are taken within a round; the reported ratio is the median over rounds, with its range.  The
paced rate of a round is half of that round's floor saturation (the two-process floor's for the
workers).

vexil and its floor get the very same request bytes (the static flag's `EvaluateRequest` with a
realistic context for Evaluate; the 100-flag `EvaluateAllRequest` for EvaluateAll).

Two comparisons of vexil with itself, serial latency only (what one call costs, nothing queued),
taken in turn within each round like the rest:
- context: the flag whose rule reads one attribute, sent that attribute alone and sent it among
  2,000 (about 50 KB): the cost of a call must follow what the rule reads, not what is sent.
  The floor gets the same two requests (`context_floor`): what 50 KB more on the wire costs any
  Python gRPC server here.  That share moves with the machine's state: in one hour a no-op
  server's ratio of the two was 1.8x, later 1.14x, and vexil's stayed within 0.1 of it;
- scale: the static and the targeting flag in a server holding 100 flags and in one holding
  50,000 (the 100 and static fillers): a call must not cost more in a bigger environment.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from bench.flagset import ATTRIBUTE, EVALUATE_ALL_FLAGS, SCENARIO_FLAGS, attribute_contexts, context
from bench.load import SATURATION, SERIAL, Loader, Run, Slice, Target, call_once, combine, grpc_frame
from vexil.v1 import evaluation_pb2

EVALUATE = "/vexil.v1.EvaluationService/Evaluate"
EVALUATE_ALL = "/vexil.v1.EvaluationService/EvaluateAll"
VALUE_TYPES = {
    "static": evaluation_pb2.VALUE_TYPE_BOOL,
    "targeting": evaluation_pb2.VALUE_TYPE_STRING,
    "fractional": evaluation_pb2.VALUE_TYPE_STRING,
}
SINGLE_CASES = ("static", "targeting", "fractional", "evaluate_all")
FLOOR_CASES = ("evaluate_all", "wide", "narrow")
"""Requests the floor is sent as vexil is; for every other Evaluate case it is sent the static
flag's request (vexil's static case is the one it stands for)."""
WORKER_CASES = ("static", "evaluate_all")
"""With two workers only the extremes: targeting and fractional differ from static by the engine's
~2 % (the single-process figures show it), not by anything the worker count changes."""


@dataclass(frozen=True)
class Durations:
    """Per server and round: measured seconds of each load, split into `slices` taken in turn."""

    rounds: int
    slices: int
    saturation: float
    serial: float
    paced: float
    warmup: dict[str, float] = field(
        default_factory=lambda: {"saturation": 0.15, "serial": 0.05, "paced": 0.1}
    )
    """Per slice: the connections are new, the server is warm (it was loaded in earlier slices)."""


FULL = Durations(rounds=3, slices=4, saturation=2.0, serial=1.2, paced=1.2)
QUICK = Durations(rounds=1, slices=2, saturation=0.6, serial=0.4, paced=0.4)


def requests() -> dict[str, tuple[str, bytes]]:
    """Case -> (method path, pre-encoded gRPC frame)."""
    ctx = struct_pb2.Struct()
    ctx.update(context())
    out = {}
    for case, key in SCENARIO_FLAGS.items():
        request = evaluation_pb2.EvaluateRequest(flag_key=key, context=ctx, value_type=VALUE_TYPES[case])
        out[case] = (EVALUATE, grpc_frame(request))
    out["evaluate_all"] = (EVALUATE_ALL, grpc_frame(evaluation_pb2.EvaluateAllRequest(context=ctx)))
    for case, attributes in attribute_contexts().items():
        sent = struct_pb2.Struct()
        sent.update(attributes)
        request = evaluation_pb2.EvaluateRequest(
            flag_key=ATTRIBUTE, context=sent, value_type=evaluation_pb2.VALUE_TYPE_BOOL
        )
        out[case] = (EVALUATE, grpc_frame(request))
    return out


Endpoint = tuple[str, tuple[int, ...]]
"""A server under test: its address and its processes (for CPU per request)."""
Key = tuple[str, str, str]
"""(group, "floor" or "vexil", case)."""


def checked_target(endpoint: Endpoint, case: str, is_floor: bool = False) -> Target:
    """A target whose one real call succeeded and, for vexil, resolved without error."""
    address, pids = endpoint
    path, frame = requests()["static" if is_floor and case not in FLOOR_CASES else case]
    answer = call_once(address, path, frame)
    target = Target(address, path, frame, len(answer), pids)
    if not is_floor:
        if case == "evaluate_all":
            response = evaluation_pb2.EvaluateAllResponse.FromString(answer)
            results = list(response.results)
            if len(results) != EVALUATE_ALL_FLAGS:
                raise RuntimeError(f"EvaluateAll answered {len(results)} flags, not {EVALUATE_ALL_FLAGS}")
        else:
            results = [evaluation_pb2.EvaluateResponse.FromString(answer)]
        errors = [r.flag_key for r in results if r.reason == evaluation_pb2.REASON_ERROR]
        if errors:
            raise RuntimeError(f"{case}: evaluation errors for {errors[:5]}")
    return target


def interleaved(
    loader: Loader, targets: dict[Key, Target], mode: str, d: Durations, rates: dict[Key, float]
) -> dict[Key, Run]:
    """One load mode for every target, in `d.slices` turns; each target's slices pooled."""
    shape = SERIAL if mode == "serial" else SATURATION
    seconds = getattr(d, mode) / d.slices
    slices: dict[Key, list[Slice]] = {key: [] for key in targets}
    for _ in range(d.slices):
        for key, target in targets.items():
            one = loader.slice(target, seconds, d.warmup[mode], rps=rates.get(key), **shape)
            slices[key].append(one)
    return {
        key: combine(
            parts,
            tool=loader.name,
            mode=mode,
            offered=loader.offered(rates.get(key), shape["clients"]),
            **shape,
        )
        for key, parts in slices.items()
    }


def spread(values: list[float]) -> dict[str, Any]:
    """Median and range over rounds (the range is the run-to-run noise the reader must allow for)."""
    clean = [v for v in values if v == v]  # drop NaN
    if not clean:
        return {"median": None, "min": None, "max": None, "rounds": values}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "rounds": values}


def run(
    loader: Loader,
    single: tuple[Endpoint, Endpoint],
    workers: tuple[Endpoint, Endpoint] | None,
    d: Durations,
    say: Callable[[str], None],
    large: Endpoint | None = None,
) -> dict[str, Any]:
    """`single` / `workers`: (floor, vexil) for one process and for two; `large`: vexil holding
    50,000 flags (the scale comparison; left out when None)."""
    groups = {"single": (single, SINGLE_CASES)}
    if workers is not None:
        groups["workers"] = (workers, WORKER_CASES)
    targets: dict[Key, Target] = {}
    for group, ((floor, vexil), cases) in groups.items():  # the turn order of every slice round
        targets[(group, "floor", "evaluate")] = checked_target(floor, "evaluate", is_floor=True)
        for case in cases:
            if case != "evaluate_all":
                targets[(group, "vexil", case)] = checked_target(vexil, case)
        targets[(group, "floor", "evaluate_all")] = checked_target(floor, "evaluate_all", is_floor=True)
        targets[(group, "vexil", "evaluate_all")] = checked_target(vexil, "evaluate_all")

    vexil = single[1]
    floor = single[0]
    pairs = {
        "context": (checked_target(vexil, "wide"), checked_target(vexil, "narrow")),
        "context_floor": (
            checked_target(floor, "wide", is_floor=True),
            checked_target(floor, "narrow", is_floor=True),
        ),
    }
    if large is not None:
        for case in ("static", "targeting"):
            pairs[f"scale_{case}"] = (checked_target(large, case), targets[("single", "vexil", case)])
    serial_rounds: list[dict[Any, Run]] = []

    raw: dict[str, dict[str, dict[str, list[dict[str, Run]]]]] = {
        group: {"floor": {"evaluate": [], "evaluate_all": []}, "vexil": {c: [] for c in cases}}
        for group, (_, cases) in groups.items()
    }
    for r in range(d.rounds):
        saturation = interleaved(loader, targets, "saturation", d, {})
        serial = interleaved(loader, targets, "serial", d, {})
        rates = {}
        for group, who, case in targets:
            kind = "evaluate_all" if case == "evaluate_all" else "evaluate"
            rates[(group, who, case)] = saturation[(group, "floor", kind)].rps / 2
        paced = interleaved(loader, targets, "paced", d, rates)
        sides = {(name, "of"): pair[0] for name, pair in pairs.items()}
        sides.update({(name, "vs"): pair[1] for name, pair in pairs.items()})
        serial_rounds.append(interleaved(loader, sides, "serial", d, {}))
        for name in pairs:
            of, vs = serial_rounds[-1][(name, "of")], serial_rounds[-1][(name, "vs")]
            say(
                f"round {r + 1}/{d.rounds} serial  {name:<16} {of.p50_ms:.3f} ms vs {vs.p50_ms:.3f} ms "
                f"({of.p50_ms / vs.p50_ms:.2f}x)"
            )
        for key in targets:
            group, who, case = key
            runs = {"saturation": saturation[key], "serial": serial[key], "paced": paced[key]}
            raw[group][who][case].append(runs)
            cpu = saturation[key].cpu_us_per_request or math.nan
            say(
                f"round {r + 1}/{d.rounds} {group:<7} {who:<5} {case:<12} "
                f"{saturation[key].rps:8,.0f} req/s ({cpu:4.0f} us CPU/req)  serial p50 "
                f"{serial[key].p50_ms:.3f} ms  paced p99 {paced[key].p99_ms:.2f} ms"
            )
    out = summarize(raw)
    out["serial_pairs"] = {
        name: {
            "p50_ms": spread([rnd[(name, "of")].p50_ms for rnd in serial_rounds]),
            "base_p50_ms": spread([rnd[(name, "vs")].p50_ms for rnd in serial_rounds]),
            "ratio": spread([rnd[(name, "of")].p50_ms / rnd[(name, "vs")].p50_ms for rnd in serial_rounds]),
        }
        for name in pairs
    }
    return out


def _figures(rounds: list[dict[str, Run]]) -> dict[str, Any]:
    return {
        "saturation_rps": spread([r["saturation"].rps for r in rounds]),
        "cpu_us_per_request": spread([r["saturation"].cpu_us_per_request or math.nan for r in rounds]),
        "serial_p50_ms": spread([r["serial"].p50_ms for r in rounds]),
        "serial_p99_ms": spread([r["serial"].p99_ms for r in rounds]),
        "paced_rps": spread([r["paced"].offered_rps or 0.0 for r in rounds]),
        "paced_p50_ms": spread([r["paced"].p50_ms for r in rounds]),
        "paced_p99_ms": spread([r["paced"].p99_ms for r in rounds]),
        "failed": sum(r[m].failed for r in rounds for m in r),
        "runs": [{mode: run.as_dict() for mode, run in r.items()} for r in rounds],
    }


def _ratios(cand: list[dict[str, Run]], base: list[dict[str, Run]]) -> dict[str, Any]:
    """Per-round ratios candidate / base: throughput (higher is better), latencies (lower is)."""
    pairs = list(zip(cand, base, strict=True))
    return {
        "saturation": spread([c["saturation"].rps / b["saturation"].rps for c, b in pairs]),
        "cpu_per_request": spread(
            [
                (c["saturation"].cpu_us_per_request or math.nan)
                / (b["saturation"].cpu_us_per_request or math.nan)
                for c, b in pairs
            ]
        ),
        "serial_p50": spread([c["serial"].p50_ms / b["serial"].p50_ms for c, b in pairs]),
        "paced_p99": spread([c["paced"].p99_ms / b["paced"].p99_ms for c, b in pairs]),
    }


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, sides in raw.items():
        floor_rounds = sides["floor"]
        entry: dict[str, Any] = {"floor": {k: _figures(v) for k, v in floor_rounds.items()}, "vexil": {}}
        for case, rounds in sides["vexil"].items():
            kind = "evaluate_all" if case == "evaluate_all" else "evaluate"
            figures = _figures(rounds)
            figures["vs_floor"] = _ratios(rounds, floor_rounds[kind])
            if group == "workers":
                figures["vs_one_worker"] = _ratios(rounds, raw["single"]["vexil"][case])
            entry["vexil"][case] = figures
        if group == "workers":
            entry["floor_vs_one_floor"] = {
                k: _ratios(floor_rounds[k], raw["single"]["floor"][k]) for k in floor_rounds
            }
        out[group] = entry
    return out
