"""The console's parts without a browser: catalogues, language choice, sessions, and the HTTP
answers of an in-process server in the open local profile."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import aiohttp
import grpc
import jwt
import pytest
from aiohttp import web

from tests.support.calls import raw_http
from tests.support.console import answered, open_session
from tests.support.servers import connected, running_app, server_settings
from vexil.console import api as console_api
from vexil.console import i18n
from vexil.console.api import references
from vexil.console.session import MAX_LIFETIME, Sessions
from vexil.identity import Principal
from vexil.model import ChangeKind, FlagState
from vexil.observability.thresholds import INDICATORS, Level
from vexil.security.roles import ROLES
from vexil.store.replicas import ReplicaRecord
from vexil.v1 import admin_pb2

STATIC = Path(i18n.__file__).with_name("static")


def used_keys() -> set[str]:
    """Every catalogue key the page names literally, plus the families it builds from values."""
    script = (STATIC / "app.js").read_text()
    page = (STATIC / "index.html").read_text()
    keys = set(re.findall(r'\bt\("([^"]+)"', script))
    keys |= set(re.findall(r'field\("([^"]+)"', script))
    keys |= set(re.findall(r'"((?:flags|history|changes|health|keys|edit)\.[A-Za-z]+)"', script))
    keys |= set(re.findall(r'data-i18n(?:-label)?="([^"]+)"', page))
    keys |= {f"role.{r}" for r in ROLES} | {f"state.{s}" for s in FlagState} | {"state.killed"}
    keys |= {f"kind.{k}" for k in ChangeKind} | {f"level.{level}" for level in Level}
    keys |= {f"signal.{indicator.name}" for indicator in INDICATORS}
    return keys


def test_every_label_the_page_uses_is_in_both_languages() -> None:
    assert set(i18n.ENGLISH) == set(i18n.JAPANESE)
    missing = used_keys() - set(i18n.ENGLISH)
    assert not missing, f"labels without a translation: {sorted(missing)}"
    assert all(
        i18n.JAPANESE[k] and i18n.JAPANESE[k] != i18n.ENGLISH[k] for k in ("flags.title", "signin.title")
    )
    for key, english in i18n.ENGLISH.items():  # the same placeholders in both
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", i18n.JAPANESE[key])), key


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR,ja;q=0.5", "ja"),
        ("fr-FR,de;q=0.5", "en"),
        ("en;q=0.1,ja;q=0.7", "ja"),
        ("ja;q=0", "en"),
        ("ja;q=bogus,en", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str, expected: str) -> None:
    assert i18n.negotiate(header) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lasts_at_most_an_hour_and_never_past_its_credential() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    long_lived = sessions.open(credential="k", principal=None, expires_at=clock.now + 90 * 86400)
    short_lived = sessions.open(credential="j", principal=None, expires_at=clock.now + 600)
    assert long_lived.expires_at == clock.now + MAX_LIFETIME == clock.now + 3600
    assert short_lived.expires_at == clock.now + 600
    assert long_lived.id != short_lived.id and long_lived.csrf != short_lived.csrf
    clock.now += 601
    assert sessions.get(short_lived.id) is None and sessions.get(long_lived.id) is long_lived
    clock.now += 3000
    assert sessions.get(long_lived.id) is None
    assert len(sessions) == 0


def test_the_session_table_is_bounded() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock, limit=3)
    opened = [sessions.open(credential="", principal=None, expires_at=0) for _ in range(5)]
    assert len(sessions) == 3
    assert sessions.get(opened[0].id) is None and sessions.get(opened[4].id) is opened[4]


def test_a_caller_signing_in_again_and_again_closes_only_its_own_oldest_sessions() -> None:
    """README: each caller holds at most 20 sessions; signing in more closes its own oldest, never
    another caller's (an evaluator key could otherwise sign every admin out)."""
    clock = Clock()
    sessions = Sessions(clock=clock, limit=100)
    admin = sessions.open(credential="a", principal=Principal("key:admin", "admin"), expires_at=0)
    flood = [
        sessions.open(credential="e", principal=Principal("key:eval", "evaluator"), expires_at=0)
        for _ in range(500)
    ]
    assert sessions.get(admin.id) is admin
    assert len(sessions) == 1 + 20
    assert all(sessions.get(s.id) is s for s in flood[-20:])
    assert sessions.get(flood[-21].id) is None


