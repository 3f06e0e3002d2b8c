"""`make bench`'s CloudWatch row is judged from the results alone: met at or above 0.95x off,
missed below, not measured without the scenario; and the table prints the three servers."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import render, targets

ROW = "CloudWatch publisher on: Evaluate saturation throughput"


def spread(*rounds: float) -> dict[str, Any]:
    ordered = sorted(rounds)
    return {
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "rounds": list(rounds),
    }


def results(on_vs_off: float) -> dict[str, Any]:
    server = {"saturation_rps": spread(3000.0), "serial_p50_ms": spread(0.33), "failed": 0}
    return {
        "scenarios": {
            "cloudwatch": {
                "interval_seconds": 1.0,
                "published_requests": 30000.0,
                "servers": {"off": server, "on": server, "off2": server},
                "on_vs_off": {"saturation": spread(on_vs_off, 0.99, 1.01), "serial_p50": spread(1.02)},
                "off2_vs_off": {"saturation": spread(1.03, 0.97, 1.0), "serial_p50": spread(1.0)},
            }
        }
    }


def row(data: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in targets(data) if t["name"] == ROW)


@pytest.mark.parametrize(
    ("median", "met"),
    [(1.0, True), (0.95, True), (0.949, False), (0.83, False)],  # the rounds' median is `median`
)
def test_the_row_is_met_from_095x_off(median: float, met: bool) -> None:
    data = results(median)
    data["scenarios"]["cloudwatch"]["on_vs_off"]["saturation"] = spread(median, median, 1.0)
    found = row(data)
    assert found["value"] == median
    assert found["met"] is met
    assert "off vs off 1.00x [0.97-1.03]" in found["detail"]


def test_without_the_scenario_the_row_is_not_measured() -> None:
    assert row({"scenarios": {}})["met"] is None


def test_the_table_shows_each_server_and_its_ratio_to_off() -> None:
    table = render({**results(0.9), "targets": targets(results(0.9))})
    assert "30,000 Requests arrived" in table
    assert "0.99x [0.90-1.01], 1.02x" in table  # on vs off: saturation, serial p50
    assert "1.00x [0.97-1.03], 1.00x" in table  # off2 vs off
    assert f"[MISSED] {ROW} >= 0.95x off: 0.99" not in table  # the median, not the first round
    assert f"[met   ] {ROW} >= 0.95x off: 0.99" in table
