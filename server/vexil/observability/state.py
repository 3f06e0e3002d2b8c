"""Gauges read from the snapshot cache and the hub when `/metrics` is scraped.

They are computed on demand (a collector, not gauges set by the feed) so that a stalled change
feed still shows a growing snapshot age: nothing has to run for the number to be right.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vexil.cache import SnapshotCache
from vexil.errors import VexilError


class CacheCollector(Collector):
    """Per environment: snapshot age, config version, flags held and their limit, store health,
    whether the store went backwards, loaded or not, and the hub's subscribers (Watch,
    EventStream and SyncFlags streams)."""

    def __init__(self, cache: SnapshotCache, max_flags: int) -> None:
        self.cache = cache
        self.max_flags = max_flags

    def collect(self) -> Iterator[GaugeMetricFamily]:
        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["environment"])

        age = gauge(
            "vexil_snapshot_age_seconds",
            "Seconds since the environment's snapshot was last confirmed against the store"
            " (about the poll interval while the change feed is healthy).",
        )
        version = gauge("vexil_config_version", "The config_version the environment's snapshot serves.")
        flags = gauge("vexil_snapshot_flags", "Flags in the environment's snapshot.")
        limit = gauge("vexil_snapshot_flags_limit", "Most flags one environment may hold (cache profile).")
        healthy = gauge(
            "vexil_store_healthy",
            "1 while the change feed reaches the store; 0 while serving the last snapshot (DEGRADED).",
        )
        regressed = gauge(
            "vexil_store_regressed",
            "1 while the store is behind the served snapshot (a lower config_version, or empty where"
            " flags were): the last-known-good snapshot serves until an operator adopts the store.",
        )
        loaded = gauge("vexil_environment_loaded", "1 once the environment's flags are loaded.")
        subscribers = gauge(
            "vexil_subscribers", "Streaming subscribers of the environment (Watch, EventStream, SyncFlags)."
        )
        for env in self.cache.environments:
            subscribers.add_metric([env], self.cache.hub.count(env))
            limit.add_metric([env], self.max_flags)
            try:
                status = self.cache.status(env)
            except VexilError:
                loaded.add_metric([env], 0)
                continue
            loaded.add_metric([env], 1)
            age.add_metric([env], status.staleness_seconds)
            version.add_metric([env], status.config_version)
            flags.add_metric([env], status.flags)
            healthy.add_metric([env], 1 if status.healthy else 0)
            regressed.add_metric([env], 1 if status.regressed else 0)
        yield from (age, version, flags, limit, healthy, regressed, loaded, subscribers)
