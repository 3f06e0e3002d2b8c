"""`Metrics`: every metric one vexil process exports, in a registry of its own.

A registry per `App` (not prometheus-client's global default) so that several servers in one
process (the test suite runs many) never share or collide on a metric.

What `/metrics` shows (labels in braces):

Requests (gRPC interceptor and HTTP middleware; `vexil.observability.stats`)
- `vexil_requests_total{protocol, method, code, outcome}`: finished calls.  protocol is vexil,
  flagd, ofrep, grpc (health, reflection) or http (health, metrics); method the gRPC method path
  or the HTTP route template; code the gRPC status name or HTTP status; outcome ok, client_error
  or server_error.
- `vexil_request_duration_seconds{protocol, method}`: latency of unary calls (histogram).
- `vexil_requests_in_flight{protocol}`, `vexil_streams_open{protocol, method}` (Watch,
  EventStream, SyncFlags, health Watch).
- `vexil_evaluations_total{flag, reason}`: at most `flag_label_limit` flags get a label, the rest
  are `(other)`, bulk answers `(bulk)`; see `EvaluationCounts` for why the first come.
Cache and hub, read at scrape time (`vexil.observability.state`)
- `vexil_snapshot_age_seconds`, `vexil_config_version`, `vexil_snapshot_flags`,
  `vexil_snapshot_flags_limit`, `vexil_store_healthy`, `vexil_environment_loaded`,
  `vexil_subscribers`, all `{environment}`.
- `vexil_change_feed_lag_seconds{environment}`: from a change's write to its application here.
DynamoDB (`vexil.observability.dynamodb`)
- `vexil_dynamodb_request_duration_seconds{operation}`, `vexil_dynamodb_errors_total{operation,
  code}`, `vexil_dynamodb_throttles_total{operation}`,
  `vexil_dynamodb_consumed_capacity_units_total{operation, kind}`.
Security (incremented by the auth and rate-limit interceptors, which run before ours)
- `vexil_rate_limited_total{scope, protocol}`: requests refused with RESOURCE_EXHAUSTED / 429.
  scope is `client` (a per-client limit) or `global` (the process-wide one).
- `vexil_evaluation_quota_exceeded_total{role}`: evaluation calls refused by a client's quota,
  by the client's role (evaluator, editor, admin, anonymous): never by key or address.
- `vexil_auth_failures_total{reason, protocol}`: requests refused with UNAUTHENTICATED /
  PERMISSION_DENIED (401/403).  reason is a short fixed word: missing, malformed, unknown,
  expired, revoked, forbidden.
  Label values must come from small fixed sets: never a client id, key id or token.  Callers:
      app.metrics.rate_limited.labels(scope="client", protocol=protocol_of(method)).inc()
      app.metrics.auth_failures.labels(reason="expired", protocol="ofrep").inc()
  or the helpers `rate_limit_rejected(...)` / `auth_failed(...)`, which check the words.
Process
- `vexil_build_info{version}` and prometheus-client's `process_*` (CPU, memory, start time).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from vexil import __version__
from vexil.cache import SnapshotCache
from vexil.model import Change
from vexil.observability.dynamodb import DynamoMetrics
from vexil.observability.state import CacheCollector
from vexil.observability.stats import (
    DEFAULT_FLAG_LABEL_LIMIT,
    EvaluationCounts,
    LoopCollector,
    RequestStats,
)

FEED_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds; 5 and 30 are the change-feed lag alert's warning and critical thresholds."""
RATE_LIMIT_SCOPES = frozenset({"client", "global"})
QUOTA_ROLES = frozenset({"evaluator", "editor", "admin", "anonymous"})
AUTH_FAILURE_REASONS = frozenset({"missing", "malformed", "unknown", "expired", "revoked", "forbidden"})
PROTOCOLS = frozenset({"vexil", "flagd", "ofrep", "grpc", "http"})


class Metrics:
    """The metrics of one vexil process; `App` makes one before anything that reports to it."""

    def __init__(self, *, flag_label_limit: int = DEFAULT_FLAG_LABEL_LIMIT) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestStats()
        self.evaluations = EvaluationCounts(flag_label_limit)
        self.registry.register(LoopCollector(self.requests, self.evaluations))
        self.change_feed_lag = Histogram(
            "vexil_change_feed_lag_seconds",
            "Seconds from a change's write (its timestamp) to its snapshot being swapped in here:"
            " about 0 for local writes, about the poll interval for other replicas' writes.",
            ["environment"],
            buckets=FEED_LAG_BUCKETS,
            registry=self.registry,
        )
        self.dynamodb = DynamoMetrics(self.registry)
        self.rate_limited = Counter(
            "vexil_rate_limited",
            "Requests refused by a rate limit, by scope (client or global) and protocol.",
            ["scope", "protocol"],
            registry=self.registry,
        )
        self.quota_refusals = Counter(
            "vexil_evaluation_quota_exceeded",
            "Evaluation calls refused by the caller's per-client quota, by the caller's role.",
            ["role"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "vexil_auth_failures",
            "Requests refused by authentication or authorization, by reason and protocol.",
            ["reason", "protocol"],
            registry=self.registry,
        )
        self.insecure = Gauge(
            "vexil_insecure",
            "1 while this process serves without TLS or authentication where it matters"
            " (--insecure outside the local profile, or plaintext on a non-loopback address).",
            registry=self.registry,
        )
        self.replica_pokes = Counter(
            "vexil_replica_pokes",
            "Pokes between replicas by outcome: sent and failed (by this replica, after its writes),"
            " accepted and refused (from others; refused: bad secret or over the rate limit).",
            ["outcome"],
            registry=self.registry,
        )
        info = Gauge("vexil_build_info", "vexil's version (always 1).", ["version"], registry=self.registry)
        info.labels(__version__).set(1)
        ProcessCollector(registry=self.registry)

    def watch_cache(self, cache: SnapshotCache, max_flags: int) -> None:
        """Export the cache's and hub's state, and measure change-feed lag as changes apply."""
        self.registry.register(CacheCollector(cache, max_flags))
        cache.listeners.append(self.change_applied)

    def change_applied(self, change: Change) -> None:
        lag = max(0.0, time.time() - change.timestamp)
        self.change_feed_lag.labels(change.environment_name).observe(lag)

    def rate_limit_rejected(self, scope: str, protocol: str) -> None:
        """Count one request a rate limit refused (`scope`: client or global)."""
        self.rate_limited.labels(_checked(scope, RATE_LIMIT_SCOPES), _checked(protocol, PROTOCOLS)).inc()

    def quota_exceeded(self, role: str) -> None:
        """Count one evaluation call refused by its client's quota (by role, bounded)."""
        self.quota_refusals.labels(_checked(role, QUOTA_ROLES)).inc()

    def auth_failed(self, reason: str, protocol: str) -> None:
        """Count one request refused by authentication or authorization (see module docstring)."""
        self.auth_failures.labels(_checked(reason, AUTH_FAILURE_REASONS), _checked(protocol, PROTOCOLS)).inc()

    def poke(self, outcome: str) -> None:
        """Count one poke sent, failed, accepted or refused."""
        self.replica_pokes.labels(_checked(outcome, POKE_OUTCOMES)).inc()

    def exposition(self) -> bytes:
        """The text `/metrics` serves (for tests and tools that hold the `Metrics` object)."""
        return generate_latest(self.registry)


POKE_OUTCOMES = frozenset({"sent", "failed", "accepted", "refused"})


def _checked(value: str, allowed: frozenset[str]) -> str:
    """Bounded label values: anything unexpected is counted as "other", never as itself."""
    return value if value in allowed else "other"
