"""Every `vexil` command that talks to a server speaks TLS and sends the credential the same way:
against a real TLS server with authentication required, `status`, `ops check`, `backup export`
and `flags list` work with `--ca-cert` and `--token` (or their variables), and none falls back
to plaintext gRPC or `http://`: the HTTP side is verified as the channel is (`--tls-server-name`),
a redirect never takes the token along, and a client certificate the server refuses is reported
as a refused credential, not as a server that is down."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from tests.support.flags import flag_pb
from tests.support.ops import vexil
from tests.support.pki import SERVICE_NAME, PkiFiles
from tests.support.secure import Secure, open_secure
from tests.support.servers import free_port, running_app, server_settings
from tests.support.site import site
from vexil.security.tls import TlsFiles, server_context
from vexil.v1 import admin_pb2

# The README's exit-code table ("Configuration reference", "Exit codes"), written out here.
USAGE = 2
"""2: bad usage (a TLS file problem is found before connecting)."""
NOT_ALLOWED = 5
"""5: not allowed: missing or refused credentials."""
UNAVAILABLE = 6
"""6: server unavailable."""
CRITICAL = 7
"""7: a health indicator is critical (`vexil status`), a check FAILed (`vexil ops check`)."""


def tls_args(secure: Secure, pki: PkiFiles) -> list[str]:
    """Only the gRPC target and the CA: the HTTP side is found from them (https, port below)."""
    return ["--target", secure.target, "--ca-cert", pki.ca, "--token", secure.tokens["root"]]


def http_env(secure: Secure) -> dict[str, str]:
    """The test server's HTTP port is not 3001: name it through the documented variable."""
    return {"VEXIL_HTTP_URL": f"https://127.0.0.1:{secure.app.http_port}"}


async def create_flag(secure: Secure) -> None:
    await secure.admin.CreateFlag(
        admin_pb2.CreateFlagRequest(flag=flag_pb("tls-flag", default="on", environment="local")),
        metadata=secure.md("root"),
    )


async def test_status_reads_grpc_and_https_metrics_over_tls(secure: Secure, pki: PkiFiles) -> None:
    await create_flag(secure)
    ran = await vexil("status", *tls_args(secure, pki), "--json", env=http_env(secure))
    assert ran.code == 0, ran.out + ran.err
    data = json.loads(ran.out)
    assert data["state"] == "SERVING"
    assert data["problems"] == [], data["problems"]  # /metrics was read over https
    by_name = {i["indicator"]: i for i in data["indicators"]}
    assert by_name["availability"]["value"] is not None


async def test_status_over_tls_with_variables_only(secure: Secure, pki: PkiFiles) -> None:
    env = {
        **http_env(secure),
        "VEXIL_TARGET": secure.target,
        "VEXIL_CA_CERT": pki.ca,
        "VEXIL_TOKEN": secure.tokens["root"],
    }
    ran = await vexil("status", "--json", env=env)
    assert ran.code == 0, ran.out + ran.err
    assert json.loads(ran.out)["problems"] == []


async def test_ops_check_daily_reaches_a_tls_server(secure: Secure, pki: PkiFiles) -> None:
    await create_flag(secure)
    ran = await vexil("ops", "check", "daily", *tls_args(secure, pki), "--json", env=http_env(secure))
    results = {r["check"]: r for r in json.loads(ran.out)["results"]}
    assert results["health"]["status"] == "PASS", results["health"]
    for name in ("error-rate", "performance", "security-alerts", "stale-flags"):
        assert results[name]["status"] != "FAIL", results[name]
        assert "cannot read" not in results[name]["summary"], results[name]
    assert results["keys"]["status"] in ("PASS", "WARN"), results["keys"]  # listed through KeyService


async def test_backup_export_from_a_tls_server(secure: Secure, pki: PkiFiles, tmp_path: Path) -> None:
    await create_flag(secure)
    out = tmp_path / "export.json"
    ran = await vexil("backup", "export", str(out), *tls_args(secure, pki), "--json", "--quiet")
    assert ran.code == 0, ran.out + ran.err
    assert json.loads(ran.out)["itemCount"] >= 2  # the environment and the flag at least
    assert "FLAG#local#tls-flag" in out.read_text()


