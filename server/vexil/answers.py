"""Evaluation answers encoded once per snapshot, not once per call.

Everything in an `EvaluateResponse` (value, variant, reason, error, versions, the metadata
Struct) is fixed by the flag, the resolution and the snapshot; only which resolution a rule picks
depends on the caller.  The engine hands out the same pre-built `Resolution` objects on every
evaluation, so the encoded response of each is built (by `wire.resolution_to_pb`, the one way a
response is made) the first time it is served from a snapshot and reused until the snapshot is
replaced.  Resolutions made per call (errors that name something of the call, a flag that does
not compile) are encoded per call and not kept, so the memo stays bounded by the flags' own
resolutions.

EvaluateAll of every flag goes one step further (`BulkPlan`, built once per snapshot): the
answer of a flag that does not depend on the context (static, disabled or killed, a rule the
compiler folded to a constant, a flag that does not compile, every flag while the environment is
killed) is the same for every caller, so those answers are joined into runs of bytes once, their
reasons counted once, and a call evaluates and frames only the flags whose rules read the context.

`Answer` / `BulkAnswer` carry the encoded bytes (the gRPC serializer sends them as they are) and
the fields the metrics interceptor reads off a response (`reason`, `error_code`; `results` and
`counted` for a bulk answer).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from vexil.engine import CompiledFlag, Resolution, evaluate
from vexil.pacing import Pacer
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2
from vexil.wire import resolution_to_pb
from vexil.wire_context import for_bulk, varint

_RESULTS_TAG = b"\x0a"  # EvaluateAllResponse.results: field 1, length-delimited
_CONFIG_VERSION_TAG = b"\x10"  # EvaluateAllResponse.config_version: field 2, varint


class Answer:
    """One encoded EvaluateResponse (immutable, shared by every call it answers)."""

    __slots__ = ("data", "error_code", "framed", "reason")

    def __init__(self, message: evaluation_pb2.EvaluateResponse) -> None:
        self.data = message.SerializeToString()
        self.reason = message.reason
        self.error_code = message.error_code
        self.framed = _RESULTS_TAG + varint(len(self.data)) + self.data
        """As one element of EvaluateAllResponse.results."""


class BulkAnswer:
    """One encoded EvaluateAllResponse, with its results' reasons for the metrics."""

    __slots__ = ("counted", "data", "results")

    def __init__(self, data: bytes, results: list[Answer], counted: Mapping[int, int]) -> None:
        self.data = data
        self.results = results
        """The answers made by this call (each one counted on its own)."""
        self.counted = counted
        """Reason -> how many more results have it (the context-independent ones, counted once
        per snapshot)."""


def serialize(answer: Answer | BulkAnswer) -> bytes:
    """The gRPC response serializer of Evaluate and EvaluateAll: the bytes are already made."""
    return answer.data


def _prebuilt(entry: Any) -> Iterator[Resolution]:
    """Every resolution a compiled flag hands out unchanged (its tables, as far as they have been
    built: a resolution is in them before it is first handed out)."""
    if not isinstance(entry, CompiledFlag):
        return
    yield entry.disabled
    if entry.fixed is not None:
        yield from entry.fixed.values()
    yield from entry.defaults.values()
    for table in entry.matches.values():
        yield from table.values()


def kept(snapshot: Snapshot, key: str, resolution: Resolution) -> Answer | None:
    """The answer the snapshot keeps for `key` resolved to `resolution` (None: not made yet, or
    made per call)."""
    hit = snapshot.memo.get((key, id(resolution)))
    return hit[1] if hit is not None and hit[0] is resolution else None


def answer(snapshot: Snapshot, key: str, resolution: Resolution, flag_version: int) -> Answer:
    """The encoded answer for `key` resolved to `resolution` in `snapshot`."""
    made = kept(snapshot, key, resolution)
    if made is not None:
        return made
    made = Answer(resolution_to_pb(key, resolution, flag_version, snapshot.config_version))
    entry = snapshot.entries.get(key)
    if any(resolution is known for known in _prebuilt(entry)):
        # Keeping `resolution` in the memo keeps its id from being reused by another object.
        snapshot.memo[(key, id(resolution))] = (resolution, made)
    return made


_NO_CONTEXT: Mapping[str, Any] = {}
_NONE_COUNTED: Mapping[int, int] = {}


