"""The console's JSON endpoints: the same core calls the admin API makes, shaped for the page.

Each handler names the RPC whose policy rule it follows (see `access.endpoint`) and calls
`FlagService` as `vexil.api.admin` does, so a definition is validated by the same engine and
written with the same optimistic concurrency whichever door it comes in by.  The flag list is
read from the served snapshot (no store round trip: it is what the hub keeps current, and it
stays fast with thousands of flags); a single flag, its history and the change log are read
from the store, which is authoritative.  Nothing here is on the evaluate path: "try it"
compiles and evaluates on its own, reading the snapshot as any reader does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from aiohttp import web

from vexil.engine import Resolution, evaluate
from vexil.errors import Conflict, InvalidArgument, NotFound
from vexil.flagfile import FLAG_FIELDS
from vexil.flagfile import _flag as flag_from_definition
from vexil.http.context import parse_request
from vexil.model import Change, Flag, FlagRevision, check_flag_key
from vexil.snapshot import BrokenFlag, compile_entry
from vexil.store.records import environment_to_record, flag_to_record

from .access import CONSOLE, Caller, actor, endpoint, ok, problem, read_json

ADMIN = "/vexil.v1.AdminService/"
EVALUATE = "/vexil.v1.EvaluationService/Evaluate"
LIST_LIMIT = 1000
"""Flags in one answer of the list; `offset` pages to the rest (the page's "Show more")."""
HISTORY_PAGE = 100
"""Revisions in one answer of a flag's history; `token` pages to older ones."""
CHANGES_WINDOW = 500
"""The change log is read this many config versions at a time, newest first."""
CHANGES_SCAN = 5000
"""The most config versions one answer of the change log searches for rows that match its
filters; `before` continues from where it stopped (the page's "Older changes")."""
PROPAGATION_WAIT_S = 5.0
"""The longest the propagation status waits for the fleet before it names the laggards."""


# -- shapes ------------------------------------------------------------------------------------
# A flag and an environment are sent as the store's own records (`flag_to_record`,
# `environment_to_record`): one JSON shape for each, whoever reads it.


def row_json(flag: Flag, environment_killed: bool) -> dict[str, Any]:
    """One line of the flag list."""
    return {
        "key": flag.key,
        "state": str(flag.state),
        "killed": environment_killed or not flag.enabled,
        "defaultVariant": flag.default_variant,
        "version": flag.version,
        "owner": flag.owner,
        "tags": list(flag.tags),
        "description": flag.description,
        "updatedAt": flag.updated_at,
        "updatedBy": flag.updated_by,
    }


def change_json(change: Change) -> dict[str, Any]:
    return {
        "version": change.config_version,
        "kind": str(change.kind),
        "actor": change.actor,
        "timestamp": change.timestamp,
        "flagKey": change.flag_key,
        "beforeVersion": change.before_version,
        "afterVersion": change.after_version,
        "reason": change.reason,
    }


def revision_json(revision: FlagRevision) -> dict[str, Any]:
    return {
        "version": revision.flag.version,
        "kind": str(revision.kind),
        "actor": revision.actor,
        "timestamp": revision.timestamp,
        "reason": revision.reason,
        "deleted": revision.deleted,
        "configVersion": revision.config_version,
        "flag": flag_to_record(revision.flag),
    }


def resolution_json(resolution: Resolution) -> dict[str, Any]:
    return {
        "value": resolution.value,
        "variant": resolution.variant,
        "reason": str(resolution.reason),
        "errorCode": str(resolution.error_code) if resolution.error_code is not None else None,
        "errorMessage": resolution.error_message,
    }


def references(targeting: Any) -> Iterator[str]:
    """The `$evaluators` names a rule reaches with `{"$ref": name}`, depth first."""
    stack = [targeting]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and len(node) == 1:
                yield ref
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def draft_flag(body: Any, environment: str, key: str | None = None) -> Flag:
    """A definition sent by the page (flagd's fields plus key, owner, tags, description).

    A `state` is checked as the API checks it: the write keeps the stored state when the body
    names none (`keeps_state`), and refuses one that differs (only the kill switch changes it)."""
    if not isinstance(body, dict):
        raise InvalidArgument("a flag definition (a JSON object) is required", "flag")
    flag_key = key if key is not None else body.get("key", "")
    if not isinstance(flag_key, str):
        raise InvalidArgument("must be a string", "flag.key")
    check_flag_key(flag_key, "flag.key")
    definition = {name: value for name, value in body.items() if name in FLAG_FIELDS}
    unknown = set(body) - FLAG_FIELDS - {"key"}
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(sorted(unknown))}", "flag")
    return flag_from_definition(flag_key, definition, environment, "flag")


