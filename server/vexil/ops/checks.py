"""The operations guide's daily, weekly and monthly checklists as automated checks.

Each checklist item (運用チェックリスト) maps to one or more checks; a check is a pure function
of `Inputs` (what `vexil.ops.gather` collected from the server, its metrics, the table, its
backups and the key store) returning PASS, WARN or FAIL with a one-line summary and details.
Items a program cannot judge (cost review, security patches) return MANUAL with the data and
the command to look at, so they are visibly not PASS.  A check whose input could not be read
says so and WARNs or FAILs: none passes for lack of evidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import auto
from typing import TYPE_CHECKING, Any

from vexil.model import Flag, NamedEnum
from vexil.observability import thresholds as t
from vexil.observability.thresholds import Level
from vexil.ops.health import is_evaluation, readings
from vexil.ops.render import show
from vexil.ops.scrape import Scrape

if TYPE_CHECKING:
    from vexil.ops.backups import BackupInfo, PitrStatus
    from vexil.ops.keys import KeyView

DAY = 86400.0
MIN_UTILISATION_HISTORY = 3600.0
"""Uptime below which average consumed capacity says nothing about provisioned capacity."""
MIN_COST_HISTORY = DAY
"""Uptime below which a month's consumption is not extrapolated (a day's cycle at least)."""


class Status(NamedEnum):
    PASS = auto()
    """The item holds, by the evidence gathered."""
    WARN = auto()
    """The item needs a look soon, or its evidence could not be read."""
    FAIL = auto()
    """The item does not hold: act on it."""
    MANUAL = auto()
    """A person must judge it; the details say what to look at and how."""


@dataclass
class Result:
    check: str
    item: str
    """The checklist item of the operations guide this check automates."""
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "item": self.item,
            "status": str(self.status),
            "summary": self.summary,
            "details": self.details,
        }


@dataclass
class Inputs:
    """Everything the checks look at; None means "could not be read" (the matching error says why)."""

    now: float = field(default_factory=time.time)
    status: dict[str, Any] | None = None
    scrape: Scrape | None = None
    flags: dict[str, list[Flag]] | None = None
    store: str = ""
    table: dict[str, Any] | None = None
    """`describe_table`'s report, for DynamoDB deployments."""
    backups: list[BackupInfo] | None = None
    pitr: PitrStatus | None = None
    exports: list[tuple[str, float]] | None = None
    """(file, createdAt) of valid export files in the backup directory, newest first."""
    keys: list[KeyView] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """Why an input is None: "status", "metrics", "flags", "table", "backups", "keys"."""
    stale_days: float = t.STALE_FLAG_DAYS
    backup_max_age: float = t.BACKUP_MAX_AGE_SECONDS
    key_warning_days: float = t.KEY_EXPIRY_WARNING_DAYS

    def missing(self, name: str) -> str:
        return self.errors.get(name, f"{name} not collected")


Check = Callable[[Inputs], Result]


def _level_status(level: Level) -> Status:
    return {Level.CRIT: Status.FAIL, Level.WARN: Status.WARN}.get(level, Status.PASS)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.0f} days"


# --- daily --------------------------------------------------------------------------------------


def health(i: Inputs) -> Result:
    item = "システムヘルス監視 (system health)"
    if i.status is None:
        return Result("health", item, Status.FAIL, f"server unreachable: {i.missing('status')}")
    state = i.status.get("state", "")
    details = [
        f"{e.get('name')}: config_version {e.get('config_version', 0)}, {e.get('flags', 0)} flags,"
        f" stale {float(e.get('staleness_seconds', 0)):.1f} s"
        + ("" if e.get("healthy") else f", {e.get('last_error')}")
        for e in i.status.get("environments", [])
    ]
    if state == "STATE_SERVING":
        return Result("health", item, Status.PASS, "SERVING", details)
    if state in ("STATE_DEGRADED", "STATE_LOADING"):
        return Result("health", item, Status.WARN, state.removeprefix("STATE_"), details)
    return Result("health", item, Status.FAIL, f"state {state or 'unknown'}", details)


