"""Insecure is loud: a server serving without TLS or authentication where that matters says so
with a WARNING at start and every few minutes, a `vexil_insecure` gauge and in GetStatus;
plaintext on a non-loopback address counts in every profile."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.ops import server_args, vexil
from tests.support.pki import PkiFiles
from tests.support.servers import ServerProcess, connected, running_app, server_settings
from vexil import config
from vexil.security import insecure
from vexil.v1 import admin_pb2

NO_TLS_PROD = "env 'prod' serves without TLS (--insecure)"
NO_AUTH_PROD = "env 'prod' serves without authentication (--insecure)"
BOOTSTRAP = "vxk_00000000000000bb_" + "c" * 43

REASONS: list[tuple[dict[str, Any], list[str]]] = [
    # settings (TLS files added where "tls" is set) -> what the server must say is insecure
    ({}, []),
    ({"host": "127.0.0.2"}, []),
    ({"host": "::1"}, []),
    ({"env": "prod", "insecure": True}, [NO_TLS_PROD]),
    ({"env": "prod", "insecure": True, "auth_mode": "none"}, [NO_TLS_PROD, NO_AUTH_PROD]),
    (
        {"env": "prod", "insecure": True, "host": "0.0.0.0"},
        [NO_TLS_PROD, "plaintext (no TLS) on the non-loopback address 0.0.0.0"],
    ),
    (
        {"env": "prod", "insecure": True, "auth_mode": "none", "host": "0.0.0.0"},
        [NO_TLS_PROD, NO_AUTH_PROD, "plaintext (no TLS) on the non-loopback address 0.0.0.0"],
    ),
    ({"env": "prod", "tls": True, "auth_mode": "required", "host": "0.0.0.0"}, []),
    ({"env": "prod", "tls": True, "auth_mode": "none", "insecure": True}, [NO_AUTH_PROD]),
    (
        {"host": "0.0.0.0", "bootstrap_admin_key": BOOTSTRAP},
        ["plaintext (no TLS) on the non-loopback address 0.0.0.0"],
    ),
    (
        {"host": "10.1.2.3", "insecure": True},
        [
            "plaintext (no TLS) on the non-loopback address 10.1.2.3",
            "no authentication on the non-loopback address 10.1.2.3 (--insecure)",
        ],
    ),
    ({"host": "0.0.0.0", "tls": True, "auth_mode": "required"}, []),
]


@pytest.mark.parametrize(("overrides", "expected"), REASONS)
def test_what_counts_as_insecure(pki: PkiFiles, overrides: dict[str, Any], expected: list[str]) -> None:
    values = dict(overrides)
    if values.pop("tls", False):
        values.update(tls_cert=pki.server_cert, tls_key=pki.server_key)
    settings = config.load(cli=values, environ={})
    config.require_secure(settings)  # each of these is allowed to start
    assert config.insecure_reasons(settings) == expected


async def metric(app: Any, name: str) -> float:
    url = f"http://127.0.0.1:{app.http_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, text
    return values[0]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "INSECURE" in r.getMessage()
    ]


async def test_an_insecure_server_says_so_at_start_and_again_while_it_runs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insecure, "REPEAT_SECONDS", 0.2)
    caplog.set_level(logging.WARNING, logger="vexil.security")
    async with (
        running_app(server_settings(env="prod", insecure=True, auth_mode="none")) as app,
        connected(app) as conn,
    ):
        said = warnings_of(caplog)
        assert len(said) >= 1 and NO_TLS_PROD in said[0] and NO_AUTH_PROD in said[0]
        deadline = time.monotonic() + 10.0
        while len(warnings_of(caplog)) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(warnings_of(caplog)) >= 3, "the warning is not repeated while the server runs"

        status = await conn.admin.GetStatus(admin_pb2.GetStatusRequest())
        assert status.insecure and list(status.insecure_reasons) == [NO_TLS_PROD, NO_AUTH_PROD]
        assert await metric(app, "vexil_insecure") == 1.0
        shown = await vexil("status", *server_args(app))
        assert f"INSECURE: {NO_TLS_PROD}" in shown.out and f"INSECURE: {NO_AUTH_PROD}" in shown.out
        assert "overall: WARN" in shown.out, shown.out
    count = len(warnings_of(caplog))
    await asyncio.sleep(0.5)
    assert len(warnings_of(caplog)) == count, "the warning outlived the server"


async def test_a_secure_server_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="vexil.security")
    async with running_app(server_settings()) as app, connected(app) as conn:
        status = await conn.admin.GetStatus(admin_pb2.GetStatusRequest())
        assert not status.insecure and not status.insecure_reasons
        assert await metric(app, "vexil_insecure") == 0.0
    assert warnings_of(caplog) == []


def test_vexil_serve_insecure_in_prod_warns_on_stderr(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--env", "prod", "--insecure", "--auth-mode", "none") as server:
        pass
    lines = [line for line in server.stderr.splitlines() if "INSECURE" in line]
    assert lines and "WARNING" in lines[0], server.stderr
    assert NO_TLS_PROD in lines[0] and NO_AUTH_PROD in lines[0]
