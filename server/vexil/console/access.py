"""Who is calling the console, and may they: the API's own authentication and role policy.

Every console endpoint names the RPC whose rule it follows (`vexil.security.policy.POLICY`), so
the console and the API answer to one table: an editor's session can read and write flags but
is refused the kill switch exactly as `SetKillSwitch` refuses it, whatever the page shows.  The
admin rate limits apply as they do to the API.  Every request that is not a GET must carry the
session's CSRF token and a JSON body (a cross-site form can send neither).

Core errors (`VexilError`) become JSON the page shows next to the field they name:
`{"error": {"code", "message", "field"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vexil import identity
from vexil.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated, VexilError
from vexil.fleet import Fleet
from vexil.http.errors import HTTP_STATUS, internal_error, json_response
from vexil.identity import Principal
from vexil.security import audit, roles
from vexil.security.authn import Authenticator, Identity
from vexil.security.keys import Author
from vexil.security.layer import SecurityLayer
from vexil.security.policy import POLICY, Rule
from vexil.service import FlagService
from vexil.store.records import check_portable
from vexil.transport.peers import client_address

from .session import COOKIE, CSRF_HEADER, CsrfTokenInvalid, Session, Sessions

MAX_BODY_BYTES = 512 * 1024
"""A flag definition is at most 300 KiB; a console request carries one plus a little."""
STATUS = {**HTTP_STATUS, "ABORTED": 409, "ALREADY_EXISTS": 409}
CONSOLE_METHOD = "CONSOLE"


@dataclass(slots=True)
class Caller:
    """An authenticated console request: its session and what the credential is now."""

    session: Session
    identity: Identity | None
    """None in the open local profile."""

    @property
    def principal(self) -> Principal | None:
        return self.identity.principal if self.identity is not None else None


class _Peer:
    """`identity.actor` wants a gRPC-like peer; the console's is the browser's address."""

    def __init__(self, request: web.Request) -> None:
        self.address = f"console:{request.remote or 'unknown'}"

    def peer(self) -> str:
        return self.address


def actor(request: web.Request) -> str:
    """The name a write through the console is recorded under (the principal's subject)."""
    return identity.actor(_Peer(request))


def author(request: web.Request) -> Author:
    """Who makes a key change through the console, as the key manager records it."""
    return {"actor": actor(request), "peer": request.remote or ""}


@dataclass
class Console:
    """What every console endpoint needs; held in the aiohttp app under `CONSOLE`."""

    service: FlagService
    security: SecurityLayer
    sessions: Sessions
    fleet: Fleet
    """The replica registry: the health page lists it, the propagation status waits on it."""
    heartbeat_seconds: float = 15.0

    @property
    def authenticator(self) -> Authenticator | None:
        return self.security.authenticator

    @property
    def auth_required(self) -> bool:
        return self.authenticator is not None

    async def identify(self, credential: str, peer: str) -> Identity:
        """The identity behind a credential, exactly as the API would authenticate it."""
        assert self.authenticator is not None
        return await self.authenticator.authenticate(
            [f"Bearer {credential}"], peer=peer, method=CONSOLE_METHOD
        )

    async def caller(self, request: web.Request) -> Caller:
        """The request's session, its credential authenticated again (revoked or expired: 401)."""
        session = self.sessions.get(request.cookies.get(COOKIE, ""))
        if session is None:
            raise Unauthenticated("sign in first (no session, or it has expired)")
        if not session.credential:
            if self.auth_required:  # never: such sessions open only on open servers
                raise Unauthenticated("sign in first")
            return Caller(session, None)
        try:
            found = await self.identify(session.credential, request.remote or "")
        except Unauthenticated:
            self.sessions.close(session.id)
            raise
        session.principal = found.principal
        return Caller(session, found)

    def allows(self, principal: Principal | None, method: str) -> bool:
        """Whether the policy lets `principal` (None: the open local profile) use `method`."""
        rule = POLICY[method]
        return principal is None or rule.role is None or roles.allows(principal.role, rule.role)

    def authorize(self, request: web.Request, caller: Caller, method: str, rule: Rule) -> None:
        principal = caller.principal
        if not self.allows(principal, method):
            assert principal is not None and caller.identity is not None
            audit.auth_failed(
                "role too low", peer=request.remote or "", method=method, key_id=caller.identity.key_id
            )
            held = f"are {principal.role}" if principal.role else "have no role"  # the API's words
            raise PermissionDenied(f"this needs the {rule.role} role; these credentials {held}")
        self.charge(principal, request.remote or "", rule.api)

    def charge(self, principal: Principal | None, peer: str, api: str) -> None:
        """Count one request against the caller's rate limit of `api`, as the API counts a call."""
        limiter = self.security.limiter
        if limiter is not None:
            client = principal.subject if principal is not None else f"peer:{client_address(peer)}"
            limiter.check(api, client, principal.role if principal is not None else "")


CONSOLE: web.AppKey[Console] = web.AppKey("vexil_console", Console)


def problem(exc: VexilError, **extra: Any) -> web.Response:
    """A core error as the JSON the page shows inline (`field` names what to fix; `reason` is the
    word a program branches on, the one the gRPC API sends in its ErrorInfo)."""
    status = STATUS.get(exc.code, 500)
    error = {
        "code": exc.code,
        "reason": str(exc.reason),
        "message": exc.message,
        "field": getattr(exc, "field", ""),
    }
    body = {"error": error, **extra}
    response = json_response(body, status=status)
    if isinstance(exc, ResourceExhausted) and exc.retry_after:
        response.headers["Retry-After"] = f"{exc.retry_after:.0f}"
    return response


def ok(body: Any, status: int = 200) -> web.Response:
    return json_response(body, status=status, headers={"Cache-Control": "no-store"})


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, bounded in size, holding only Unicode text (`check_text`,
    run when encoding the body to UTF-8, at C speed, finds there is something to look for)."""
    if request.content_type != "application/json":
        raise InvalidArgument("send a JSON body (Content-Type: application/json)", "body")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise InvalidArgument(f"the request is larger than {MAX_BODY_BYTES} bytes", "body")
    raw = await _read_body(request)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"not valid JSON: {exc}", "body") from None
    if not isinstance(data, dict):
        raise InvalidArgument("must be a JSON object", "body")
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        check_text(data)
    return data


async def _read_body(request: web.Request) -> bytes:
    """The whole body, up to MAX_BODY_BYTES (the HTTP side has read it already, within its
    deadline: `vexil.http.server`)."""
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidArgument(f"the request is larger than {MAX_BODY_BYTES} bytes", "body")
    return raw


def check_text(value: Any, path: str = "") -> None:
    """Refuse text that is not Unicode (a lone surrogate, `"\\ud800"` in JSON) anywhere in a
    request body, before any of it is used or echoed, naming its path (`environment`,
    `flag.tags[0]`).  The rule and its words are `check_portable`'s, applied to each string and key."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            check_portable(item, where or "body")
        elif isinstance(item, dict):
            for key, child in item.items():
                check_portable(key, where or "body")
                pending.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{i}]") for i, child in enumerate(item))


Endpoint = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def endpoint(method: str) -> Callable[[Endpoint], Handler]:
    """A console handler that follows the policy rule of `method` (an RPC's full name).

    Order: session and credential (401), CSRF on anything but GET (403), role and rate limit
    (403, 429); then the handler runs as the principal, so the core enforces the environment
    scope and records the actor as it does for the API."""
    rule = POLICY[method]

    def wrap(handler: Endpoint) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            console = request.app[CONSOLE]
            try:
                caller = await console.caller(request)
                if request.method != "GET" and not caller.session.csrf_matches(
                    request.headers.get(CSRF_HEADER, "")
                ):
                    raise CsrfTokenInvalid()
                console.authorize(request, caller, method, rule)
                token = identity.current_principal.set(caller.principal)
                try:
                    return await handler(request, caller)
                finally:
                    identity.current_principal.reset(token)
            except VexilError as exc:
                return problem(exc)
            except web.HTTPException:
                raise
            except Exception:
                return internal_error(f"{request.method} {request.path}")

        run.__doc__ = handler.__doc__
        return run

    return wrap
