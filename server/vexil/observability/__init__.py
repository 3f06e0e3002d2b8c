"""Metrics for operators: a per-process Prometheus registry, the gRPC interceptor and HTTP hooks.

`Metrics` (one per `App`) lists every metric and its labels; `MetricsInterceptor` and
`instrument_http` feed it from the two transports; `protocol_of` gives the `protocol` label for a
gRPC method, for code outside this package that counts per protocol (the security interceptors).
The thresholds the alert rules and `vexil status` apply are in `thresholds`.

Names load on first use, so the CLI can read `thresholds` without loading the server side
(gRPC, aiohttp, prometheus-client).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vexil.observability.interceptor import MetricsInterceptor, protocol_of
    from vexil.observability.metrics import Metrics
    from vexil.observability.web import METRICS_PATH, instrument_http

__all__ = ["METRICS_PATH", "Metrics", "MetricsInterceptor", "instrument_http", "protocol_of"]

_HOMES = {
    "METRICS_PATH": "vexil.observability.web",
    "Metrics": "vexil.observability.metrics",
    "MetricsInterceptor": "vexil.observability.interceptor",
    "instrument_http": "vexil.observability.web",
    "protocol_of": "vexil.observability.interceptor",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