def test_csrf_tokens_compare_exactly() -> None:
    session = Sessions().open(credential="", principal=None, expires_at=0)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches("") and not session.csrf_matches(session.csrf[:-1])
    assert not session.csrf_matches("\udcff" + session.csrf)  # header bytes that are not UTF-8


async def test_the_open_profile_opens_a_session_and_still_checks_every_write(open_console) -> None:
    http, base = open_console
    async with http.get(f"{base}/", allow_redirects=False) as redirect:
        assert redirect.status == 302 and redirect.headers["Location"] == "/ui/"
    async with http.get(f"{base}/ui/") as page:
        assert page.status == 200 and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    async with http.get(f"{base}/ui/static/../../app.py") as escape:
        assert escape.status == 404
    async with http.get(f"{base}/ui/api/session") as answer:
        session = await answer.json()
        cookie = answer.cookies["vexil_console"]
    assert session["signedIn"] and not session["authRequired"] and session["can"]["kill"]
    assert not session["can"]["keys"]  # the open profile has no keys to manage
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert 3500 < int(cookie["max-age"]) <= 3600
    # The cookie is Secure and this client speaks plain HTTP: send it by hand, as a browser on
    # loopback (a secure context) does.
    http.headers["Cookie"] = f"vexil_console={cookie.value}"
    csrf = {"X-CSRF-Token": session["csrf"]}
    flag = {"key": "unit", "variants": {"on": True}, "defaultVariant": "on"}
    for sent in ({}, {"X-CSRF-Token": "guessed"}):  # README: CSRF_TOKEN_INVALID, the role may write
        async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=sent) as refused:
            error = (await refused.json())["error"]
            assert (refused.status, error["code"], error["reason"]) == (
                403,
                "PERMISSION_DENIED",
                "CSRF_TOKEN_INVALID",
            )
    async with http.delete(f"{base}/ui/api/session") as sign_out:
        error = (await sign_out.json())["error"]
        assert (sign_out.status, error["reason"]) == (403, "CSRF_TOKEN_INVALID")
    # A token header whose bytes are not UTF-8 is no token either (not a 500).
    port = int(base.rsplit(":", 1)[1])
    lines = f"Cookie: {http.headers['Cookie']}\r\n".encode() + b"X-CSRF-Token: \xff\xfe\r\n"
    for method, path in (("POST", "/ui/api/flags"), ("DELETE", "/ui/api/session")):
        status, answer = await raw_http(port, method, path, lines, json.dumps({"flag": flag}).encode())
        assert (status, answer.get("error", {}).get("reason")) == (403, "CSRF_TOKEN_INVALID"), (path, answer)
    async with http.post(f"{base}/ui/api/flags", data="flag=unit", headers=csrf) as form:
        assert form.status == 400 and (await form.json())["error"]["field"] == "body"
    too_big = {"flag": {**flag, "description": "x" * 600_000}}
    async with http.post(f"{base}/ui/api/flags", json=too_big, headers=csrf) as big:
        assert big.status == 400 and "larger than" in (await big.json())["error"]["message"]
    async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=csrf) as created:
        assert created.status == 201, await created.text()
    async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=csrf) as again:
        error = (await again.json())["error"]
        assert again.status == 409 and (error["code"], error["reason"]) == (
            "ALREADY_EXISTS",
            "FLAG_ALREADY_EXISTS",
        )
    async with http.get(f"{base}/ui/api/keys") as keys:
        error = (await keys.json())["error"]
        assert keys.status == 400 and (error["code"], error["reason"]) == (
            "FAILED_PRECONDITION",
            "AUTH_DISABLED",
        )
    async with http.get(f"{base}/ui/api/flags", params={"env": "nowhere"}) as unknown:
        assert unknown.status == 404
    del http.headers["Cookie"]
    async with http.get(f"{base}/ui/api/flags") as anonymous:
        assert anonymous.status == 401  # no session: even the open profile needs its cookie