async def test_flags_list_over_tls(secure: Secure, pki: PkiFiles) -> None:
    await create_flag(secure)
    ran = await vexil("flags", "list", *tls_args(secure, pki), "-e", "local", "--json")
    assert ran.code == 0, ran.out + ran.err
    assert [f["key"] for f in json.loads(ran.out)] == ["tls-flag"]


async def test_a_plaintext_client_is_refused_not_silently_downgraded(secure: Secure) -> None:
    ran = await vexil("status", "--target", secure.target, "--json", "--timeout", "3")
    assert ran.code == UNAVAILABLE, ran.out + ran.err


async def test_tls_mismatches_say_what_to_change(secure: Secure, pki: PkiFiles) -> None:
    """gRPC reports every TLS disagreement as UNAVAILABLE, a server that is down, in its TLS
    library's words (a plaintext client to a TLS server sees only "Socket closed").  Each is
    named with the option that fixes it; the exit code stays 6 (the README's table).  gRPC's own
    per-handshake log line is not printed beside it."""
    mismatches = {
        # what is wrong: (server, client options, words the message must hold)
        "plaintext to a TLS server": ("tls", [], ["serves TLS", "--ca-cert", "--tls"]),
        "the system's CAs for a private CA": (
            "tls",
            ["--tls"],
            ["did not verify", "no CA this system trusts signed it", "--ca-cert"],
        ),
        "a CA that did not sign it": (
            "tls",
            ["--ca-cert", pki.rogue_ca],
            ["did not verify", f"--ca-cert {pki.rogue_ca} did not sign it"],
        ),
        "another name": (
            "tls",
            ["--ca-cert", pki.ca, "--tls-server-name", "vexil.example"],
            ["does not name vexil.example", "localhost, 127.0.0.1", "--tls-server-name"],
        ),
        "an expired certificate": ("expired", ["--ca-cert", pki.ca], ["not valid now", "expired"]),
        "TLS to a plaintext server": ("plain", ["--ca-cert", pki.ca], ["did not answer in TLS", "--tls"]),
    }
    expired = {"tls_cert": pki.expired_server_cert, "tls_key": pki.expired_server_key}
    async with open_secure(pki, **expired) as old, running_app(server_settings()) as plain:
        targets = {"tls": secure.target, "expired": old.target, "plain": f"127.0.0.1:{plain.port}"}
        for what, (server, client, words) in mismatches.items():
            args = ["--target", targets[server], *client, "--timeout", "3"]
            for command in (["flags", "list"], ["status", "--json"]):
                ran = await vexil(*command, *args)
                assert ran.code == UNAVAILABLE, (what, command, ran.out + ran.err)
                said = ran.out if command[0] == "status" else ran.err
                assert all(word in said for word in words), (what, command, said)
                assert "Traceback" not in ran.err and "Handshake failed" not in ran.err, (what, ran.err)


async def test_status_with_mutual_tls(pki: PkiFiles) -> None:
    """Under mTLS both ports want the client certificate: gRPC and the https scrape present it."""
    async with open_secure(pki, mtls=True) as server:
        root = await server.issue("admin", "*")
        args = ["--target", server.target, "--ca-cert", pki.ca, "--token", root]
        client = ["--client-cert", pki.client_cert, "--client-key", pki.client_key]
        ran = await vexil("status", *args, *client, "--json", env=http_env(server))
        without = await vexil("status", *args, "--json", "--timeout", "3", env=http_env(server))
    assert ran.code == 0, ran.out + ran.err
    assert json.loads(ran.out)["problems"] == []
    # No certificate: neither port lets the client in; that is a refused credential, not an outage.
    assert without.code == NOT_ALLOWED, without.out + without.err


