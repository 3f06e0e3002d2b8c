"""Opt-in CloudWatch metrics: a background task that publishes what the alarms of
`deploy/aws/vexil.yaml` watch, read from the statistics the server already keeps.

Why a task of its own and not hooks on the request path: the evaluate path must stay free of
I/O and extra work, so nothing here runs per request.  Every `interval` seconds the task reads
the plain counters of `RequestStats`, the DynamoDB throttle counter and the cache's snapshot
ages (the same numbers `/metrics` exports), turns the change since the previous reading into
one batched `PutMetricData`, and sleeps again.  A failed or slow put is logged and dropped
(its interval's counts are lost, never the server's time): metrics must not hurt serving.

Published into `cloudwatch_namespace` (the template's `Vexil/<Environment>`), without instance
dimensions so the fleet's replicas add up:
- `Requests`, `ServerErrors` (Count): finished calls of every protocol, and those whose outcome
  was a server error; the error-rate and availability alarms divide them.
- `LatencyP50`, `LatencyP99` (Seconds): of the evaluation APIs (vexil, flagd, OFREP; admin, key
  and replica calls are not part of the response-time target: `thresholds.is_evaluation`), over
  the interval,
  interpolated within the latency buckets as Prometheus' `histogram_quantile` does.  Not sent
  for an interval without such calls.
- `DynamoDBThrottles` (Count): DynamoDB attempts refused for throughput, SDK retries included.
- `SnapshotAge` (Seconds, dimension `Environment`): seconds since each loaded environment's
  snapshot was last confirmed against the store.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig

from vexil.background import BackgroundTask
from vexil.cache import SnapshotCache
from vexil.errors import VexilError
from vexil.observability.metrics import Metrics
from vexil.observability.stats import LATENCY_BUCKETS, CallStats, outcome
from vexil.observability.thresholds import is_evaluation
from vexil.store.dynamodb_client import ClientSettings, new_session

log = logging.getLogger(__name__)

REQUESTS = "Requests"
SERVER_ERRORS = "ServerErrors"
LATENCY_P50 = "LatencyP50"
LATENCY_P99 = "LatencyP99"
DYNAMODB_THROTTLES = "DynamoDBThrottles"
SNAPSHOT_AGE = "SnapshotAge"
METRIC_NAMES = (REQUESTS, SERVER_ERRORS, LATENCY_P50, LATENCY_P99, DYNAMODB_THROTTLES, SNAPSHOT_AGE)
ENVIRONMENT_DIMENSION = "Environment"


NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9.\-_/#:]{1,255}")
"""CloudWatch's namespace alphabet; a namespace must not start with `AWS/` either."""
MIN_INTERVAL_S = 1.0
"""CloudWatch's finest resolution; shorter would only multiply PutMetricData calls."""
BATCH = 1000
"""Most MetricDatum entries one PutMetricData takes."""
FLUSH_TIMEOUT_S = 2.0
"""On stop, the last partial interval gets this long to be sent."""


def namespace_problem(namespace: str) -> str:
    """Why `namespace` cannot be a CloudWatch namespace ("" when it can)."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        return "use 1 to 255 of the characters A-Z a-z 0-9 . - _ / # :"
    if namespace.startswith("AWS/"):
        return "namespaces starting with AWS/ are reserved for AWS services"
    return ""


def quantile(q: float, counts: Sequence[int]) -> float | None:
    """The `q` quantile of one interval's latency histogram (`counts` per bucket of
    `LATENCY_BUCKETS` plus the overflow bucket), interpolated linearly inside its bucket from the
    bucket's lower bound (0 for the first), as Prometheus' `histogram_quantile` does; in the
    overflow bucket, the largest finite bound.  None without observations."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(counts):
        if count and cumulative + count >= rank:
            if index == len(LATENCY_BUCKETS):
                return LATENCY_BUCKETS[-1]
            lower = LATENCY_BUCKETS[index - 1] if index else 0.0
            upper = LATENCY_BUCKETS[index]
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return LATENCY_BUCKETS[-1]


class Totals:
    """Running totals read from the server's counters at one moment."""

    __slots__ = ("buckets", "errors", "requests", "throttles")

    def __init__(self, calls: Iterable[CallStats], throttles: float) -> None:
        self.requests = 0
        self.errors = 0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        for stats in calls:
            for code, count in tuple(stats.codes.items()):
                self.requests += count
                if outcome(code) == "server_error":
                    self.errors += count
            if is_evaluation(stats.protocol, stats.method):  # the latency target's calls only
                for index, count in enumerate(stats.buckets):
                    self.buckets[index] += count
        self.throttles = throttles


