"""The operations guide's health table, computed from a server's GetStatus and `/metrics`.

Each indicator of `vexil.observability.thresholds` is read the way its alert rule reads it
(`ops/vexil-alerts.yml`): p99 evaluation latency without admin, key and replica calls, server
errors over all requests, and so on, over the scrape window (`Scrape.since`) or the process's
whole uptime.  The result is data (`HealthReport`); rendering it is the CLI's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vexil.observability import thresholds as t
from vexil.observability.thresholds import Indicator, Level
from vexil.ops.scrape import Labels, Scrape

LEVEL_ORDER = (Level.OK, Level.UNKNOWN, Level.NOTE, Level.WARN, Level.CRIT)
STATE_LEVELS = {"STATE_SERVING": Level.OK, "STATE_DEGRADED": Level.WARN, "STATE_LOADING": Level.WARN}


def is_evaluation(labels: Labels) -> bool:
    """An evaluation request: the latency target's population (`thresholds.is_evaluation`)."""
    return t.is_evaluation(labels.get("protocol", ""), labels.get("method", ""))


@dataclass
class Reading:
    indicator: Indicator
    value: float | None
    detail: str = ""

    @property
    def level(self) -> Level:
        return self.indicator.judge(self.value)

    def as_dict(self) -> dict[str, Any]:
        i = self.indicator
        return {
            "indicator": i.name,
            "title": i.title,
            "unit": i.unit,
            "target": i.target,
            "warning": i.warning,
            "critical": i.critical,
            "worse": i.worse,
            "value": self.value,
            "level": str(self.level),
            "detail": self.detail,
        }


@dataclass
class HealthReport:
    state: str
    """GetStatus state (STATE_SERVING, ...) or UNREACHABLE."""
    readings: list[Reading]
    environments: list[dict[str, Any]] = field(default_factory=list)
    window: str = "since start"
    problems: list[str] = field(default_factory=list)
    insecure: list[str] = field(default_factory=list)
    """GetStatus's `insecure_reasons`: a server serving without TLS or authentication is a warning."""

    @property
    def state_level(self) -> Level:
        return STATE_LEVELS.get(self.state, Level.CRIT)

    @property
    def level(self) -> Level:
        if self.problems:
            return Level.CRIT
        insecure = [Level.WARN] if self.insecure else []
        return worst([self.state_level, *insecure, *(r.level for r in self.readings)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.removeprefix("STATE_"),  # the table's name: SERVING, DEGRADED
            "stateLevel": str(self.state_level),
            "level": str(self.level),
            "window": self.window,
            "indicators": [r.as_dict() for r in self.readings],
            "environments": self.environments,
            "problems": self.problems,
            "insecure": self.insecure,
        }


def worst(levels: list[Level]) -> Level:
    return max(levels, key=LEVEL_ORDER.index, default=Level.OK)


def readings(scrape: Scrape, store: str = "") -> list[Reading]:
    """Every indicator's current value from one scrape (or the increase between two)."""
    total = scrape.sum("vexil_requests_total")
    failed = scrape.sum("vexil_requests_total", lambda labels: labels.get("outcome") == "server_error")
    traffic = f"{total:.0f} requests, {failed:.0f} server errors"
    error_rate = failed / total if total else None
    evaluations = scrape.sum("vexil_request_duration_seconds_count", is_evaluation)
    ages = scrape.series("vexil_snapshot_age_seconds")
    oldest = max(ages, key=lambda s: s.value, default=None)
    flags = {s.labels.get("environment"): s.value for s in scrape.series("vexil_snapshot_flags")}
    limits = {s.labels.get("environment"): s.value for s in scrape.series("vexil_snapshot_flags_limit")}
    usage = {env: flags[env] / limits[env] for env in flags if limits.get(env)}
    fullest = max(usage, key=lambda env: usage[env], default=None)
    throttles = scrape.sum("vexil_dynamodb_throttles_total")
    lag_count = scrape.sum("vexil_change_feed_lag_seconds_count")
    return [
        Reading(
            t.LATENCY_P99,
            scrape.quantile(0.99, "vexil_request_duration_seconds", is_evaluation),
            f"{evaluations:.0f} evaluation requests" if evaluations else "no evaluation requests yet",
        ),
        Reading(t.ERROR_RATE, error_rate, traffic),
        Reading(t.AVAILABILITY, None if error_rate is None else 1.0 - error_rate, traffic),
        Reading(
            t.DYNAMODB_THROTTLES,
            throttles,
            "" if store != "memory" else "memory store: no DynamoDB calls",
        ),
        Reading(
            t.SNAPSHOT_AGE,
            oldest.value if oldest else None,
            f"environment {oldest.labels.get('environment')}" if oldest else "no environment loaded",
        ),
        Reading(
            t.FEED_LAG_P99,
            scrape.quantile(0.99, "vexil_change_feed_lag_seconds"),
            f"{lag_count:.0f} changes applied" if lag_count else "no changes applied yet",
        ),
        Reading(
            t.CAPACITY,
            usage[fullest] if fullest else None,
            f"{fullest}: {flags[fullest]:.0f} of {limits[fullest]:.0f} flags" if fullest else "",
        ),
    ]


def report(status: dict[str, Any] | None, scrape: Scrape | None, window: str = "since start") -> HealthReport:
    """The health table for a server; `status` is GetStatus as a dict (None: unreachable)."""
    problems = []
    if status is None:
        problems.append("GetStatus failed: the gRPC port does not answer")
    if scrape is None:
        problems.append("/metrics could not be read: the HTTP port does not answer")
    state = status.get("state", "STATE_UNSPECIFIED") if status is not None else "UNREACHABLE"
    found = readings(scrape, (status or {}).get("store", "")) if scrape is not None else []
    envs = list((status or {}).get("environments", []))
    insecure = list((status or {}).get("insecure_reasons", []))
    return HealthReport(
        state=state, readings=found, environments=envs, window=window, problems=problems, insecure=insecure
    )