class BulkPlan:
    """EvaluateAll of every flag of one snapshot, prepared once (see the module docstring).

    `parts` lists every flag in key order: runs of context-independent answers already framed and
    joined (bytes), and between them the flags to evaluate per call, each with the answers of its
    resolutions served so far by id (`engine.evaluate` resolves them as `Snapshot.evaluate` would:
    the environment is not killed and the flag compiles, or it would be context-independent)."""

    __slots__ = ("counted", "parts")

    def __init__(
        self,
        parts: list[bytes | tuple[CompiledFlag, dict[int, tuple[Resolution, Answer]]]],
        counted: Mapping[int, int],
    ) -> None:
        self.parts = parts
        self.counted = counted
        """Reason -> how many of the context-independent answers have it."""


def _tail(config_version: int) -> bytes:
    """EvaluateAllResponse.config_version, after the results."""
    return _CONFIG_VERSION_TAG + varint(config_version) if config_version else b""


async def _planned(snapshot: Snapshot) -> BulkPlan:
    """The snapshot's `BulkPlan`, giving the loop back as a bulk evaluation does (`Pacer`):
    encoding the answers of 50,000 flags takes a good part of a second."""
    killed = snapshot.environment.kill_switch
    counted: Counter[int] = Counter()
    parts: list[bytes | tuple[CompiledFlag, dict[int, tuple[Resolution, Answer]]]] = []
    run: list[bytes] = []
    async with Pacer() as pacer:
        for key in sorted(snapshot.entries):
            await pacer.tick()
            entry = snapshot.entries[key]
            if killed or not isinstance(entry, CompiledFlag) or entry.fixed is not None:
                known = answer(snapshot, key, *snapshot.evaluate(key, _NO_CONTEXT))
                counted[known.reason] += 1
                run.append(known.framed)
                continue
            if run:
                parts.append(b"".join(run))
                run = []
            parts.append((entry, {}))
    parts.append(b"".join([*run, _tail(snapshot.config_version)]))
    return BulkPlan(parts, dict(counted))


async def bulk_plan(snapshot: Snapshot) -> BulkPlan:
    """The snapshot's `BulkPlan`, built on first use; calls arriving while it is being built wait
    for that one build (a task, so a caller that goes away does not cancel it for the others)."""
    building = snapshot.memo.get("bulk plan")
    if building is None:
        building = snapshot.memo["bulk plan"] = asyncio.ensure_future(_planned(snapshot))
    if building.done():
        return building.result()  # type: ignore[no-any-return]
    return await asyncio.shield(building)  # type: ignore[no-any-return]


async def bulk_answer(snapshot: Snapshot, context: Mapping[str, Any], keys: list[str]) -> BulkAnswer:
    """The encoded EvaluateAll answer for `keys` (none: every flag, in key order) in `context`.

    Every flag: only those whose answer depends on the context are evaluated (`BulkPlan`).  Keys
    named: each is evaluated (its answer encoded once per snapshot all the same), without building
    the plan of a whole environment for them.  Either way the loop is paced (`Pacer`)."""
    context = for_bulk(context)
    results: list[Answer] = []
    chunks: list[bytes] = []
    if keys:
        async with Pacer() as pacer:
            for key in keys:
                await pacer.tick()
                made = answer(snapshot, key, *snapshot.evaluate(key, context))
                results.append(made)
                chunks.append(made.framed)
        chunks.append(_tail(snapshot.config_version))
        return BulkAnswer(b"".join(chunks), results, _NONE_COUNTED)
    plan = await bulk_plan(snapshot)  # before pacing: the plan is paced work of its own
    clock = time.perf_counter
    async with Pacer() as pacer:
        for part in plan.parts:
            if isinstance(part, bytes):
                chunks.append(part)
                continue
            if clock() >= pacer.deadline:
                await pacer.pause()
            compiled, served = part
            resolution = evaluate(compiled, context)
            hit = served.get(id(resolution))
            if hit is not None and hit[0] is resolution:
                made = hit[1]
            else:
                made = answer(snapshot, compiled.key, resolution, compiled.flag.version)
                if made is kept(snapshot, compiled.key, resolution):
                    served[id(resolution)] = (resolution, made)
            results.append(made)
            chunks.append(made.framed)
    return BulkAnswer(b"".join(chunks), results, plan.counted)
