"""Which gRPC methods are flag evaluations, and how to read flag and reason off their messages.

The interceptor already holds each call's request and response, so counting evaluations needs
no change to the adapters: a single-flag method gives the key from the request and the reason
from the response (or, for flagd, from the status a failed resolution aborts with); a bulk method
gives one reason per flag in its response.  Only evaluation RPCs get an observer; every other
method costs nothing here.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from typing import Any

from vexil.engine import ErrorCode, Resolution
from vexil.observability.stats import EvaluationCounts
from vexil.v1 import evaluation_pb2

Observe = Callable[[Any, Any, str], None]
"""(request, response or None, status name) -> None, called when an evaluation RPC finishes."""

VEXIL_REASONS: dict[int, str] = {
    number: name.removeprefix("REASON_") for name, number in evaluation_pb2.Reason.items()
}
FLAG_NOT_FOUND = evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND

FLAGD_ERROR_STATUS = {"NOT_FOUND": False, "INVALID_ARGUMENT": True, "DATA_LOSS": True, "UNKNOWN": True}
"""Statuses a flagd resolution aborts with when the evaluation itself failed (reason ERROR),
mapped to whether the flag exists; other statuses (a bad selector, say) are not evaluations."""

FLAGD_RESOLVE = ("ResolveBoolean", "ResolveString", "ResolveFloat", "ResolveInt", "ResolveObject")


def observer_for(method: str, counts: EvaluationCounts) -> Observe | None:
    """The observer for a gRPC method path, or None when the method evaluates nothing."""
    service, _, name = method.lstrip("/").rpartition("/")
    if service == "vexil.v1.EvaluationService":
        if name == "Evaluate":
            return _vexil_single(counts)
        if name == "EvaluateAll":
            return _vexil_bulk(counts)
    if service in ("flagd.evaluation.v1.Service", "flagd.evaluation.v2.Service"):
        if name in FLAGD_RESOLVE:
            return _flagd_single(counts)
        if name == "ResolveAll":
            return _flagd_bulk(counts)
    return None


def _vexil_single(counts: EvaluationCounts) -> Observe:
    def observe(request: Any, response: Any, code: str) -> None:
        if response is not None:
            counts.record(
                request.flag_key,
                VEXIL_REASONS.get(response.reason, "UNKNOWN"),
                response.error_code != FLAG_NOT_FOUND,
            )

    return observe


def _vexil_bulk(counts: EvaluationCounts) -> Observe:
    reason_of = operator.attrgetter("reason")

    def observe(request: Any, response: Any, code: str) -> None:
        # An EvaluateAll answers dozens of per-call results but only a few distinct reasons:
        # tallied at C speed first, then recorded once per reason (not once per result).
        if response is not None:
            for reason, count in response.counted.items():
                counts.record_bulk(VEXIL_REASONS.get(reason, "UNKNOWN"), count)
            for reason, count in Counter(map(reason_of, response.results)).items():
                counts.record_bulk(VEXIL_REASONS.get(reason, "UNKNOWN"), count)

    return observe


def _flagd_single(counts: EvaluationCounts) -> Observe:
    def observe(request: Any, response: Any, code: str) -> None:
        if response is not None:
            counts.record(request.flag_key, response.reason)
            return
        found = FLAGD_ERROR_STATUS.get(code)
        if found is not None:
            counts.record(request.flag_key, "ERROR", found)

    return observe


def _flagd_bulk(counts: EvaluationCounts) -> Observe:
    def observe(request: Any, response: Any, code: str) -> None:
        if response is not None:
            for flag in response.flags.values():
                counts.record_bulk(flag.reason)

    return observe


def resolution_observer(counts: EvaluationCounts) -> Callable[[str | None, Resolution], None]:
    """For the HTTP side (OFREP): called with (key, resolution), key None inside a bulk answer."""

    def observe(key: str | None, resolution: Resolution) -> None:
        reason = str(resolution.reason)
        if key is None:
            counts.record_bulk(reason)
        else:
            counts.record(key, reason, resolution.error_code is not ErrorCode.FLAG_NOT_FOUND)

    return observe