def error_rate(i: Inputs) -> Result:
    item = "エラーログ確認 (error logs)"
    if i.scrape is None:
        return Result("error-rate", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    reading = next(r for r in readings(i.scrape, i.store) if r.indicator is t.ERROR_RATE)
    errors: dict[str, float] = {}
    for s in i.scrape.series("vexil_requests_total", lambda labels: labels.get("outcome") == "server_error"):
        if s.value:
            key = f"{s.labels.get('method')} {s.labels.get('code')}"
            errors[key] = errors.get(key, 0) + s.value
    details = [f"{count:.0f} x {what}" for what, count in sorted(errors.items(), key=lambda kv: -kv[1])]
    if reading.value is None:
        return Result("error-rate", item, Status.PASS, "no requests since start", details)
    summary = f"{reading.value:.2%} server errors ({reading.detail}); warn > 1 %, fail > 5 %"
    return Result("error-rate", item, _level_status(reading.level), summary, details)


def performance(i: Inputs) -> Result:
    item = "パフォーマンスメトリクス確認 (performance metrics)"
    if i.scrape is None:
        return Result("performance", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    wanted = (t.LATENCY_P99, t.SNAPSHOT_AGE, t.FEED_LAG_P99)
    found = [r for r in readings(i.scrape, i.store) if r.indicator in wanted]
    details = [
        f"{r.indicator.title}: {show(r.value, r.indicator.unit)} [{r.level}] {r.detail}".rstrip()
        for r in found
    ]
    worst = max((_level_status(r.level) for r in found), key=list(Status).index, default=Status.PASS)
    latency = next(r for r in found if r.indicator is t.LATENCY_P99)
    summary = f"p99 {show(latency.value, 's')} (target < 100 ms, warn > 200 ms, fail > 500 ms)"
    return Result("performance", item, worst, summary, details)


def security_alerts(i: Inputs) -> Result:
    """Refused credentials and rate limiting, as the security layer reports them (every call its
    interceptors refuse is counted through `App._count_rejection`)."""
    item = "セキュリティアラート確認 (security alerts)"
    if i.scrape is None:
        return Result("security-alerts", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    total = i.scrape.sum("vexil_requests_total")
    refused = i.scrape.sum("vexil_auth_failures_total")
    limited = i.scrape.sum("vexil_rate_limited_total")
    details = [
        f"auth failures ({s.labels.get('reason')}, {s.labels.get('protocol')}): {s.value:.0f}"
        for s in i.scrape.series("vexil_auth_failures_total")
        if s.value
    ] + [
        f"rate limited ({s.labels.get('scope')}, {s.labels.get('protocol')}): {s.value:.0f}"
        for s in i.scrape.series("vexil_rate_limited_total")
        if s.value
    ]
    share = refused / (total + refused) if total + refused else 0.0
    summary = f"{refused:.0f} auth failures ({share:.2%} of requests), {limited:.0f} rate-limited"
    return Result("security-alerts", item, Status.WARN if share > 0.01 else Status.PASS, summary, details)


def api_keys(i: Inputs) -> Result:
    item = "セキュリティアラート確認 (API keys: expired / expiring)"
    if i.keys is None:
        return Result("keys", item, Status.WARN, f"API keys not checked: {i.missing('keys')}")
    live = [k for k in i.keys if not k.revoked]
    expired = [k for k in live if k.expired(i.now)]
    soon = [
        k
        for k in live
        if not k.expired(i.now) and k.expires_at and k.expires_at - i.now < i.key_warning_days * DAY
    ]
    details = [
        f"EXPIRED {k.id} ({k.role}, {k.environment}) {_age(i.now - k.expires_at)} ago" for k in expired
    ]
    details += [f"expires {k.id} ({k.role}, {k.environment}) in {_age(k.expires_at - i.now)}" for k in soon]
    within = f"{i.key_warning_days:.0f} days"
    summary = f"{len(live)} active keys, {len(expired)} expired, {len(soon)} expire within {within}"
    if expired:
        return Result("keys", item, Status.FAIL, summary + ": revoke or rotate them", details)
    return Result("keys", item, Status.WARN if soon else Status.PASS, summary, details)


def stale_flags(i: Inputs) -> Result:
    item = "(vexil) stale flags: clean-up candidates"
    if i.flags is None:
        return Result("stale-flags", item, Status.WARN, f"flags not checked: {i.missing('flags')}")
    cutoff = i.now - i.stale_days * DAY
    stale = [(env, f) for env, flags in sorted(i.flags.items()) for f in flags if _changed_at(f) < cutoff]
    details = [
        f"{env}/{f.key} (owner {f.owner or '-'}): unchanged for {_age(i.now - _changed_at(f))}"
        for env, f in stale
    ]
    count = sum(len(flags) for flags in i.flags.values())
    summary = f"{len(stale)} of {count} flags unchanged for over {i.stale_days:g} days"
    return Result("stale-flags", item, Status.WARN if stale else Status.PASS, summary, details)


def _changed_at(flag: Flag) -> float:
    return flag.updated_at or flag.created_at


def recent_backup(i: Inputs) -> Result:
    """Daily: data from the last `backup_max_age` can be recovered (a backup, an export or PITR)."""
    item = "(vexil) バックアップ確認 daily: a backup within 24 h"
    return _backup_result("backups", item, i, i.backup_max_age)


def _backup_result(name: str, item: str, i: Inputs, max_age: float) -> Result:
    evidence: list[tuple[str, float]] = []
    details: list[str] = []
    if i.backups:
        ready = [b for b in i.backups if b.status == "AVAILABLE"]
        if ready:
            evidence.append((f"backup {ready[0].name}", ready[0].created_at))
    if i.exports:
        evidence.append((f"export {i.exports[0][0]}", i.exports[0][1]))
    pitr_ok = bool(i.pitr and i.pitr.enabled and i.pitr.latest and i.now - i.pitr.latest <= t.RPO_SECONDS * 2)
    if i.pitr is not None:
        details.append("point-in-time recovery " + ("ENABLED" if i.pitr.enabled else "DISABLED"))
    for what in ("backups", "exports"):
        if what in i.errors:
            details.append(f"{what}: {i.errors[what]}")
    if i.backups is None and i.exports is None and i.pitr is None:
        return Result(
            name,
            item,
            Status.FAIL,
            "no backup source to check (pass --env or --table, or --backup-dir)",
            details,
        )
    newest = max(evidence, key=lambda e: e[1], default=None)
    if newest is not None:
        details.insert(0, f"newest: {newest[0]}, {_age(i.now - newest[1])} old")
    if newest is not None and i.now - newest[1] <= max_age:
        return Result(name, item, Status.PASS, f"{newest[0]} is {_age(i.now - newest[1])} old", details)
    if pitr_ok:
        return Result(name, item, Status.PASS, "point-in-time recovery is enabled and current", details)
    summary = f"no backup in the last {_age(max_age)}" + (
        f" (newest is {_age(i.now - newest[1])} old)" if newest else ""
    )
    return Result(name, item, Status.FAIL, summary + ": run vexil backup create (or export)", details)


# --- weekly -------------------------------------------------------------------------------------


def capacity(i: Inputs) -> Result:
    item = "キャパシティ使用率確認 (capacity utilisation)"
    if i.scrape is None:
        return Result("capacity", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    reading = next(r for r in readings(i.scrape, i.store) if r.indicator is t.CAPACITY)
    status = _level_status(reading.level)
    details = [f"flags: {reading.detail}"] if reading.detail else []
    throttles = i.scrape.sum("vexil_dynamodb_throttles_total")
    if throttles:
        details.append(f"DynamoDB throttled {throttles:.0f} attempts since start")
        status = max(status, Status.WARN, key=list(Status).index)
    utilisation = _dynamodb_utilisation(i)
    uptime = _uptime(i)
    if utilisation and uptime < MIN_UTILISATION_HISTORY:
        details.append(
            f"DynamoDB capacity not judged: too little history ({_age(uptime)} since the server started,"
            f" needs {_age(MIN_UTILISATION_HISTORY)})"
        )
        utilisation = {}
    for kind, used in utilisation.items():
        level = t.CAPACITY.judge(used)
        details.append(f"DynamoDB {kind} capacity: {used:.0%} of provisioned [{level}]")
        status = max(status, _level_status(level), key=list(Status).index)
    if i.table is not None and not utilisation:
        details.append(f"DynamoDB billing {i.table.get('billing')}: capacity follows demand")
    shown = f"{reading.value:.0%} of the flag limit" if reading.value is not None else "no environment loaded"
    return Result("capacity", item, status, shown, details)


def _label_is(name: str, value: str) -> Callable[[Mapping[str, str]], bool]:
    """A series filter: the label `name` is `value`."""
    return lambda labels: labels.get(name) == value


def _uptime(i: Inputs) -> float:
    """Seconds the scraped server has been up (0 when unknown): the history its counters hold."""
    started = i.scrape.max("process_start_time_seconds") if i.scrape is not None else None
    return i.now - started if started else 0.0


def _dynamodb_utilisation(i: Inputs) -> dict[str, float]:
    """Average consumed / provisioned capacity since the server started (provisioned tables)."""
    if i.scrape is None or i.table is None or i.table.get("billing") != "PROVISIONED":
        return {}
    uptime = _uptime(i)
    if uptime <= 0:
        return {}
    out = {}
    for kind, provisioned in (("read", i.table.get("readCapacity")), ("write", i.table.get("writeCapacity"))):
        used = i.scrape.sum("vexil_dynamodb_consumed_capacity_units_total", _label_is("kind", kind))
        if provisioned:
            out[kind] = used / uptime / float(provisioned)
    return out


def weekly_backups(i: Inputs) -> Result:
    item = "バックアップ確認 (backups)"
    result = _backup_result("backups", item, i, 7 * DAY)
    if result.status is Status.PASS and i.pitr is not None and not i.pitr.enabled:
        result.status = Status.WARN
        result.summary += (
            "; point-in-time recovery is DISABLED (RPO 5 min needs it: vexil backup pitr enable)"
        )
    return result


def access_logs(i: Inputs) -> Result:
    item = "アクセスログ分析 (access log analysis)"
    if i.scrape is None:
        return Result("access-logs", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    by_protocol: dict[str, float] = {}
    by_code: dict[str, float] = {}
    for s in i.scrape.series("vexil_requests_total"):
        by_protocol[s.labels.get("protocol", "")] = by_protocol.get(s.labels.get("protocol", ""), 0) + s.value
        if s.labels.get("outcome") == "client_error":
            key = f"{s.labels.get('code')} {s.labels.get('method')}"
            by_code[key] = by_code.get(key, 0) + s.value
    total = sum(by_protocol.values())
    client_errors = sum(by_code.values())
    details = [f"{p}: {n:.0f} requests" for p, n in sorted(by_protocol.items(), key=lambda kv: -kv[1])]
    details += [f"client error {k}: {n:.0f}" for k, n in sorted(by_code.items(), key=lambda kv: -kv[1])[:5]]
    evaluations = i.scrape.sum("vexil_request_duration_seconds_count", is_evaluation)
    share = client_errors / total if total else 0.0
    summary = f"{total:.0f} requests ({evaluations:.0f} evaluations), {share:.1%} client errors"
    return Result("access-logs", item, Status.WARN if share > 0.05 else Status.PASS, summary, details)


def security_patches(i: Inputs) -> Result:
    import platform

    from vexil import __version__

    return Result(
        "security-patches",
        "セキュリティパッチ確認 (security patches)",
        Status.MANUAL,
        f"vexil {__version__} on Python {platform.python_version()}: review updates",
        ["pip list --outdated (in the server's environment)", "apt list --upgradable (on the hosts)"],
    )


# --- monthly ------------------------------------------------------------------------------------


def cost(i: Inputs) -> Result:
    details = []
    if i.scrape is not None:
        uptime = _uptime(i)
        for kind in ("read", "write"):
            used = i.scrape.sum("vexil_dynamodb_consumed_capacity_units_total", _label_is("kind", kind))
            if not used:
                continue
            if uptime >= MIN_COST_HISTORY:
                monthly = used / uptime * 30 * DAY
                details.append(f"{kind} capacity units: {used:.0f} since start, about {monthly:,.0f} a month")
            else:
                details.append(
                    f"{kind} capacity units: {used:.0f} in {_age(uptime)} since start; too little history"
                    f" to estimate a month (needs {_age(MIN_COST_HISTORY)})"
                )
    if i.table is not None:
        table = i.table
        details.append(
            f"table {table.get('table')}: {table.get('itemCount')} items, {table.get('sizeBytes')} bytes,"
            f" billing {table.get('billing')}"
        )
    return Result(
        "cost",
        "コスト分析・最適化 (cost analysis)",
        Status.MANUAL,
        "review the month's DynamoDB and compute spend (AWS Cost Explorer)",
        details,
    )


def security_audit(i: Inputs) -> Result:
    item = "セキュリティ監査 (security audit: key hygiene)"
    if i.keys is None:
        return Result("security-audit", item, Status.WARN, f"API keys not audited: {i.missing('keys')}")
    live = [k for k in i.keys if not k.revoked]
    problems = [f"{k.id}: never expires" for k in live if not k.expires_at]
    problems += [
        f"{k.id}: valid for {(k.expires_at - k.created_at) / DAY:.0f} days (policy: 90)"
        for k in live
        if k.expires_at and k.created_at and k.expires_at - k.created_at > 90 * DAY + 3600
    ]
    problems += [f"{k.id}: expired, not revoked" for k in live if k.expired(i.now)]
    wide = [k.id for k in live if k.environment == "*"]
    details = problems + ([f"keys valid in every environment: {', '.join(wide)}"] if wide else [])
    summary = f"{len(live)} active keys, {len(i.keys) - len(live)} revoked, {len(problems)} policy problems"
    return Result("security-audit", item, Status.WARN if problems else Status.PASS, summary, details)


def dr_test(i: Inputs) -> Result:
    item = "災害復旧テスト (disaster-recovery test)"
    if i.backups is None:
        why = i.missing("backups") if i.table is not None or "backups" in i.errors else "no DynamoDB table"
        return Result("dr-test", item, Status.WARN, f"cannot tell when the last drill ran: {why}")
    drills = [b for b in i.backups if "-drill-" in b.name]
    if not drills:
        return Result("dr-test", item, Status.FAIL, "no DR drill on record: run vexil dr drill")
    age = i.now - drills[0].created_at
    ok = age <= t.DR_DRILL_MAX_AGE_DAYS * DAY
    summary = f"last drill {_age(age)} ago ({drills[0].name})"
    return Result(
        "dr-test", item, Status.PASS if ok else Status.FAIL, summary + ("" if ok else ": run vexil dr drill")
    )


def capacity_planning(i: Inputs) -> Result:
    item = "容量計画見直し (capacity planning)"
    if i.scrape is None:
        return Result("capacity-planning", item, Status.FAIL, f"no metrics: {i.missing('metrics')}")
    flags = {s.labels.get("environment"): s.value for s in i.scrape.series("vexil_snapshot_flags")}
    limits = {s.labels.get("environment"): s.value for s in i.scrape.series("vexil_snapshot_flags_limit")}
    details = [f"{env}: {n:.0f} of {limits.get(env, 0):.0f} flags" for env, n in sorted(flags.items())]
    if i.table is not None:
        details.append(f"table: {i.table.get('itemCount')} items, {i.table.get('sizeBytes')} bytes")
    usage = max((n / limits[e] for e, n in flags.items() if limits.get(e)), default=0.0)
    status = Status.WARN if usage > t.CAPACITY.warning else Status.PASS  # type: ignore[operator]
    return Result(
        "capacity-planning", item, status, f"fullest environment at {usage:.0%} of its flag limit", details
    )


SCHEDULES: dict[str, tuple[Check, ...]] = {
    "daily": (health, error_rate, performance, security_alerts, api_keys, stale_flags, recent_backup),
    "weekly": (capacity, weekly_backups, access_logs, security_patches),
    "monthly": (cost, security_audit, dr_test, capacity_planning),
}


def run(schedule: str, inputs: Inputs) -> list[Result]:
    return [check(inputs) for check in SCHEDULES[schedule]]


def failed(results: list[Result]) -> bool:
    return any(r.status is Status.FAIL for r in results)
