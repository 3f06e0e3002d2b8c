"""The web console: flags, history, changes, kill switches, health and keys in a browser.

Served by vexil itself on the HTTP port under `/ui` (`/` redirects there), as plain HTML, CSS
and ES modules written by hand and shipped as package data: nothing to build, nothing fetched
from elsewhere, so it works offline with what the project installs.  The page talks to JSON
endpoints under `/ui/api/` that call the same core and follow the same role policy as the admin
API (`access`), with sessions in a cookie (`session`, `signin`), live updates from the hub
(`events`) and labels in English and Japanese (`i18n`).
"""

from __future__ import annotations

from collections import Counter
from importlib import resources

from aiohttp import web
from prometheus_client import CollectorRegistry

from vexil.fleet import Fleet
from vexil.security.layer import SecurityLayer
from vexil.service import FlagService

from . import api, events, i18n, operations, signin
from .access import CONSOLE, Console
from .session import Sessions

STATIC = resources.files(__package__) / "static"
PAGE_HEADERS = {
    # Only this origin's own files; no framing (clickjacking), no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {"app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}
"""Every file the page loads (a fixed table: nothing else under /ui/static/ answers)."""


FILES: web.AppKey[dict[str, bytes]] = web.AppKey("vexil_console_files", dict)
"""The page's files, read once when the console is installed (no file I/O per request)."""


async def index(request: web.Request) -> web.Response:
    body = request.app[FILES]["index.html"]
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound(text=f"no console file named {name[:64]!r}")
    return web.Response(body=request.app[FILES][name], content_type=content_type, headers=PAGE_HEADERS)


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui/")


def install(
    app: web.Application,
    service: FlagService,
    security: SecurityLayer,
    fleet: Fleet,
    *,
    heartbeat_seconds: float,
    registry: CollectorRegistry | None = None,
) -> None:
    """Add the console's routes to the HTTP side's application (before it starts).

    `fleet`: this replica's registry (the health page's replicas, the propagation status).
    `registry`: this process's metrics, which the health page reads (None: no indicators)."""
    app[CONSOLE] = Console(service, security, Sessions(), fleet, heartbeat_seconds)
    app[events.OPEN] = Counter()
    app[FILES] = {name: (STATIC / name).read_bytes() for name in ("index.html", *ASSETS)}
    if registry is not None:
        app[operations.REGISTRY] = registry
    app.add_routes(
        [
            web.get("/", to_console),
            web.get("/ui", to_console),
            web.get("/ui/", index),
            web.get("/ui/static/{name}", asset),
            *signin.routes(),
            *api.routes(),
            *events.routes(),
            *i18n.routes(),
            *operations.routes(),
        ]
    )


__all__ = ["install"]