def keeps_state(body: dict[str, Any]) -> bool:
    """Whether a write keeps the stored state: the page's definition names none."""
    flag = body.get("flag")
    return not (isinstance(flag, dict) and "state" in flag)


def _env(request: web.Request, body: dict[str, Any] | None = None) -> str:
    name = body.get("environment", "") if body is not None else request.query.get("env", "")
    if not isinstance(name, str):
        raise InvalidArgument("must be an environment name", "environment")
    return request.app[CONSOLE].service.environment(name)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument("must be text", name)
    return value


WHOLE_NUMBER = re.compile("[0-9]{1,20}")


def whole_number(text: str, field: str, what: str) -> int:
    """A whole number a request writes as text (a query parameter): ASCII digits only, at most 20.
    `str.isdigit` is not that check: it takes "²", which `int` refuses, and other scripts' digits
    (Arabic-Indic, fullwidth), which `int` reads."""
    if WHOLE_NUMBER.fullmatch(text) is None:
        raise InvalidArgument(f"must be {what}", field)
    return int(text)


def _version(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise InvalidArgument("must be a whole number", name)
    return value


# -- flags -------------------------------------------------------------------------------------


ROUTES = web.RouteTableDef()


@ROUTES.get("/ui/api/flags")
@endpoint(ADMIN + "ListFlags")
async def list_flags(request: web.Request, caller: Caller) -> web.Response:
    """The environment's flags, filtered: `q` (key or description contains), `owner`, `tag`,
    `state` (ENABLED / DISABLED) and `killed` (yes / no: off by the flag's or the environment's
    kill switch); at most LIST_LIMIT of them from `offset` (in key order), and the `total`."""
    env = _env(request)
    offset = whole_number(request.query.get("offset", "0"), "offset", "a number of flags")
    snapshot = request.app[CONSOLE].service.cache.get(env)
    query = request.query
    text = query.get("q", "").lower()
    owner, tag, state, killed = (query.get(name, "") for name in ("owner", "tag", "state", "killed"))
    env_killed = snapshot.environment.kill_switch
    rows = []
    for flag in sorted(snapshot.flags(), key=lambda f: f.key):
        if text and text not in flag.key.lower() and text not in flag.description.lower():
            continue
        if (owner and flag.owner != owner) or (tag and tag not in flag.tags):
            continue
        if state and str(flag.state) != state:
            continue
        row = row_json(flag, env_killed)
        if killed and row["killed"] != (killed == "yes"):
            continue
        rows.append(row)
    return ok(
        {
            "environment": environment_to_record(snapshot.environment),
            "flags": rows[offset : offset + LIST_LIMIT],
            "offset": offset,
            "total": len(rows),
        }
    )


@ROUTES.get("/ui/api/flags/{key}")
@endpoint(ADMIN + "GetFlag")
async def get_flag(request: web.Request, caller: Caller) -> web.Response:
    """One flag as stored, the `$evaluators` its targeting uses, and its environment as served
    (whose kill switch turns the flag off whatever its own state says)."""
    service = request.app[CONSOLE].service
    env = _env(request)
    flag = await service.get_flag(env, request.match_info["key"])
    environment = service.cache.get(env).environment
    used = {name: environment.evaluators.get(name) for name in dict.fromkeys(references(flag.targeting))}
    return ok(
        {"flag": flag_to_record(flag), "evaluators": used, "environment": environment_to_record(environment)}
    )


@ROUTES.post("/ui/api/flags")
@endpoint(ADMIN + "CreateFlag")
async def create_flag(request: web.Request, caller: Caller) -> web.Response:
    body = await read_json(request)
    env = _env(request, body)
    change = await request.app[CONSOLE].service.create_flag(
        draft_flag(body.get("flag"), env),
        actor=actor(request),
        reason=_text(body, "reason"),
        keep_state=keeps_state(body),
    )
    assert change.flag is not None
    return ok({"flag": flag_to_record(change.flag)}, status=201)


@ROUTES.put("/ui/api/flags/{key}")
@endpoint(ADMIN + "UpdateFlag")
async def update_flag(request: web.Request, caller: Caller) -> web.Response:
    """Replace a definition, conditional on `expectedVersion` (the version the edit started
    from): when another write landed meanwhile the answer is 409 with the flag as it is now, and
    nothing is written."""
    service = request.app[CONSOLE].service
    body = await read_json(request)
    env = _env(request, body)
    key = request.match_info["key"]
    expected = _version(body, "expectedVersion")
    if expected is None:
        raise InvalidArgument("name the version this edit started from", "expectedVersion")
    try:
        change = await service.update_flag(
            draft_flag(body.get("flag"), env, key),
            expected_version=expected,
            actor=actor(request),
            reason=_text(body, "reason"),
            keep_state=keeps_state(body),
        )
    except Conflict as exc:
        current = await service.get_flag(env, key)
        return problem(exc, current=flag_to_record(current))
    assert change.flag is not None
    return ok({"flag": flag_to_record(change.flag)})


@ROUTES.post("/ui/api/flags/{key}/try")
@endpoint(EVALUATE)
async def try_flag(request: web.Request, caller: Caller) -> web.Response:
    """Evaluate the served flag, and a draft of it (if sent), for one context, side by side.

    The draft is checked by the same validation as a write (errors carry their field path),
    compiled against the environment as served, and evaluated on its own: nothing is written."""
    service = request.app[CONSOLE].service
    body = await read_json(request)
    env = _env(request, body)
    key = request.match_info["key"]
    context = parse_request(json.dumps({"context": body.get("context")}).encode())
    snapshot = service.cache.get(env)
    answer: dict[str, Any] = {}
    if key in snapshot.entries:
        answer["current"] = resolution_json(snapshot.evaluate(key, context)[0])
    draft = body.get("draft")
    if draft is not None:
        flag = service.validate(draft_flag(draft, env, key))
        stored = snapshot.flag(key)
        if stored is not None:
            flag = replace(flag, state=stored.state)
        entry = compile_entry(flag, snapshot.environment)
        resolution = (
            entry.resolution()
            if isinstance(entry, BrokenFlag)
            else evaluate(entry, context, environment_killed=snapshot.environment.kill_switch)
        )
        answer["draft"] = resolution_json(resolution)
    if not answer:
        raise NotFound(f"flag '{key}' does not exist in environment '{env}'")
    return ok(answer)


# -- history, rollback, changes ----------------------------------------------------------------


@ROUTES.get("/ui/api/flags/{key}/history")
@endpoint(ADMIN + "GetFlagHistory")
async def history(request: web.Request, caller: Caller) -> web.Response:
    """A flag's revisions, newest first, each with its whole definition (the page diffs them):
    HISTORY_PAGE of them, and `next`, the `token` that asks for older ones ("" when none are left)."""
    env = _env(request)
    token = request.query.get("token", "")
    page = await request.app[CONSOLE].service.history(
        env, request.match_info["key"], size=HISTORY_PAGE, token=token
    )
    return ok(
        {
            "revisions": [revision_json(r) for r in page.items],
            "more": bool(page.next_token),
            "next": page.next_token,
        }
    )


@ROUTES.post("/ui/api/flags/{key}/rollback")
@endpoint(ADMIN + "RollbackFlag")
async def rollback(request: web.Request, caller: Caller) -> web.Response:
    body = await read_json(request)
    env = _env(request, body)
    to_version = _version(body, "toVersion")
    change = await request.app[CONSOLE].service.rollback(
        env,
        request.match_info["key"],
        to_version or 0,
        expected_version=_version(body, "expectedVersion"),
        actor=actor(request),
        reason=_text(body, "reason"),
    )
    assert change.flag is not None
    return ok({"flag": flag_to_record(change.flag)})


@ROUTES.get("/ui/api/changes")
@endpoint(ADMIN + "ListChanges")
async def changes(request: web.Request, caller: Caller) -> web.Response:
    """The environment's changes, newest first, filtered by `flag`, `actor` (contains) and
    `kind`, older than config version `before` (default: all).

    It reads CHANGES_WINDOW config versions at a time, going back until it has a window's worth
    of rows or has searched CHANGES_SCAN versions, so a filter matching old changes finds them
    and no answer costs more than that.  The answer says what it searched (`searchedFrom` to
    `searchedTo`) and where to go on (`older`, the next `before`; null at the start of the log)."""
    service = request.app[CONSOLE].service
    env = _env(request)
    query = request.query
    flag_key, who, kind = query.get("flag", ""), query.get("actor", ""), query.get("kind", "")
    newest = service.cache.get(env).config_version
    before = query.get("before", "")
    top = max(0, min(newest, whole_number(before, "before", "a config version") - 1)) if before else newest
    rows: list[dict[str, Any]] = []
    lowest = top + 1  # the lowest config version searched so far
    while lowest > 1 and len(rows) < CHANGES_WINDOW and top - lowest + 1 < CHANGES_SCAN:
        since = max(0, lowest - 1 - CHANGES_WINDOW)
        found = await service.list_changes(env, since_version=since, size=lowest - 1 - since)
        rows.extend(
            change_json(c)
            for c in reversed(found)
            if c.config_version < lowest
            and (not flag_key or c.flag_key == flag_key)
            and (not who or who in c.actor)
            and (not kind or str(c.kind) == kind)
        )
        lowest = since + 1
    return ok(
        {
            "changes": rows,
            "searchedFrom": min(lowest, top),
            "searchedTo": top,
            "older": lowest if lowest > 1 else None,
        }
    )


# -- kill switch, environment ------------------------------------------------------------------


@ROUTES.post("/ui/api/kill")
@endpoint(ADMIN + "SetKillSwitch")
async def kill(request: web.Request, caller: Caller) -> web.Response:
    """Kill or revive one flag (`key`) or the whole environment (no `key`), with a reason."""
    service = request.app[CONSOLE].service
    body = await read_json(request)
    env = _env(request, body)
    killed = body.get("killed")
    if not isinstance(killed, bool):
        raise InvalidArgument("true to kill, false to revive", "killed")
    key, reason = _text(body, "key"), _text(body, "reason")
    if key:
        change = await service.set_flag_killed(env, key, killed, actor=actor(request), reason=reason)
    else:
        change = await service.set_environment_killed(env, killed, actor=actor(request), reason=reason)
    return ok(
        {
            "configVersion": change.config_version,
            "flag": flag_to_record(change.flag) if change.flag is not None else None,
            "environment": environment_to_record(change.environment)
            if change.environment is not None
            else None,
        }
    )


@ROUTES.get("/ui/api/propagation")
@endpoint(ADMIN + "WaitForPropagation")
async def propagation(request: web.Request, caller: Caller) -> web.Response:
    """How far `version` of the environment has reached the fleet, asked by the page after a
    kill or revive answered (a separate, read-only request: the write never waits).  Waits at
    most PROPAGATION_WAIT_S, then names the replicas still behind."""
    console = request.app[CONSOLE]
    env = _env(request)
    version = whole_number(
        request.query.get("version", ""), "version", "the config_version the write answered with"
    )
    receipt = await console.fleet.wait_for(env, version, PROPAGATION_WAIT_S)
    return ok(
        {
            "environment": env,
            "configVersion": receipt.config_version,
            "complete": receipt.complete,
            "applied": len(receipt.applied),
            "total": len(receipt.replicas),
            "laggards": [r.replica_id for r in receipt.laggards],
            "elapsedMs": round(receipt.elapsed_seconds * 1000),
        }
    )


@ROUTES.get("/ui/api/environment")
@endpoint(ADMIN + "GetEnvironment")
async def environment(request: web.Request, caller: Caller) -> web.Response:
    return ok(
        {"environment": environment_to_record(request.app[CONSOLE].service.get_environment(_env(request)))}
    )


def routes() -> list[web.AbstractRouteDef]:
    return list(ROUTES)
