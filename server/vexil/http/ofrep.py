"""OFREP, the OpenFeature Remote Evaluation Protocol: one flag, or every flag, per HTTP request.

`POST /ofrep/v1/evaluate/flags/{key}` and `POST /ofrep/v1/evaluate/flags` with
`{"context": {...}}`, answered from the snapshot cache like every other evaluation.  As OFREP
and flagd have it: an unknown flag is 404 FLAG_NOT_FOUND, a bad context 400 INVALID_CONTEXT, a
flag that fails to evaluate 400 with its error code, and "use your code default" (DISABLED, or
DEFAULT without a default variant) is a 200 without `value`.  `variant` is always present (""
when there is none), as flagd sends it and as OFREP providers read it.

The bulk answer carries an `ETag` naming the environment, its `config_version` and a digest of
the context: a client that sends it back in `If-None-Match` gets 304 until a write changes the
environment (or it asks with another context).  Rules that read `$flagd.timestamp` can change
their answer without a write; the ETag does not cover that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from vexil.engine import CompiledFlag, ErrorCode, Resolution, ValueType
from vexil.flagd_compat.metadata import merged_metadata, scalar_metadata
from vexil.flagd_compat.selector import SELECTOR_HEADER, parse_selector_headers, served_environment
from vexil.http.context import InvalidContext, parse_request
from vexil.http.errors import json_error, json_response
from vexil.pacing import Pacer
from vexil.service import FlagService
from vexil.snapshot import Snapshot

SERVICE: web.AppKey[FlagService] = web.AppKey("flag_service", FlagService)
EVALUATED: web.AppKey[Callable[[str | None, Resolution], None]] = web.AppKey("evaluated")
"""Optional: called with (key, resolution) per evaluation, key None inside a bulk answer (metrics)."""

EVALUATE_FLAG = "/ofrep/v1/evaluate/flags/{key}"
EVALUATE_FLAGS = "/ofrep/v1/evaluate/flags"

FAILURE_CODES = {ErrorCode.PARSE_ERROR: "PARSE_ERROR"}
"""Error codes OFREP lets a failed evaluation carry; anything else is GENERAL."""


def _snapshot(request: web.Request) -> Snapshot:
    service = request.app[SERVICE]
    selected = parse_selector_headers(request.headers.getall(SELECTOR_HEADER, []))
    environment = served_environment(service, selected)
    return service.cache.get(environment)


def json_value(snapshot: Snapshot, key: str, value: Any) -> Any:
    """The value as JSON should carry it: OFREP has no types but JSON's, and clients type-check
    what they parse, so a float flag's integral values are sent as floats (`1.0`, not `1`)."""
    entry = snapshot.entries.get(key)
    if type(entry) is CompiledFlag and entry.value_type is ValueType.FLOAT and type(value) is int:
        with contextlib.suppress(OverflowError):
            return float(value)
    return value


def success_body(snapshot: Snapshot, key: str, resolution: Resolution) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key,
        "reason": str(resolution.reason),
        "variant": resolution.variant or "",
        "metadata": scalar_metadata(merged_metadata(snapshot, resolution)),
    }
    if resolution.value is not None:
        body["value"] = json_value(snapshot, key, resolution.value)
    return body


def failure_body(key: str, resolution: Resolution) -> dict[str, Any]:
    assert resolution.error_code is not None
    code = FAILURE_CODES.get(resolution.error_code, "GENERAL")
    return {"key": key, "errorCode": code, "errorDetails": resolution.error_message}


async def evaluate_flag(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    try:
        context = parse_request(await request.read())
    except InvalidContext as exc:
        return json_error(400, exc.message, key=key, errorCode="INVALID_CONTEXT")
    snapshot = _snapshot(request)
    resolution, _ = snapshot.evaluate(key, context)
    observe = request.app.get(EVALUATED)
    if observe is not None:
        observe(key, resolution)
    if resolution.error_code is ErrorCode.FLAG_NOT_FOUND:
        return json_error(404, resolution.error_message, key=key, errorCode="FLAG_NOT_FOUND")
    if resolution.error_code is not None:
        return json_response(failure_body(key, resolution), status=400)
    return json_response(success_body(snapshot, key, resolution))


def etag(snapshot: Snapshot, context: Mapping[str, Any]) -> str:
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f'"{snapshot.name}.{snapshot.config_version}.{digest}"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 weak comparison against a list of entity tags (or `*`)."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip().removeprefix("W/")
        if candidate in ("*", tag):
            return True
    return False


async def evaluate_flags(request: web.Request) -> web.Response:
    try:
        context = parse_request(await request.read())
    except InvalidContext as exc:
        return json_error(400, exc.message, errorCode="INVALID_CONTEXT")
    snapshot = _snapshot(request)
    tag = etag(snapshot, context)
    if matches(request.headers.get("If-None-Match", ""), tag):
        return web.Response(status=304, headers={"ETag": tag})
    flags = []
    observe = request.app.get(EVALUATED)
    async with Pacer() as pacer:
        for key in sorted(snapshot.entries):
            await pacer.tick()
            resolution, _ = snapshot.evaluate(key, context)
            if observe is not None:
                observe(None, resolution)
            if resolution.error_code is not None:
                flags.append(failure_body(key, resolution))
            else:
                flags.append(success_body(snapshot, key, resolution))
    body: dict[str, Any] = {"flags": flags}
    metadata = scalar_metadata(snapshot.environment.metadata)
    if metadata:
        body["metadata"] = metadata
    return json_response(body, headers={"ETag": tag})


def routes() -> list[web.RouteDef]:
    return [web.post(EVALUATE_FLAG, evaluate_flag), web.post(EVALUATE_FLAGS, evaluate_flags)]


__all__ = ["EVALUATE_FLAG", "EVALUATE_FLAGS", "SERVICE", "etag", "routes"]
