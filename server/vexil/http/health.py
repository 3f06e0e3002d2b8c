"""`/healthz` (the process answers) and `/readyz` (flags are loaded and it is not shutting down).

Readiness stays 200 while the store is unreachable: the last snapshots keep serving, which is
the point of them, so a store outage must not take every replica out of its load balancer.  The
body says so (`degraded`) and shows each environment's staleness from `SnapshotCache.status`.
That detail names every environment: outside the local profile only callers with credentials for
every environment see it (`HttpServer` marks the request), others get just ready / not ready.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from vexil.cache import SnapshotCache
from vexil.errors import VexilError
from vexil.http.errors import json_response


class Readiness:
    """What /readyz reports; `draining` turns on when the server starts shutting down."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.cache = cache
        self.draining = False

    def report(self) -> tuple[bool, dict[str, Any]]:
        environments: list[dict[str, Any]] = []
        for name in self.cache.environments:
            try:
                environments.append({**asdict(self.cache.status(name)), "loaded": True})
            except VexilError:
                environments.append({"environment": name, "loaded": False})
        loaded = all(env["loaded"] for env in environments)
        if self.draining:
            state = "draining"
        elif not loaded:
            state = "loading"
        elif not all(env["healthy"] for env in environments):
            state = "degraded"
        else:
            state = "ready"
        return loaded and not self.draining, {"status": state, "environments": environments}


READINESS: web.AppKey[Readiness] = web.AppKey("readiness", Readiness)
DETAIL: web.RequestKey[bool] = web.RequestKey("readyz_detail", bool)
"""Request key: False when the caller may not see the detail (which names every environment);
unset means it may (the local profile, or credentials that cover every environment)."""


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready, body = request.app[READINESS].report()
    if not request.get(DETAIL, True):
        body = {"status": "ready" if ready else "not ready"}
    return json_response(body, status=200 if ready else 503)


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
