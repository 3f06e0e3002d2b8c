"""The console's operator pages: the health table and API key management.

Health is the operations guide's table as `vexil ops health` computes it (`vexil.ops.health`),
read from this process's own metrics instead of a scrape over the network, plus what GetStatus
says of the store, each environment and its replicas (the registry as of the last heartbeat: no
store read on the page's path).  Keys are managed through the same `KeyManager` and the
same scope rules as the KeyService RPCs (`vexil.api.keys`); a token is in exactly one answer.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from vexil import __version__, identity
from vexil.errors import InvalidArgument, NotFound
from vexil.fleet import replica_views
from vexil.ops import health
from vexil.ops.scrape import Scrape
from vexil.security.keys import IssuedKey, key_environment, may_manage, require_auth, require_key_scope
from vexil.security.roles import ROLES
from vexil.store.keys import ApiKey
from vexil.store.replicas import ReplicaRecord

from .access import CONSOLE, Caller, author, endpoint, ok, read_json

REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("vexil_console_metrics", CollectorRegistry)


def replicas_json(self_id: str, replicas: list[ReplicaRecord], now: float) -> list[dict[str, Any]]:
    """The registry's records as GetStatus shows them (`vexil.fleet.replica_views`)."""
    return [
        {
            "id": v.record.replica_id,
            "address": v.record.address,
            "configVersion": v.record.config_version,
            "lag": v.lag,
            "lastSeenSeconds": v.last_seen_seconds,
            "self": v.is_self,
        }
        for v in replica_views(self_id, replicas, now)
    ]


ROUTES = web.RouteTableDef()


@ROUTES.get("/ui/api/health")
@endpoint("/vexil.v1.AdminService/GetStatus")
async def health_table(request: web.Request, caller: Caller) -> web.Response:
    console = request.app[CONSOLE]
    cache = console.service.cache
    environments = []
    degraded = False
    now = time.time()
    for env in identity.visible(cache.environments):
        feed = cache.status(env)
        degraded |= not feed.healthy
        environments.append(
            {
                "name": env,
                "configVersion": feed.config_version,
                "flags": feed.flags,
                "stalenessSeconds": feed.staleness_seconds,
                "healthy": feed.healthy,
                "lastError": feed.last_error,
                "subscribers": cache.hub.count(env),
                "replicas": replicas_json(console.fleet.replica_id, console.fleet.known_replicas(env), now),
            }
        )
    state = "STATE_LOADING" if not cache.loaded else "STATE_DEGRADED" if degraded else "STATE_SERVING"
    registry = request.app.get(REGISTRY)
    scrape = Scrape.parse(generate_latest(registry).decode()) if registry is not None else None
    report = health.report({"state": state, "store": console.service.store.name}, scrape)
    body: dict[str, Any] = report.as_dict()
    body.update(store=console.service.store.name, version=__version__, environments=environments)
    return ok(body)


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "environment": key.environment,
        "role": key.role,
        "description": key.description,
        "createdAt": key.created_at,
        "createdBy": key.created_by,
        "expiresAt": key.expires_at,
        "lastUsedAt": key.last_used_at,
        "revoked": key.revoked,
    }


def issued_json(issued: IssuedKey) -> dict[str, Any]:
    return {"token": issued.token, "key": key_json(issued.key)}


async def _managed(request: web.Request) -> ApiKey:
    key = await request.app[CONSOLE].security.keys.get(request.match_info["id"])
    if not may_manage(key.environment):
        raise NotFound(f"API key {key.id} does not exist")
    return key


@ROUTES.get("/ui/api/keys")
@endpoint("/vexil.v1.KeyService/ListKeys")
async def list_keys(request: web.Request, caller: Caller) -> web.Response:
    require_auth(request.app[CONSOLE].auth_required)
    keys = sorted(await request.app[CONSOLE].security.keys.list(), key=lambda k: (-k.created_at, k.id))
    now = time.time()
    shown = [k for k in keys if not k.revoked and k.expires_at > now and may_manage(k.environment)]
    return ok({"keys": [key_json(k) for k in shown]})


@ROUTES.post("/ui/api/keys")
@endpoint("/vexil.v1.KeyService/CreateKey")
async def create_key(request: web.Request, caller: Caller) -> web.Response:
    require_auth(request.app[CONSOLE].auth_required)
    console = request.app[CONSOLE]
    body = await read_json(request)
    role = body.get("role")
    if role not in ROLES:
        raise InvalidArgument("name the key's role: evaluator, editor or admin", "role")
    requested = body.get("environment", "")
    if not isinstance(requested, str):
        raise InvalidArgument("must be an environment name (or '*')", "environment")
    environment = key_environment(requested, console.service.environment)
    require_key_scope(environment)
    description = body.get("description", "")
    if not isinstance(description, str):
        raise InvalidArgument("must be text", "description")
    issued = await console.security.keys.create(
        environment=environment,
        role=role,
        description=description,
        **author(request),
    )
    return ok(issued_json(issued), status=201)


@ROUTES.post("/ui/api/keys/{id}/rotate")
@endpoint("/vexil.v1.KeyService/RotateKey")
async def rotate_key(request: web.Request, caller: Caller) -> web.Response:
    require_auth(request.app[CONSOLE].auth_required)
    key = await _managed(request)
    issued = await request.app[CONSOLE].security.keys.rotate(key.id, **author(request))
    return ok(issued_json(issued))


@ROUTES.post("/ui/api/keys/{id}/revoke")
@endpoint("/vexil.v1.KeyService/RevokeKey")
async def revoke_key(request: web.Request, caller: Caller) -> web.Response:
    require_auth(request.app[CONSOLE].auth_required)
    body = await read_json(request)
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidArgument("must be text", "reason")
    key = await _managed(request)
    revoked = await request.app[CONSOLE].security.keys.revoke(key.id, reason=reason, **author(request))
    return ok({"key": key_json(revoked)})


def routes() -> list[web.AbstractRouteDef]:
    return list(ROUTES)
