"""Request and evaluation statistics kept as plain Python numbers on the event loop.

Why not prometheus-client's `Counter` and `Histogram` on this path: every one of their updates
takes a `threading.Lock` (about 0.9 µs per counter increment and 1.7 µs per histogram
observation on the reference machine), and one call touches four of them.  Every gRPC and HTTP
handler of a vexil process runs on one asyncio event loop, so these numbers are only ever
touched by one thread and a list-index increment is enough (about 0.4 µs for a whole call).
`LoopCollector` turns them into ordinary metric families when `/metrics` is scraped, which
happens on the same loop, so the exposition format stays prometheus-client's own.

Nothing here formats strings per request: label values are fixed when a method is first seen.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from vexil.model import FLAG_KEY_PATTERN

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds.  0.1, 0.2 and 0.5 are the operations guide's target, warning and critical latencies,
so the alert rules and `vexil status` read them from exact bucket boundaries."""

OTHER_FLAGS = "(other)"
"""Flag label for evaluations of keys beyond the label budget (parentheses never occur in keys)."""
BULK = "(bulk)"
"""Flag label for flags resolved inside a bulk answer (EvaluateAll, ResolveAll, OFREP bulk)."""
DEFAULT_FLAG_LABEL_LIMIT = 100

GRPC_CLIENT_ERRORS = frozenset(
    {
        "CANCELLED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNAUTHENTICATED",
    }
)
"""Status codes that are the caller's doing (or choice); every other non-OK code is the server's."""


def outcome(code: str) -> str:
    """ "ok", "client_error" or "server_error" for a gRPC status name or an HTTP status code."""
    if code.isdigit():
        status = int(code)
        return "ok" if status < 400 else "client_error" if status < 500 else "server_error"
    if code == "OK":
        return "ok"
    return "client_error" if code in GRPC_CLIENT_ERRORS else "server_error"


