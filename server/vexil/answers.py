"""Evaluation answers encoded once per snapshot, not once per call.

Everything in an `EvaluateResponse` (value, variant, reason, error, versions, the metadata
Struct) is fixed by the flag, the resolution and the snapshot; only which resolution a rule picks
depends on the caller.  The engine hands out the same pre-built `Resolution` objects on every
evaluation, so the encoded response of each is built (by `wire.resolution_to_pb`, the one way a
response is made) the first time it is served from a snapshot and reused until the snapshot is
replaced.  EvaluateAll joins the already framed results.  Resolutions made per call (errors that
name something of the call, a flag that does not compile) are encoded per call and not kept, so
the memo stays bounded by the flags' own resolutions.

`Answer` / `BulkAnswer` carry the encoded bytes (the gRPC serializer sends them as they are) and
the fields the metrics interceptor reads off a response (`reason`, `error_code`, `results`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vexil.engine import CompiledFlag, Resolution
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2
from vexil.wire import resolution_to_pb
from vexil.wire_context import varint

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
    """One encoded EvaluateAllResponse, with its results for the metrics."""

    __slots__ = ("data", "results")

    def __init__(self, results: list[Answer], config_version: int) -> None:
        tail = _CONFIG_VERSION_TAG + varint(config_version) if config_version else b""
        self.data = b"".join([answer.framed for answer in results]) + tail
        self.results = results


def serialize(answer: Answer | BulkAnswer) -> bytes:
    """The gRPC response serializer of Evaluate and EvaluateAll: the bytes are already made."""
    return answer.data


def _prebuilt(entry: Any) -> Iterator[Resolution]:
    """Every resolution a compiled flag hands out unchanged (its compile-time tables)."""
    if not isinstance(entry, CompiledFlag):
        return
    yield entry.disabled
    if entry.fixed is not None:
        yield from entry.fixed.values()
    yield from entry.defaults.values()
    for table in entry.matches.values():
        yield from table.values()


def answer(snapshot: Snapshot, key: str, resolution: Resolution, flag_version: int) -> Answer:
    """The encoded answer for `key` resolved to `resolution` in `snapshot`."""
    memo = snapshot.memo
    slot = (key, id(resolution))
    hit = memo.get(slot)
    if hit is not None and hit[0] is resolution:
        return hit[1]
    made = Answer(resolution_to_pb(key, resolution, flag_version, snapshot.config_version))
    entry = snapshot.entries.get(key)
    if any(resolution is known for known in _prebuilt(entry)):
        # Keeping `resolution` in the memo keeps its id from being reused by another object.
        memo[slot] = (resolution, made)
    return made


def keys_of(snapshot: Snapshot) -> list[str]:
    """Every flag key of the snapshot in sorted order (EvaluateAll naming no keys), once per
    snapshot."""
    memo = snapshot.memo
    keys = memo.get("sorted keys")
    if keys is None:
        keys = memo["sorted keys"] = sorted(snapshot.entries)
    return keys
