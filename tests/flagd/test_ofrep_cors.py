"""CORS on OFREP (`cors_origins`): preflights and answers for allowed browser origins only.

The raw protocol, as a browser speaks it (the browser itself: tests/flagd/test_ofrep_browser.py).
Expected header values are the CORS rules (Fetch standard), written out here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.flags import flag_pb
from tests.support.servers import Connected, ServerProcess, connected, running_app, server_settings
from vexil import config
from vexil.v1 import admin_pb2

ALLOWED = "http://127.0.0.1:8123"
ALSO_ALLOWED = "https://app.example.com"
FOREIGN = "http://127.0.0.1:9999"
FLAG = "/ofrep/v1/evaluate/flags/cors-flag"
BULK = "/ofrep/v1/evaluate/flags"
# What the OFREP web provider sends (its fetch adds Content-Type and, on a re-poll, If-None-Match).
PROVIDER_HEADERS = "content-type,if-none-match"


def preflight(origin: str, headers: str = PROVIDER_HEADERS) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


@contextlib.asynccontextmanager
async def served(cors_origins: tuple[str, ...]) -> AsyncIterator[tuple[Connected, aiohttp.ClientSession]]:
    settings = server_settings(cors_origins=cors_origins)
    async with running_app(settings) as app, connected(app) as conn:
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("cors-flag", default="on")))
        async with aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
            yield conn, http


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with served((ALLOWED, ALSO_ALLOWED.upper())) as (_, session):
        yield session


@pytest.fixture
async def http_without_cors() -> AsyncIterator[aiohttp.ClientSession]:
    async with served(()) as (_, session):
        yield session


def tokens(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


@pytest.mark.parametrize("origin", [ALLOWED, ALSO_ALLOWED])
async def test_preflight_from_an_allowed_origin(http: aiohttp.ClientSession, origin: str) -> None:
    for path in (FLAG, BULK):
        headers = preflight(origin, "content-type,authorization,if-none-match,flagd-selector")
        async with http.options(path, headers=headers) as response:
            assert response.status == 204, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert "post" in tokens(response.headers.get("Access-Control-Allow-Methods"))
            allowed = tokens(response.headers.get("Access-Control-Allow-Headers"))
            assert {"content-type", "authorization", "if-none-match", "flagd-selector"} <= allowed
            assert "origin" in tokens(response.headers.get("Vary"))


async def test_preflight_from_a_foreign_origin_is_refused(http: aiohttp.ClientSession) -> None:
    for origin in (FOREIGN, "null", ALLOWED + "/", "http://127.0.0.1:81230"):
        async with http.options(FLAG, headers=preflight(origin)) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "cors_origins" in (await response.json())["errorDetails"]


async def test_answers_carry_cors_headers_for_allowed_origins_only(http: aiohttp.ClientSession) -> None:
    body = {"context": {"targetingKey": "u1"}}
    async with http.post(FLAG, json=body, headers={"Origin": ALLOWED}) as response:
        assert response.status == 200 and (await response.json())["value"] is True
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "origin" in tokens(response.headers.get("Vary"))
    async with http.post(BULK, json=body, headers={"Origin": ALLOWED}) as response:
        assert response.status == 200
        # The page's provider reads the ETag to send If-None-Match: it must be exposed.
        assert "etag" in tokens(response.headers.get("Access-Control-Expose-Headers"))
        tag = response.headers["ETag"]
    async with http.post(BULK, json=body, headers={"Origin": ALLOWED, "If-None-Match": tag}) as response:
        assert response.status == 304 and response.headers["Access-Control-Allow-Origin"] == ALLOWED
    # Errors too, so the page can read why.
    async with http.post("/ofrep/v1/evaluate/flags/nope", json=body, headers={"Origin": ALLOWED}) as response:
        assert response.status == 404 and response.headers["Access-Control-Allow-Origin"] == ALLOWED
    # The same request from a foreign origin is answered (CORS is the browser's to enforce),
    # but without the header that would let a page read the answer.
    async with http.post(FLAG, json=body, headers={"Origin": FOREIGN}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    # Health is not for browsers.
    async with http.get("/healthz", headers={"Origin": ALLOWED}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_no_origin_is_allowed_by_default(http_without_cors: aiohttp.ClientSession) -> None:
    async with http_without_cors.options(FLAG, headers=preflight(ALLOWED)) as response:
        assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
    async with http_without_cors.post(FLAG, json={}, headers={"Origin": ALLOWED}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_star_allows_every_origin() -> None:
    async with served(("*",)) as (_, http):
        async with http.options(BULK, headers=preflight(FOREIGN)) as response:
            assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == FOREIGN
        async with http.post(BULK, json={}, headers={"Origin": FOREIGN}) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == FOREIGN


async def test_preflight_needs_no_credentials_when_ofrep_does(tmp_path: Path) -> None:
    """`vexil serve` with authentication on and VEXIL_CORS_ORIGINS: browsers send no credentials
    with a preflight, so it is answered; the request itself still needs them, and its 401 is
    readable by the page."""
    admin = "vxk_0000000000000001_" + "k" * 43
    env = {"VEXIL_BOOTSTRAP_ADMIN_KEY": admin, "VEXIL_CORS_ORIGINS": f"{ALLOWED}, {ALSO_ALLOWED}"}
    with ServerProcess(tmp_path, env=env) as server:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.http_port}") as http:
            async with http.options(
                FLAG, headers=preflight(ALSO_ALLOWED, "content-type,authorization")
            ) as resp:
                assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == ALSO_ALLOWED
            async with http.post(FLAG, json={}, headers={"Origin": ALLOWED}) as resp:
                assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == ALLOWED
            headers = {"Origin": ALLOWED, "Authorization": f"Bearer {admin}"}
            async with http.post(FLAG, json={}, headers=headers) as resp:
                assert resp.status == 404 and resp.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize(
    "value", ["http://a.example/", "a.example", "http://a.example/path", "ftp://a.example", "http://a b"]
)
def test_a_bad_origin_stops_start_up_naming_the_setting(value: str) -> None:
    with pytest.raises(config.ConfigError, match=r"cors_origins \(from VEXIL_CORS_ORIGINS\).*scheme://host"):
        config.load(environ={"VEXIL_CORS_ORIGINS": f"https://ok.example,{value}"})


def test_origins_come_from_every_source() -> None:
    loaded = config.load(environ={"VEXIL_CORS_ORIGINS": "http://127.0.0.1:8123, https://[::1]:8443,*"})
    assert loaded.cors_origins == ("http://127.0.0.1:8123", "https://[::1]:8443", "*")
    assert config.load(environ={}).cors_origins == ()
    assert config.load(cli={"cors_origins": "https://a.example"}, environ={}).cors_origins == (
        "https://a.example",
    )
