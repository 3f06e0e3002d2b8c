"""The shipped Prometheus rules: valid (`promtool check rules`), firing and staying quiet on the
synthetic series of `ops/vexil-alerts.test.yml` (`promtool test rules`), using the same numbers
as `vexil status`, and only metrics vexil actually exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.support.ops import metrics_text
from tests.support.servers import running_app, server_settings
from vexil.observability import thresholds as t

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "vexil-alerts.yml"
RULE_TESTS = OPS / "vexil-alerts.test.yml"


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, cwd=OPS)


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = promtool_run(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = promtool_run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def records() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"] if "record" in rule}


def threshold(rule: dict) -> float:
    found = re.search(r"[<>]\s*([0-9.]+)\s*$", rule["expr"].strip())
    assert found, rule["expr"]
    return float(found.group(1))


def test_thresholds_are_the_guides_and_the_status_commands() -> None:
    rules = alerts()
    expected = {
        "VexilHighLatency": (t.LATENCY_P99.warning, t.LATENCY_ALERT_FOR, "warning"),
        "VexilHighLatencyCritical": (t.LATENCY_P99.critical, t.LATENCY_ALERT_FOR, "critical"),
        "VexilHighErrorRate": (t.ERROR_RATE.warning, t.ERROR_RATE_ALERT_FOR, "warning"),
        "VexilHighErrorRateCritical": (t.ERROR_RATE.critical, t.ERROR_RATE_ALERT_FOR, "critical"),
        "VexilAvailabilityBelowTarget": (t.AVAILABILITY.target, "5m", "info"),
        "VexilAvailabilityLow": (t.AVAILABILITY.warning, "5m", "warning"),
        "VexilAvailabilityCritical": (t.AVAILABILITY.critical, "5m", "critical"),
        "VexilDynamoDBThrottling": (t.DYNAMODB_THROTTLES.warning, t.THROTTLE_ALERT_FOR, "warning"),
        "VexilChangeFeedLag": (t.FEED_LAG_P99.warning, "5m", "warning"),
        "VexilChangeFeedLagCritical": (t.FEED_LAG_P99.critical, "5m", "critical"),
        "VexilSnapshotStale": (t.SNAPSHOT_AGE.warning, "1m", "warning"),
        "VexilSnapshotStaleCritical": (t.SNAPSHOT_AGE.critical, "1m", "critical"),
    }
    for name, (value, duration, severity) in expected.items():
        rule = rules[name]
        assert threshold(rule) == value, name
        assert rule["for"] == duration, name
        assert rule["labels"]["severity"] == severity, name


def test_the_latency_rule_leaves_out_what_status_leaves_out() -> None:
    """One definition of the services that evaluate nothing (thresholds.py) for the rule, `vexil
    status` and CloudWatch; the promtool cases feed slow calls of each and expect no alert."""
    expr = records()["job_protocol:vexil_request_duration_seconds:p99_rate1m"]
    assert f'method!~"{t.NOT_EVALUATION_REGEX}"' in expr, expr
    cases = RULE_TESTS.read_text()
    for service in t.NOT_EVALUATION_SERVICES:
        assert f'method="vexil.v1.{service}/' in cases, service


def test_every_alert_has_a_unit_test() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert set(alerts()) <= tested


async def test_rules_only_use_metrics_vexil_exports() -> None:
    async with running_app(server_settings()) as app:
        text = await metrics_text(app)
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.MULTILINE))
    names = {name for name, _ in exported}
    histograms = {name for name, kind in exported if kind == "histogram"}
    names |= {f"{h}_bucket" for h in histograms} | {f"{h}_count" for h in histograms}
    expressions = [rule["expr"] for rule in alerts().values()] + list(records().values())
    used = {m for expr in expressions for m in re.findall(r"(?<![:\w])(vexil_[a-z_]+)(?![:\w])", expr)}
    assert used, "no vexil metric in the rules?"
    assert used <= names, used - names
