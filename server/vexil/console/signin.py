"""Signing in and out of the console, and what the page may show the signed-in caller.

The open local profile has no credentials (the API answers anyone on loopback), so the console
opens an anonymous session by itself; everywhere else a caller signs in with an API key or a JWT,
which the server authenticates as the API does.  Either way the answer carries the session's
CSRF token and what the policy lets this caller do (`can`), so the page hides what would be
refused; the server refuses it anyway.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vexil import identity
from vexil.errors import InvalidArgument, Unauthenticated, VexilError
from vexil.security.policy import ADMIN_API

from .access import CONSOLE, Caller, Console, ok, problem, read_json
from .session import COOKIE, CSRF_HEADER, CsrfTokenInvalid, Session

CAPABILITIES = {
    "read": "/vexil.v1.AdminService/ListFlags",
    "write": "/vexil.v1.AdminService/UpdateFlag",
    "kill": "/vexil.v1.AdminService/SetKillSwitch",
    "keys": "/vexil.v1.KeyService/CreateKey",
}
MAX_CREDENTIAL_CHARS = 8192


def _set_cookie(response: web.Response, console: Console, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(console.sessions.remaining(session)),
        path="/ui",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def describe(console: Console, caller: Caller) -> dict[str, Any]:
    principal = caller.principal
    token = identity.current_principal.set(principal)
    try:
        environments = identity.visible(console.service.cache.environments)
        default = identity.default_environment() or console.service.default_environment
    finally:
        identity.current_principal.reset(token)
    can = {name: console.allows(principal, method) for name, method in CAPABILITIES.items()}
    can["keys"] = can["keys"] and console.auth_required  # the open profile manages no keys
    return {
        "signedIn": True,
        "authRequired": console.auth_required,
        "subject": principal.subject if principal is not None else "",
        "role": principal.role if principal is not None else "",
        "csrf": caller.session.csrf,
        "expiresAt": caller.session.expires_at,
        "environments": environments,
        "defaultEnvironment": default if default in environments else (environments[:1] or [""])[0],
        "can": can,
    }


ROUTES = web.RouteTableDef()


@ROUTES.get("/ui/api/session")
async def current(request: web.Request) -> web.Response:
    """The session, if any; in the open local profile one is opened on first visit."""
    console = request.app[CONSOLE]
    try:
        caller = await console.caller(request)
    except Unauthenticated:
        if console.auth_required:
            return ok({"signedIn": False, "authRequired": True})
        session = console.sessions.open(credential="", principal=None, expires_at=0.0)
        response = ok(describe(console, Caller(session, None)))
        _set_cookie(response, console, session)
        return response
    except VexilError as exc:
        return problem(exc)
    return ok(describe(console, caller))


@ROUTES.post("/ui/api/session")
async def sign_in(request: web.Request) -> web.Response:
    """`{"credential": "<API key or JWT>"}`: a session that ends with the credential, at most
    in an hour."""
    console = request.app[CONSOLE]
    try:
        body = await read_json(request)
        credential = body.get("credential", "")
        if not isinstance(credential, str) or not credential.strip():
            raise InvalidArgument("paste an API key (vxk_...) or a JWT", "credential")
        if len(credential) > MAX_CREDENTIAL_CHARS:
            raise InvalidArgument("too long for a credential", "credential")
        if not console.auth_required:
            raise InvalidArgument(
                "this server runs open (the local profile): no sign-in needed", "credential"
            )
        found = await console.identify(credential.strip(), request.remote or "")
        # A sign-in is a request like any other: it draws from the caller's admin rate limit.
        console.charge(found.principal, request.remote or "", ADMIN_API)
        expires_at = found.expires_at
        if found.key_id:
            expires_at = (await console.security.keys.get(found.key_id)).expires_at
        if expires_at and expires_at <= console.sessions.clock():
            # Accepted within the clock-skew allowance, but a session would end before it began.
            raise Unauthenticated("this credential has expired: sign in with a new one")
        session = console.sessions.open(
            credential=credential.strip(), principal=found.principal, expires_at=expires_at
        )
    except VexilError as exc:
        return problem(exc)
    response = ok(describe(console, Caller(session, found)))
    _set_cookie(response, console, session)
    return response


@ROUTES.delete("/ui/api/session")
async def sign_out(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    session = console.sessions.get(request.cookies.get(COOKIE, ""))
    if session is not None:
        if not session.csrf_matches(request.headers.get(CSRF_HEADER, "")):
            return problem(CsrfTokenInvalid())
        console.sessions.close(session.id)
    response = ok({"signedIn": False, "authRequired": console.auth_required})
    response.del_cookie(COOKIE, path="/ui")
    return response


def routes() -> list[web.AbstractRouteDef]:
    return list(ROUTES)
