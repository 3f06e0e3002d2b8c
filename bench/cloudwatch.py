"""Evaluate with the CloudWatch publisher on against the same server with it off, in one run.

Three vexil processes hold the same 100 flags (memory store, one process each): `on` publishes to
the emulator's CloudWatch every `MIN_INTERVAL_S` (the most often the publisher can run, so the
most it can cost), `off` and `off2` do not publish.  The ratio of the two identical off servers is
the noise "unchanged within noise" has to be read against.

The three are measured like the `evaluate` scenario (`evaluate.interleaved`: short slices taken in
turn, each with its own warm-up), the static flag, saturation then serial; the turn order is
reversed every round so no server always follows the same one.  Ratios are taken within a round
and reported as the median over rounds with their range: `on` against the mean of the two off
servers (two identical processes differ by several per cent for the whole run, so one of them
alone is a biased reference), and `off2` against `off`, the noise.

The load starts once the emulator holds the `on` server's first interval (its steady state: the
one-off cost of the first PutMetricData is not what every evaluation pays), and after it the
emulator must hold more: proof that the publisher was publishing while it was measured (a silent
publisher costs nothing).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3

from bench.evaluate import Durations, Endpoint, checked_target, interleaved, spread
from bench.load import Loader, Run, Target
from tests.support.dynamo import REGION
from vexil.observability.cloudwatch import MIN_INTERVAL_S

NAMESPACE = "Vexil/bench"
SERVERS = ("off", "on", "off2")
CASE = "static"
PUBLISHED_WAIT_S = MIN_INTERVAL_S + 10.0
"""The last interval's PutMetricData, on a loaded one-threaded emulator."""


def publisher_env(endpoint: str) -> dict[str, str]:
    """The `on` server's settings: the publisher at its shortest interval, pointed at the emulator."""
    return {
        "VEXIL_CLOUDWATCH_NAMESPACE": NAMESPACE,
        "VEXIL_CLOUDWATCH_INTERVAL": f"{MIN_INTERVAL_S:g}",
        "VEXIL_CLOUDWATCH_REGION": REGION,
        "VEXIL_CLOUDWATCH_ENDPOINT": endpoint,
    }


def published_requests(endpoint: str, since: float) -> float:
    """Requests the emulator's CloudWatch holds for the namespace since `since` (epoch seconds)."""
    client = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    try:
        points = client.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="Requests",
            StartTime=since - 60,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
    finally:
        client.close()
    return float(sum(p["Sum"] for p in points))


def wait_published(endpoint: str, since: float, above: float) -> float:
    """The published Requests once they exceed `above`; an error after `PUBLISHED_WAIT_S`."""
    deadline = time.monotonic() + PUBLISHED_WAIT_S
    while (published := published_requests(endpoint, since)) <= above:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the publisher sent no new Requests to {NAMESPACE} within {PUBLISHED_WAIT_S:g} s "
                f"({published:,.0f} there)"
            )
        time.sleep(0.25)
    return published


def run(
    loader: Loader,
    servers: dict[str, Endpoint],
    endpoint: str,
    d: Durations,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """`servers`: "off", "on", "off2" -> endpoint; `endpoint`: the emulator's (CloudWatch)."""
    began = time.time()
    targets: dict[str, Target] = {name: checked_target(servers[name], CASE) for name in SERVERS}
    # Its first interval published (the one-off cost of the client's first call is behind it).
    before = wait_published(endpoint, began, above=0.0)
    rounds: list[dict[str, dict[str, Run]]] = []
    for r in range(d.rounds):
        order = SERVERS if r % 2 == 0 else tuple(reversed(SERVERS))
        keyed = {(name, "vexil", CASE): targets[name] for name in order}
        saturation = interleaved(loader, keyed, "saturation", d, {})
        serial = interleaved(loader, keyed, "serial", d, {})
        rounds.append({key[0]: {"saturation": saturation[key], "serial": serial[key]} for key in keyed})
        say(
            f"round {r + 1}/{d.rounds} "
            + "  ".join(
                f"{name} {rounds[-1][name]['saturation'].rps:,.0f} req/s p50 "
                f"{rounds[-1][name]['serial'].p50_ms:.3f} ms"
                for name in SERVERS
            )
        )
    after = wait_published(endpoint, began, above=before)
    say(f"  the emulator holds {after - before:,.0f} more Requests, published by `on` during the load")

    def figure(rnd: dict[str, dict[str, Run]], names: tuple[str, ...], what: str) -> float:
        """The mean over `names` of a round's throughput, server CPU per call (both under
        saturation) or p50 (serial)."""
        pick: dict[str, Callable[[dict[str, Run]], float]] = {
            "saturation": lambda runs: runs["saturation"].rps,
            "cpu": lambda runs: runs["saturation"].cpu_us_per_request or math.nan,
            "serial": lambda runs: runs["serial"].p50_ms,
        }
        return statistics.fmean(pick[what](rnd[n]) for n in names)

    def ratios(of: str, *to: str) -> dict[str, Any]:
        return {
            "saturation": spread(
                [figure(r, (of,), "saturation") / figure(r, to, "saturation") for r in rounds]
            ),
            "serial_p50": spread([figure(r, (of,), "serial") / figure(r, to, "serial") for r in rounds]),
            "cpu_per_request": spread([figure(r, (of,), "cpu") / figure(r, to, "cpu") for r in rounds]),
        }

    return {
        "interval_seconds": MIN_INTERVAL_S,
        "published_requests": after - before,
        "servers": {
            name: {
                "saturation_rps": spread([rnd[name]["saturation"].rps for rnd in rounds]),
                "serial_p50_ms": spread([rnd[name]["serial"].p50_ms for rnd in rounds]),
                "failed": sum(rnd[name][m].failed for rnd in rounds for m in rnd[name]),
            }
            for name in SERVERS
        },
        "on_vs_off": ratios("on", "off", "off2"),
        "off2_vs_off": ratios("off2", "off"),
    }
