"""Capacity and cost checks judge averages over the server's uptime: with minutes of history they
say so instead of extrapolating a month (or a utilisation) from them (unit tests of the checks)."""

from __future__ import annotations

from vexil.ops import checks
from vexil.ops.scrape import Scrape

NOW = 1_800_000_000.0


def scrape(uptime: float, read_units: float) -> Scrape:
    return Scrape.parse(
        f"""\
# TYPE process_start_time_seconds gauge
process_start_time_seconds {NOW - uptime}
# TYPE vexil_dynamodb_consumed_capacity_units_total counter
vexil_dynamodb_consumed_capacity_units_total{{operation="Query",kind="read"}} {read_units}
# TYPE vexil_snapshot_flags gauge
vexil_snapshot_flags{{environment="prod"}} 1
# TYPE vexil_snapshot_flags_limit gauge
vexil_snapshot_flags_limit{{environment="prod"}} 10000
"""
    )


PROVISIONED = {"table": "t", "billing": "PROVISIONED", "readCapacity": 1, "writeCapacity": 1}


def inputs(uptime: float, read_units: float) -> checks.Inputs:
    return checks.Inputs(
        now=NOW, scrape=scrape(uptime, read_units), table=dict(PROVISIONED), store="dynamodb"
    )


def test_cost_does_not_extrapolate_a_month_from_minutes() -> None:
    result = checks.cost(inputs(uptime=600, read_units=600))
    text = " ".join(result.details)
    assert "about" not in text, text  # no "about N a month"
    assert "too little history" in text and "600" in text


def test_cost_estimates_a_month_from_enough_history() -> None:
    # 600 units in 2 days: 300 a day, 9,000 in a 30-day month.
    result = checks.cost(inputs(uptime=2 * 86400, read_units=600))
    assert any("about 9,000 a month" in d for d in result.details), result.details


def test_capacity_says_when_history_is_too_short_to_judge_utilisation() -> None:
    # 600 read units in 10 minutes would be 100 % of 1 provisioned unit: not judged from 10 minutes.
    result = checks.capacity(inputs(uptime=600, read_units=600))
    text = " ".join(result.details)
    assert "too little history" in text, text
    assert result.status is checks.Status.PASS, result


def test_capacity_judges_utilisation_over_enough_history() -> None:
    # 2 days at a steady 1 unit/s against 1 provisioned unit: 100 %, critical.
    result = checks.capacity(inputs(uptime=2 * 86400, read_units=2 * 86400))
    assert any("read capacity: 100% of provisioned" in d for d in result.details), result.details
    assert result.status is checks.Status.FAIL
