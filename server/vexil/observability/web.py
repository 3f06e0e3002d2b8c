"""The HTTP side's part: `/metrics`, and request metrics for every HTTP route (OFREP included).

The middleware is put first (outermost), so it sees the response the caller gets, including the
401/403/429 answers of the security layer, which sits inside it.  Method labels are route
templates (`POST /ofrep/v1/evaluate/flags/{key}`), never raw paths, so unknown URLs cannot grow
the label set: they are all `(unmatched)`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from vexil.http import ofrep
from vexil.observability.evaluations import resolution_observer
from vexil.observability.stats import CallStats, RequestStats

if TYPE_CHECKING:
    from vexil.http import HttpServer
    from vexil.observability.metrics import Metrics

METRICS_PATH = "/metrics"
UNMATCHED = "(unmatched)"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def request_middleware(requests: RequestStats) -> Middleware:
    """Latency, status and in-flight count of every HTTP request, labelled by route template."""
    by_route: dict[object, CallStats] = {}
    in_flight = {protocol: requests.in_flight(protocol) for protocol in ("ofrep", "http")}
    unmatched = requests.call("http", UNMATCHED)
    clock = time.perf_counter

    def stats_for(request: web.Request) -> CallStats:
        route = request.match_info.route
        stats = by_route.get(route)
        if stats is None:
            resource = route.resource
            if resource is None:
                return unmatched
            path = resource.canonical
            protocol = "ofrep" if path.startswith("/ofrep/") else "http"
            stats = by_route[route] = requests.call(protocol, f"{route.method} {path}")
        return stats

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        stats = stats_for(request)
        level = in_flight[stats.protocol]
        level.value += 1
        started = clock()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            level.value -= 1
            stats.finished(clock() - started, _STATUS_TEXT.get(status) or str(status))

    return observe


_STATUS_TEXT = {status: str(status) for status in range(100, 600)}
"""Status codes as label values, made once (no formatting per request)."""


def instrument_http(server: HttpServer, metrics: Metrics) -> None:
    """Serve `/metrics`, measure every request and count OFREP evaluations (before `start`)."""
    server.add_routes([web.get(METRICS_PATH, metrics_handler(metrics.registry))])
    server.app.middlewares.insert(0, request_middleware(metrics.requests))
    server.app[ofrep.EVALUATED] = resolution_observer(metrics.evaluations)