async def test_client_certificate_mistakes_are_named_not_reported_as_an_outage(pki: PkiFiles) -> None:
    """A key that is not the certificate's is found before connecting (the files are named); a
    certificate the server refuses, or none, is a refused credential with what to give."""
    mistakes = {
        # what is wrong: (client options, exit code, words the message must hold)
        "no client certificate": ([], NOT_ALLOWED, ["--client-cert and --client-key"]),
        "a certificate of another CA": (
            ["--client-cert", pki.rogue_client_cert, "--client-key", pki.rogue_client_key],
            NOT_ALLOWED,
            [pki.rogue_client_cert, "trusts for clients"],
        ),
        "a key not of the certificate": (
            ["--client-cert", pki.client_cert, "--client-key", pki.rogue_client_key],
            USAGE,
            [pki.client_cert, pki.rogue_client_key, "is not the key of that certificate"],
        ),
    }
    async with open_secure(pki, mtls=True) as server:
        root = await server.issue("admin", "*")
        args = ["--target", server.target, "--ca-cert", pki.ca, "--token", root, "--timeout", "3"]
        for what, (client, code, words) in mistakes.items():
            for command in (["flags", "list"], ["status", "--json"]):
                ran = await vexil(*command, *args, *client, env=http_env(server))
                assert ran.code == code, (what, command, ran.out + ran.err)
                said = ran.err if code == USAGE or command[0] != "status" else ran.out
                assert all(word in said for word in words), (what, command, said)
                assert "Traceback" not in ran.err, ran.err


async def test_the_https_side_is_verified_against_the_tls_server_name(pki: PkiFiles) -> None:
    """A certificate naming the service, reached at an address: the name given for gRPC
    (`--tls-server-name` or `VEXIL_TLS_SERVER_NAME`) is the one `/metrics` is verified as too."""
    named = {"tls_cert": pki.named_server_cert, "tls_key": pki.named_server_key}
    async with open_secure(pki, **named) as server:
        root = await server.issue("admin", "*")
        args = ["--target", server.target, "--ca-cert", pki.ca, "--token", root, "--json"]
        status = await vexil("status", *args, "--tls-server-name", SERVICE_NAME, env=http_env(server))
        check = await vexil(
            "ops", "check", "daily", *args, env={**http_env(server), "VEXIL_TLS_SERVER_NAME": SERVICE_NAME}
        )
    assert status.code == 0, status.out + status.err
    assert json.loads(status.out)["problems"] == []
    results = {r["check"]: r for r in json.loads(check.out)["results"]}
    assert results["health"]["status"] == "PASS", results["health"]
    assert "cannot read" not in results["error-rate"]["summary"], results["error-rate"]


async def test_a_redirect_of_the_metrics_url_is_not_followed_with_the_token(
    secure: Secure, pki: PkiFiles
) -> None:
    """An https `/metrics` that redirects to `http://`: following it would hand the bearer token
    to a plaintext listener.  Neither command follows it; both report the redirect."""
    seen: list[str] = []
    plain_port, tls_port = free_port(), free_port()

    async def plain(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", "(none)"))
        return web.Response(text="")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{plain_port}/metrics")

    plain_app, redirect_app = web.Application(), web.Application()
    plain_app.router.add_get("/metrics", plain)
    redirect_app.router.add_get("/metrics", redirect)
    env = {"VEXIL_HTTP_URL": f"https://127.0.0.1:{tls_port}"}
    async with (
        site(plain_app, plain_port),
        site(redirect_app, tls_port, server_context(TlsFiles(pki.server_cert, pki.server_key))),
    ):
        status = await vexil("status", *tls_args(secure, pki), "--json", env=env)
        check = await vexil("ops", "check", "daily", *tls_args(secure, pki), "--json", env=env)
    assert seen == []
    assert status.code == CRITICAL, status.out + status.err  # the metrics cannot be read
    problems = json.loads(status.out)["problems"]
    assert any("redirects (302)" in p and f"127.0.0.1:{plain_port}" in p for p in problems), problems
    results = {r["check"]: r for r in json.loads(check.out)["results"]}
    assert "redirects (302)" in results["error-rate"]["summary"], results["error-rate"]