NOT_UNICODE = [
    # (method, path, body with a lone surrogate as its JSON escape, the field the refusal names)
    (
        "POST",
        "/ui/api/flags/unit/try",
        '{"environment": "local", "context": {"pick": "\\ud800"}}',
        "context.pick",
    ),
    ("POST", "/ui/api/flags", '{"environment": "\\ud800", "flag": {"key": "s1"}}', "environment"),
    ("POST", "/ui/api/flags", '{"reason": "x\\udfffy", "flag": {"key": "s2"}}', "reason"),
    ("POST", "/ui/api/flags", '{"flag": {"key": "s3", "tags": ["ok", "\\ud800"]}}', "flag.tags[1]"),
    ("POST", "/ui/api/flags", '{"flag": {"key": "s4", "variants": {"\\ud800": 1}}}', "flag.variants"),
    ("POST", "/ui/api/kill", '{"environment": "\\ud800", "killed": true, "reason": "x"}', "environment"),
    ("PUT", "/ui/api/flags/unit", '{"expectedVersion": 1, "flag": {"owner": "\\udc80"}}', "flag.owner"),
    ("POST", "/ui/api/session", '{"credential": "\\ud800"}', "credential"),
]


async def test_a_body_holding_text_that_is_not_unicode_is_refused_naming_where(open_console) -> None:
    """README: text with a lone surrogate is refused with INVALID_ARGUMENT naming the path, from
    every door; the console answers it 400 with its usual error, nothing written or echoed."""
    http, base = open_console
    csrf = {**await open_session(http, base), "Content-Type": "application/json"}
    flag = {"key": "unit", "variants": {"on": True}, "defaultVariant": "on"}
    async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=csrf) as created:
        assert created.status == 201
    for method, path, body, field in NOT_UNICODE:
        status, error = await answered(http, method, f"{base}{path}", data=body, headers=csrf)
        assert (status, error.get("code"), error.get("field")) == (400, "INVALID_ARGUMENT", field), (
            path,
            error,
        )
        assert "lone surrogate" in error["message"], error
        assert "\\\\" not in error["message"], error  # the escape written once: '\ud800', not '\\ud800'
    async with http.get(f"{base}/ui/api/flags", params={"env": "local"}) as listed:
        assert [row["key"] for row in (await listed.json())["flags"]] == ["unit"]


ISSUER = "https://idp.example.test"
AUDIENCE = "vexil"
SECRET = "an-hs256-shared-secret-of-at-least-32-bytes!"


def person(role: str, lifetime: int) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + lifetime, "role": role}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def sign_in(http: aiohttp.ClientSession, base: str, credential: str) -> tuple[int, dict, dict]:
    """(status, body, cookie headers to send) of a sign-in."""
    async with http.post(f"{base}/ui/api/session", json={"credential": credential}) as answer:
        body = await answer.json()
        cookie = answer.cookies.get("vexil_console")
        headers = {"Cookie": f"vexil_console={cookie.value}"} if cookie is not None else {}
        return answer.status, body, {"max-age": cookie["max-age"] if cookie else "", **headers}