class Level:
    """One mutable number (in-flight requests, open streams) that handlers bump directly."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


@dataclass(slots=True, eq=False)
class CallStats:
    """Counts by status code and (for unary calls) a latency histogram, for one method."""

    protocol: str
    method: str
    codes: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def finished(self, seconds: float, code: str) -> None:
        """A unary call ended: its latency and status."""
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.codes[code] = self.codes.get(code, 0) + 1

    def ended(self, code: str) -> None:
        """A stream ended (its lifetime is not a latency, so only the status is counted)."""
        self.codes[code] = self.codes.get(code, 0) + 1

    @property
    def observed(self) -> int:
        return sum(self.buckets)


class RequestStats:
    """Per-method call statistics, in-flight unary calls per protocol and open streams per method.

    Methods are registered once (by the gRPC interceptor or the HTTP middleware) and the returned
    objects are updated directly by the handlers, so the per-call cost is attribute arithmetic."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], CallStats] = {}
        self._in_flight: dict[str, Level] = {}
        self._streams: dict[tuple[str, str], Level] = {}

    def call(self, protocol: str, method: str) -> CallStats:
        stats = self._calls.get((protocol, method))
        if stats is None:
            stats = self._calls[(protocol, method)] = CallStats(protocol, method)
        return stats

    def in_flight(self, protocol: str) -> Level:
        level = self._in_flight.get(protocol)
        if level is None:
            level = self._in_flight[protocol] = Level()
        return level

    def stream(self, protocol: str, method: str) -> Level:
        level = self._streams.get((protocol, method))
        if level is None:
            level = self._streams[(protocol, method)] = Level()
        return level

    def calls(self) -> tuple[CallStats, ...]:
        """Every method's statistics so far, for readers on the same loop (the CloudWatch publisher)."""
        return tuple(self._calls.values())

    def families(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "vexil_requests",
            "Finished gRPC calls and HTTP requests by protocol, method and status code; outcome is"
            " ok, client_error or server_error (the error-rate and availability alerts use it).",
            labels=["protocol", "method", "code", "outcome"],
        )
        latency = HistogramMetricFamily(
            "vexil_request_duration_seconds",
            "Latency of unary gRPC calls and HTTP requests, measured in the server.",
            labels=["protocol", "method"],
        )
        for stats in tuple(self._calls.values()):
            for code, count in tuple(stats.codes.items()):
                requests.add_metric([stats.protocol, stats.method, code, outcome(code)], count)
            if stats.observed:
                cumulative, buckets = 0, []
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), cumulative))
                latency.add_metric([stats.protocol, stats.method], buckets, stats.latency_sum)
        in_flight = GaugeMetricFamily(
            "vexil_requests_in_flight",
            "Unary gRPC calls and HTTP requests being handled now.",
            labels=["protocol"],
        )
        for protocol, level in tuple(self._in_flight.items()):
            in_flight.add_metric([protocol], level.value)
        streams = GaugeMetricFamily(
            "vexil_streams_open",
            "Open server streams (Watch, flagd EventStream, flagd SyncFlags, health Watch) by method.",
            labels=["protocol", "method"],
        )
        for (protocol, method), level in tuple(self._streams.items()):
            streams.add_metric([protocol, method], level.value)
        yield from (requests, latency, in_flight, streams)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class EvaluationCounts:
    """Evaluations by flag and reason, with a bounded number of flag label values.

    Cardinality: the first `limit` distinct *existing* flags evaluated one at a time get their own
    `flag` label; every later key, every unknown key and anything that is not a valid flag key is
    counted under `flag="(other)"`, and flags resolved inside bulk answers under `flag="(bulk)"`
    (a bulk answer resolves every flag, so per-flag counts would say nothing about use).  At most
    `limit + 2` flag values per reason exist, however many keys clients send.

    Why first-come rather than a moving top-N: counters must only go up and a series, once
    exported, should keep its identity; promoting a key later would either move counts out of
    "(other)" (a counter going down) or start its series part-way.  The hot flags of a service are
    evaluated within its first seconds, so they are the ones that get labels (OpenTelemetry's SDK
    cardinality limit works the same way, with an overflow series).  Restarting the process picks
    again."""

    def __init__(self, limit: int = DEFAULT_FLAG_LABEL_LIMIT) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self._by_flag: dict[str, dict[str, int]] = {}
        self._other: dict[str, int] = {}
        self._bulk: dict[str, int] = {}

    def record(self, key: str, reason: str, found: bool = True) -> None:
        """One single-flag evaluation (`found` False: the flag does not exist)."""
        counts = self._by_flag.get(key)
        if counts is None:
            if not found or len(self._by_flag) >= self.limit or not FLAG_KEY_PATTERN.fullmatch(key):
                counts = self._other
            else:
                counts = self._by_flag[key] = {}
        counts[reason] = counts.get(reason, 0) + 1

    def record_bulk(self, reason: str, count: int = 1) -> None:
        """`count` flags resolved with `reason` as part of a bulk answer."""
        self._bulk[reason] = self._bulk.get(reason, 0) + count

    @property
    def labelled_flags(self) -> int:
        return len(self._by_flag)

    def families(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        evaluations = CounterMetricFamily(
            "vexil_evaluations",
            f"Flag evaluations by flag and reason. At most the first {self.limit} flags evaluated"
            f" get their own label; later and unknown keys are {OTHER_FLAGS}, flags resolved in bulk"
            f" answers {BULK}.",
            labels=["flag", "reason"],
        )
        for flag, counts in (*tuple(self._by_flag.items()), (OTHER_FLAGS, self._other), (BULK, self._bulk)):
            for reason, count in tuple(counts.items()):
                evaluations.add_metric([flag, reason], count)
        labelled = GaugeMetricFamily(
            "vexil_evaluation_flag_labels",
            "Flags with their own label in vexil_evaluations_total"
            " (at most vexil_evaluation_flag_label_limit).",
        )
        labelled.add_metric([], len(self._by_flag))
        limit = GaugeMetricFamily(
            "vexil_evaluation_flag_label_limit", "Most flags that get their own evaluation label."
        )
        limit.add_metric([], self.limit)
        yield from (evaluations, labelled, limit)


class LoopCollector(Collector):
    """Exports `RequestStats` and `EvaluationCounts` at scrape time."""

    def __init__(self, requests: RequestStats, evaluations: EvaluationCounts) -> None:
        self.requests = requests
        self.evaluations = evaluations

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        yield from self.requests.families()
        yield from self.evaluations.families()
