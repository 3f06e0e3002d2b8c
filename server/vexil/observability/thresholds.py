"""The operations guide's health targets and alert thresholds, in one place.

`vexil status` and `vexil ops check` judge live values with these, and the test suite checks
that the Prometheus rules shipped in `ops/vexil-alerts.yml` use the same numbers, so the table an
operator reads and the alert that pages them cannot drift apart.

From the guide (システム監視): api_response_time target < 100 ms, warning > 200 ms, critical
> 500 ms; error_rate target < 0.1 %, warning > 1 %, critical > 5 %; availability target > 99.9 %,
warning < 99.5 %, critical < 99 %; DynamoDB throttling target 0, any throttle alerts.  Snapshot
staleness, change-feed lag and capacity are vexil's own, derived from the guide's RPO (5 min) and
from its capacity example (60 % utilisation is normal; DynamoDB auto scaling aims at 70 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import auto

from vexil.model import NamedEnum


class Level(NamedEnum):
    """How a value compares with its thresholds, best first."""

    OK = auto()
    """Meets the target."""
    NOTE = auto()
    """Misses the target but has not reached the warning threshold."""
    WARN = auto()
    """Past the warning threshold: look into it soon (`vexil ops check` says WARN)."""
    CRIT = auto()
    """Past the critical threshold: act now (`vexil ops check` says FAIL)."""
    UNKNOWN = auto()
    """No value to judge (no traffic yet, metric not exported)."""


@dataclass(frozen=True, slots=True)
class Indicator:
    """One health indicator.  `worse` is "above" when larger values are worse, else "below"."""

    name: str
    title: str
    unit: str
    target: float
    warning: float | None
    critical: float | None
    worse: str = "above"

    def judge(self, value: float | None) -> Level:
        if value is None:
            return Level.UNKNOWN
        if self.critical is not None and self.beyond(value, self.critical):
            return Level.CRIT
        if self.warning is not None and self.beyond(value, self.warning):
            return Level.WARN
        return Level.NOTE if self.beyond(value, self.target) else Level.OK

    def beyond(self, value: float, limit: float) -> bool:
        """True when `value` is on the bad side of `limit`."""
        return value > limit if self.worse == "above" else value < limit


LATENCY_P99 = Indicator("api_response_time", "API response time (p99)", "s", 0.100, 0.200, 0.500)
ERROR_RATE = Indicator("error_rate", "Error rate (server errors)", "ratio", 0.001, 0.01, 0.05)
AVAILABILITY = Indicator("availability", "Availability", "ratio", 0.999, 0.995, 0.99, worse="below")
DYNAMODB_THROTTLES = Indicator("dynamodb_throttles", "DynamoDB throttled requests", "count", 0, 0, None)
SNAPSHOT_AGE = Indicator("snapshot_age", "Snapshot staleness (oldest environment)", "s", 5.0, 60.0, 300.0)
FEED_LAG_P99 = Indicator("change_feed_lag", "Change-feed lag (p99)", "s", 2.0, 5.0, 30.0)
CAPACITY = Indicator("capacity", "Capacity utilisation (highest)", "ratio", 0.6, 0.7, 0.9)

INDICATORS = (
    LATENCY_P99,
    ERROR_RATE,
    AVAILABILITY,
    DYNAMODB_THROTTLES,
    SNAPSHOT_AGE,
    FEED_LAG_P99,
    CAPACITY,
)

EVALUATION_PROTOCOLS = frozenset({"vexil", "flagd", "ofrep"})
"""The `protocol` labels under which evaluations are served (the response-time target's)."""
NOT_EVALUATION_SERVICES = ("AdminService", "KeyService", "ReplicaService")
"""The `vexil.v1` services that share the `vexil` protocol label but evaluate nothing: flag and
key writes wait for DynamoDB, pokes are replicas talking.  Their latency is not the response
time the guide sets a target for, so the latency alerts (`ops/vexil-alerts.yml`, whose regex a
test holds to this tuple), `vexil status` and the CloudWatch publisher all leave them out."""
NOT_EVALUATION_PREFIXES = tuple(f"vexil.v1.{service}/" for service in NOT_EVALUATION_SERVICES)
NOT_EVALUATION_REGEX = "vexil[.]v1[.](" + "|".join(NOT_EVALUATION_SERVICES) + ")/.*"
"""`NOT_EVALUATION_SERVICES` as the `method!~` matcher of the alert rules."""


def is_evaluation(protocol: str, method: str) -> bool:
    """Whether a call (its `protocol` and `method` labels) is in the response-time target's
    population: an evaluation protocol, and none of the services that evaluate nothing."""
    return protocol in EVALUATION_PROTOCOLS and not method.startswith(NOT_EVALUATION_PREFIXES)


LATENCY_ALERT_FOR = "2m"
ERROR_RATE_ALERT_FOR = "3m"
THROTTLE_ALERT_FOR = "1m"

RTO_SECONDS = 15 * 60
"""Recovery Time Objective (災害復旧手順: rto "15 minutes")."""
RPO_SECONDS = 5 * 60
"""Recovery Point Objective (rpo "5 minutes")."""

BACKUP_MAX_AGE_SECONDS = 24 * 3600
"""The daily check wants a backup (or PITR) no older than this."""
DR_DRILL_MAX_AGE_DAYS = 31
"""The monthly checklist's DR test: a drill within the last month."""
KEY_EXPIRY_WARNING_DAYS = 14
"""Keys expire after 90 days (security guide); warn two weeks ahead so rotation is planned."""
STALE_FLAG_DAYS = 90
"""A flag not changed for this long is a clean-up candidate (stale flags)."""