async def test_sessions_follow_their_credentials(tmp_path: Path) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET)
    settings = server_settings(
        auth_mode="required", jwt_secret_file=str(secret), jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    async with (
        running_app(settings) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        async with http.get(f"{base}/ui/api/session") as anonymous:
            assert (await anonymous.json()) == {"signedIn": False, "authRequired": True}

        # A JWT that expires in 10 minutes: the session ends with it, not an hour later.
        status, body, sent = await sign_in(http, base, person("editor", 600))
        assert status == 200 and body["role"] == "editor" and body["subject"] == "jwt:alice"
        assert 590 <= int(sent.pop("max-age")) <= 600 and body["expiresAt"] <= time.time() + 600
        assert body["can"] == {"read": True, "write": True, "kill": False, "keys": False}
        async with http.post(
            f"{base}/ui/api/kill",
            json={"killed": True, "reason": "forged"},
            headers={**sent, "X-CSRF-Token": body["csrf"]},
        ) as forged:
            assert forged.status == 403 and (await forged.json())["error"]["code"] == "PERMISSION_DENIED"

        expired = person("admin", -60)
        status, body, _ = await sign_in(http, base, expired)
        assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
        # Past its expiry but inside the clock-skew allowance (30 s): the API still takes it, but
        # a session would be over before it began, so the sign-in says so.
        status, body, sent = await sign_in(http, base, person("admin", -5))
        assert (status, sent) == (401, {"max-age": ""}), body
        assert "expired" in body["error"]["message"]

        # An API key: revoking it ends its session at the next request.
        issued = await app.security.keys.create(environment="local", role="admin", actor="test")
        status, body, sent = await sign_in(http, base, issued.token)
        assert status == 200 and body["can"]["kill"] and 3590 <= int(sent.pop("max-age")) <= 3600
        async with http.get(f"{base}/ui/api/flags", headers=sent) as listed:
            assert listed.status == 200
        await app.security.keys.revoke(issued.key.id, actor="test")
        async with http.get(f"{base}/ui/api/flags", headers=sent) as refused:
            assert refused.status == 401
        async with http.get(f"{base}/ui/api/session", headers=sent) as gone:
            assert (await gone.json())["signedIn"] is False

        # An evaluator may not read definitions through the console, as through the API.
        reader = await app.security.keys.create(environment="local", role="evaluator", actor="test")
        status, body, sent = await sign_in(http, base, reader.token)
        sent.pop("max-age")
        assert status == 200 and not body["can"]["read"]
        async with http.get(f"{base}/ui/api/flags", headers=sent) as denied:
            assert denied.status == 403


async def test_the_event_stream_sends_changes_and_ends_at_sign_out() -> None:
    async with (
        running_app(server_settings(heartbeat_seconds=0.5)) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        csrf = await open_session(http, base)
        async with http.get(f"{base}/ui/api/events", params={"env": "local"}) as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"

            async def next_event() -> dict:
                while True:
                    line = (await stream.content.readline()).decode()
                    if line.startswith("data: "):
                        return json.loads(line[6:])

            async with asyncio.timeout(10):
                opened = await next_event()
                assert opened["type"] == "opened"
                flag = {"key": "streamed", "variants": {"on": True}, "defaultVariant": "on"}
                async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=csrf) as made:
                    assert made.status == 201
                change = await next_event()
                assert (change["type"], change["kind"], change["key"]) == ("change", "CREATE", "streamed")
                assert change["version"] == opened["version"] + 1
                async with http.delete(f"{base}/ui/api/session", headers=csrf) as signed_out:
                    assert signed_out.status == 200
                while await stream.content.readline():  # ends at the next heartbeat
                    pass
            assert stream.content.at_eof()


@pytest.mark.parametrize(
    ("targeting", "expected"),
    [
        (None, []),
        ({"$ref": "beta"}, ["beta"]),
        ({"if": [{"$ref": "beta"}, "on", {"if": [{"$ref": "staff"}, "on", "off"]}]}, ["beta", "staff"]),
        ({"if": [{"and": [{"$ref": "a"}, {"$ref": "a"}]}, "on", "off"]}, ["a"]),
        ({"$ref": "x", "other": 1}, []),  # not a reference: a reference is the object's only key
        ({"==": [{"var": "$ref"}, "beta"]}, []),
    ],
)
def test_the_evaluators_a_rule_uses(targeting: object, expected: list[str]) -> None:
    assert sorted(set(references(targeting))) == expected


@pytest.mark.parametrize("store", ["memory", "dynamodb"])
async def test_edits_are_conditional_and_roll_back_on_both_stores(store: str, request) -> None:
    if store == "memory":
        settings = server_settings()
    else:
        endpoint, table = request.getfixturevalue("dynamo_table")
        settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with (
        running_app(settings) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        csrf = await open_session(http, base)
        first = {"key": "cond", "variants": {"a": 1, "b": 2}, "defaultVariant": "a", "owner": "one"}
        async with http.post(f"{base}/ui/api/flags", json={"flag": first}, headers=csrf) as made:
            assert made.status == 201
        second = {**first, "defaultVariant": "b"}
        update = {"flag": second, "expectedVersion": 1, "reason": "to b"}
        async with http.put(f"{base}/ui/api/flags/cond", json=update, headers=csrf) as saved:
            assert saved.status == 200 and (await saved.json())["flag"]["version"] == 2
        stale = {"flag": {**first, "owner": "two"}, "expectedVersion": 1}
        async with http.put(f"{base}/ui/api/flags/cond", json=stale, headers=csrf) as conflict:
            body = await conflict.json()
            assert conflict.status == 409 and body["error"]["code"] == "ABORTED"
            assert body["error"]["reason"] == "STALE_VERSION"
            assert (body["current"]["version"], body["current"]["defaultVariant"]) == (2, "b")
        back = {"toVersion": 1, "expectedVersion": 2, "reason": "b was wrong"}
        async with http.post(f"{base}/ui/api/flags/cond/rollback", json=back, headers=csrf) as rolled:
            flag = (await rolled.json())["flag"]
            assert rolled.status == 200 and (flag["version"], flag["defaultVariant"]) == (3, "a")
        async with http.get(f"{base}/ui/api/flags/cond/history", params={"env": "local"}) as history:
            revisions = (await history.json())["revisions"]
        assert [(r["version"], r["kind"], r["reason"]) for r in revisions] == [
            (3, "ROLLBACK", "b was wrong"),
            (2, "UPDATE", "to b"),
            (1, "CREATE", ""),
        ]
        async with http.get(f"{base}/ui/api/changes", params={"env": "local", "flag": "cond"}) as log:
            kinds = [c["kind"] for c in (await log.json())["changes"]]
        assert kinds == ["ROLLBACK", "UPDATE", "CREATE"]  # newest first


async def test_the_propagation_status_counts_the_replicas_and_names_the_laggards(monkeypatch) -> None:
    """The status a kill's page asks for: complete with this replica alone, bounded and naming
    the laggard when a live replica reports an older version, and a clear 400 for a bad version."""
    wait = 0.3
    monkeypatch.setattr(console_api, "PROPAGATION_WAIT_S", wait)  # the bound, short for the test
    async with (
        running_app(server_settings()) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        await open_session(http, base)
        url = f"{base}/ui/api/propagation"
        # Only ASCII digits are a version: "²" passes str.isdigit but not int(); an Arabic-Indic
        # and a fullwidth one pass both.  None is what a write answers with.
        for bad in ("", "-1", "v3", "9" * 21, "1.0", " 1", "²", "1²", "\u0661", "\uff11"):
            async with http.get(url, params={"version": bad}) as refused:
                error = (await refused.json()).get("error", {})
                assert refused.status == 400 and error["field"] == "version", bad
        version = app.service.cache.get("local").config_version
        async with http.get(url, params={"version": str(version)}) as answer:
            status = await answer.json()
        assert (status["applied"], status["total"], status["complete"]) == (1, 1, True)
        assert status["laggards"] == []

        now = time.time()
        behind = ReplicaRecord("zz-behind", "local", "10.0.0.9:50051", version, now, int(now) + 60)
        await app.store.put_replica(behind)
        started = time.monotonic()
        async with http.get(url, params={"version": str(version + 1)}) as answer:
            status = await answer.json()
        took = time.monotonic() - started
        assert (status["applied"], status["total"], status["complete"]) == (0, 2, False)
        assert status["laggards"] == sorted(["zz-behind", app.fleet.replica_id])
        assert status["elapsedMs"] >= wait * 1000 and took < wait + 5  # it ends at its bound


CONSOLE_ROUTES = {
    # (method, path) -> the handler's module and name, as the console page calls them
    ("GET", "/ui/api/session"): "signin.current",
    ("POST", "/ui/api/session"): "signin.sign_in",
    ("DELETE", "/ui/api/session"): "signin.sign_out",
    ("GET", "/ui/api/flags"): "api.list_flags",
    ("POST", "/ui/api/flags"): "api.create_flag",
    ("GET", "/ui/api/flags/{key}"): "api.get_flag",
    ("PUT", "/ui/api/flags/{key}"): "api.update_flag",
    ("POST", "/ui/api/flags/{key}/try"): "api.try_flag",
    ("GET", "/ui/api/flags/{key}/history"): "api.history",
    ("POST", "/ui/api/flags/{key}/rollback"): "api.rollback",
    ("GET", "/ui/api/changes"): "api.changes",
    ("POST", "/ui/api/kill"): "api.kill",
    ("GET", "/ui/api/propagation"): "api.propagation",
    ("GET", "/ui/api/environment"): "api.environment",
    ("GET", "/ui/api/events"): "events.events",
    ("GET", "/ui/api/messages"): "i18n.messages",
    ("GET", "/ui/api/health"): "operations.health_table",
    ("GET", "/ui/api/keys"): "operations.list_keys",
    ("POST", "/ui/api/keys"): "operations.create_key",
    ("POST", "/ui/api/keys/{id}/rotate"): "operations.rotate_key",
    ("POST", "/ui/api/keys/{id}/revoke"): "operations.revoke_key",
}


def test_each_console_route_reaches_its_handler() -> None:
    from vexil.console import api, events, operations, signin

    modules = {"api": api, "events": events, "i18n": i18n, "operations": operations, "signin": signin}
    found = {}
    for name, module in modules.items():
        for route in module.routes():
            assert isinstance(route, web.RouteDef), route
            key = (route.method, route.path)
            assert key not in found, f"{key} routed twice"
            # the handler by the name it has in its module (an endpoint's wrapper is named `run`)
            handler = [attr for attr, value in vars(module).items() if value is route.handler]
            found[key] = f"{name}.{handler[0]}" if len(handler) == 1 else f"{name}: {handler}"
    assert found == CONSOLE_ROUTES


async def test_signing_in_draws_from_the_callers_admin_rate_limit() -> None:
    """README: console requests draw from the credential's admin rate limit; a sign-in is one."""
    settings = server_settings(auth_mode="required", rate_limit_admin=5)
    async with (
        running_app(settings) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        reader = await app.security.keys.create(environment="local", role="evaluator", actor="test")
        statuses = [(await sign_in(http, base, reader.token))[0] for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3


def test_anonymous_sessions_are_callers_of_their_own_and_a_session_in_use_stays() -> None:
    """README: in the open local profile each page's session is a caller of its own, so other
    visitors opening sessions do not close it; a full table drops the least recently used."""
    clock = Clock()
    sessions = Sessions(clock=clock, limit=100)
    operator = sessions.open(credential="", principal=None, expires_at=0)
    others = [sessions.open(credential="", principal=None, expires_at=0) for _ in range(50)]
    assert sessions.get(operator.id) is operator and len(sessions) == 51
    full = Sessions(clock=clock, limit=3)
    a, b, _ = (full.open(credential="", principal=None, expires_at=0) for _ in range(3))
    assert full.get(a.id) is a  # used: now the most recent
    full.open(credential="", principal=None, expires_at=0)
    assert full.get(a.id) is a and full.get(b.id) is None
    assert all(sessions.get(s.id) is s for s in others)


async def test_visitors_opening_sessions_do_not_sign_the_open_profiles_page_out(open_console) -> None:
    http, base = open_console
    await open_session(http, base)
    cookie = http.headers.pop("Cookie")
    for _ in range(25):  # other browsers, scripts, probes
        async with http.get(f"{base}/ui/api/session") as visit:
            assert visit.status == 200
    async with http.get(f"{base}/ui/api/flags", headers={"Cookie": cookie}) as still:
        assert still.status == 200


async def test_one_caller_cannot_take_the_other_callers_event_streams(tmp_path: Path) -> None:
    """README: each caller holds at most 20 open event streams; more are refused (429), and
    another caller's page still gets its live updates."""
    async with (
        running_app(server_settings(auth_mode="required")) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        cookies = {}
        for role in ("editor", "admin"):
            issued = await app.security.keys.create(environment="local", role=role, actor="test")
            status, _, sent = await sign_in(http, base, issued.token)
            assert status == 200
            sent.pop("max-age")
            cookies[role] = sent
        url = f"{base}/ui/api/events?env=local"
        held = []
        try:
            for _ in range(20):
                stream = await http.get(url, headers=cookies["editor"])
                held.append(stream)
                assert stream.status == 200 and await stream.content.readline() == b"retry: 2000\n"
            async with asyncio.timeout(10):  # a 21st stream would never end: bound the wait
                status, error = await answered(http, "GET", url, headers=cookies["editor"])
            assert (status, error.get("code")) == (429, "RESOURCE_EXHAUSTED"), error
            async with http.get(url, headers=cookies["admin"]) as other:
                assert other.status == 200
        finally:
            for stream in held:
                stream.close()


async def test_older_entries_are_reachable_in_the_flag_list_history_and_change_log(monkeypatch) -> None:
    """README: the flag list, a flag's history and the change log each answer a bounded part
    and say how to reach the rest; following them reaches every entry the test wrote."""
    async with (
        running_app(server_settings(cache_maxsize=2000)) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        base = f"http://127.0.0.1:{app.http_port}"
        csrf = await open_session(http, base)

        async def write(method: str, path: str, body: dict) -> None:
            async with http.request(method, f"{base}{path}", json=body, headers=csrf) as done:
                assert done.status in (200, 201), await done.text()

        async def read(path: str, **params: str) -> dict:
            async with http.get(f"{base}{path}", params={"env": "local", **params}) as answer:
                assert answer.status == 200, await answer.text()
                return dict(await answer.json())

        def boolean(key: str, description: str = "") -> dict:
            flag = {"key": key, "variants": {"on": True, "off": False}, "defaultVariant": "off"}
            return {"flag": {**flag, "description": description}}

        await write("POST", "/ui/api/flags", boolean("payments"))  # config version 1
        await write("POST", "/ui/api/kill", {"key": "payments", "killed": True, "reason": "INC-42"})  # 2
        bulk = [f"bulk-{i:04}" for i in range(1050)]
        for key in bulk:  # 3 .. 1052
            await write("POST", "/ui/api/flags", boolean(key))
        for version in range(1, 121):  # 1053 .. 1172: bulk-0000 reaches version 121
            body = {**boolean("bulk-0000", f"tweak {version}"), "expectedVersion": version}
            await write("PUT", "/ui/api/flags/bulk-0000", body)

        first = await read("/ui/api/flags")
        assert (len(first["flags"]), first["total"]) == (1000, 1051)
        rest = await read("/ui/api/flags", offset="1000")
        assert [f["key"] for f in first["flags"] + rest["flags"]] == sorted([*bulk, "payments"])

        page = await read("/ui/api/flags/bulk-0000/history")
        versions = [r["version"] for r in page["revisions"]]
        assert len(versions) == 100 and page["next"]
        older = await read("/ui/api/flags/bulk-0000/history", token=page["next"])
        versions += [r["version"] for r in older["revisions"]]
        assert versions == list(range(121, 0, -1)) and older["next"] == ""

        found = await read("/ui/api/changes", flag="payments")
        assert [(c["version"], c["kind"]) for c in found["changes"]] == [(2, "KILL"), (1, "CREATE")]
        newest = await read("/ui/api/changes")
        assert [c["version"] for c in newest["changes"]] == list(range(1172, 672, -1))
        assert (newest["searchedFrom"], newest["searchedTo"], newest["older"]) == (673, 1172, 673)

        monkeypatch.setattr(console_api, "CHANGES_SCAN", 500)  # one window per answer: follow `older`
        seen, before, answers = [], "", 0
        while True:
            answer = await read("/ui/api/changes", flag="payments", **({"before": before} if before else {}))
            seen += [(c["version"], c["kind"]) for c in answer["changes"]]
            answers += 1
            if answer["older"] is None:
                break
            before = str(answer["older"])
        assert seen == [(2, "KILL"), (1, "CREATE")] and answers == 3


async def test_a_jwt_without_a_known_role_is_treated_as_the_api_treats_it(tmp_path: Path) -> None:
    """The API authenticates a JWT whose role it does not know and refuses every call that needs
    a role, saying "no role"; the console signs it in and refuses the same way, in the same words."""
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET)
    settings = server_settings(
        auth_mode="required", jwt_secret_file=str(secret), jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    token = person("superuser", 600)  # a role vexil does not have
    async with (
        running_app(settings) as app,
        connected(app) as api,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.admin.ListFlags(
                admin_pb2.ListFlagsRequest(environment="local"),
                metadata=[("authorization", f"Bearer {token}")],
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no role" in (refused.value.details() or "")

        base = f"http://127.0.0.1:{app.http_port}"
        status, body, sent = await sign_in(http, base, token)
        sent.pop("max-age")
        assert (status, body["role"]) == (200, "")
        assert body["can"] == {"read": False, "write": False, "kill": False, "keys": False}
        status, error = await answered(http, "GET", f"{base}/ui/api/flags", headers=sent)
        assert (status, error["code"]) == (403, "PERMISSION_DENIED")
        assert error["message"].endswith("these credentials have no role"), error