class CloudWatchPublisher:
    """Publishes the alarm metrics of one process every `interval` seconds (see module docstring)."""

    def __init__(
        self,
        metrics: Metrics,
        cache: SnapshotCache,
        *,
        namespace: str,
        interval: float,
        region: str,
        endpoint_url: str | None = None,
    ) -> None:
        problem = namespace_problem(namespace)
        if problem:
            raise ValueError(f"cloudwatch namespace {namespace!r}: {problem}")
        if interval < MIN_INTERVAL_S:
            raise ValueError(f"cloudwatch interval must be at least {MIN_INTERVAL_S} s")
        self.metrics = metrics
        self.cache = cache
        self.namespace = namespace
        self.interval = interval
        self._client_settings = ClientSettings(region=region, endpoint_url=endpoint_url)
        self._previous = self._totals()
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._task = BackgroundTask("vexil-cloudwatch")
        self.last_failure = ""
        """The last publishing failure, until a batch goes through again (logged once)."""
        self.published = 0
        """Intervals whose batch CloudWatch accepted (for tests and debugging)."""

    def _totals(self) -> Totals:
        throttles = sum(
            sample.value
            for family in self.metrics.dynamodb.throttles.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
        return Totals(self.metrics.requests.calls(), throttles)

    def sample(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """The MetricData for the interval since the previous sample (and make this the new one)."""
        now = now or datetime.now(UTC)
        current, previous = self._totals(), self._previous
        self._previous = current

        def datum(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
            entry: dict[str, Any] = {"MetricName": name, "Timestamp": now, "Value": value, "Unit": unit}
            if dimensions:
                entry["Dimensions"] = [{"Name": k, "Value": v} for k, v in dimensions.items()]
            return entry

        data = [
            datum(REQUESTS, max(0, current.requests - previous.requests), "Count"),
            datum(SERVER_ERRORS, max(0, current.errors - previous.errors), "Count"),
            datum(DYNAMODB_THROTTLES, max(0.0, current.throttles - previous.throttles), "Count"),
        ]
        interval = [max(0, c - p) for c, p in zip(current.buckets, previous.buckets, strict=True)]
        for name, q in ((LATENCY_P50, 0.5), (LATENCY_P99, 0.99)):
            value = quantile(q, interval)
            if value is not None:
                data.append(datum(name, value, "Seconds"))
        for env in self.cache.environments:
            try:
                age = self.cache.status(env).staleness_seconds
            except VexilError:  # not loaded yet: no age to report
                continue
            data.append(datum(SNAPSHOT_AGE, age, "Seconds", **{ENVIRONMENT_DIMENSION: env}))
        return data

    async def start(self) -> None:
        """Open the CloudWatch client (no request is sent) and start the publishing task."""
        if self._task.running:
            return
        stack = AsyncExitStack()
        config = AioConfig(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=2.0,
            read_timeout=min(10.0, self.interval),
        )
        session = new_session(self._client_settings)
        try:
            self._client = await stack.enter_async_context(
                session.client("cloudwatch", endpoint_url=self._client_settings.endpoint_url, config=config)
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._previous = self._totals()
        self._task.start(self._run)

    async def stop(self) -> None:
        """Stop the task, send the last partial interval (within `FLUSH_TIMEOUT_S`), close."""
        if not self._task.running:
            return
        await self._task.stop()
        await self._publish(FLUSH_TIMEOUT_S)
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._publish(self.interval)

    async def _publish(self, timeout: float) -> None:
        data = self.sample()
        try:
            async with asyncio.timeout(timeout):
                for start in range(0, len(data), BATCH):
                    batch = data[start : start + BATCH]
                    await self._client.put_metric_data(Namespace=self.namespace, MetricData=batch)
        except Exception as exc:  # metrics must never take the server down
            message = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else repr(exc)
            if message != self.last_failure:  # once per distinct failure, not every interval
                log.warning("publishing metrics to CloudWatch failed (this interval is dropped): %s", message)
            self.last_failure = message
            return
        if self.last_failure:
            log.info("publishing metrics to CloudWatch works again")
        self.last_failure = ""
        self.published += 1
