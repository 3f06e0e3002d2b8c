"""Scope everywhere: GetStatus names only the caller's environments, evaluation errors speak of
the rule (never Python), and outside the local profile `/metrics` and the `/readyz` detail need
a credential for every environment while `/healthz` and a bare ready / not ready stay open."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.pki import PkiFiles
from tests.support.secure import Secure, code_of, open_secure
from tests.support.servers import bearer
from vexil.v1 import admin_pb2, evaluation_pb2, keys_pb2

STATUS_SEEN = {
    # caller -> environments GetStatus may name (the server serves local and beta)
    "editor": ["local"],
    "beta-editor": ["beta"],
    "admin": ["local"],
    "root": ["beta", "local"],
}


async def test_status_shows_only_the_callers_environments(secure: Secure) -> None:
    for who, seen in STATUS_SEEN.items():
        status = await secure.admin.GetStatus(admin_pb2.GetStatusRequest(), metadata=secure.md(who))
        assert sorted(env.name for env in status.environments) == seen, who
        assert status.state == admin_pb2.ServerStatus.STATE_SERVING


FAILING_RULES = {
    # targeting -> the error message an evaluation with {"n": 0} must carry
    "ratio": (
        {"if": [{"/": [1, {"var": "n"}]}, "on", "off"]},
        "flag 'ratio': division by zero in targeting at targeting.if[0]./",
    ),
    "bucket": (
        {"if": [{"==": [{"%": [7, {"var": "n"}]}, 1]}, "on", "off"]},
        "flag 'bucket': division by zero in targeting at targeting.if[0].==[0].%",
    ),
}
PYTHON_WORDS = ("Error", "Exception", "Traceback", "sys.", "int_max_str_digits")


async def test_evaluation_errors_name_the_rule_not_python(secure: Secure) -> None:
    for key, (targeting, message) in FAILING_RULES.items():
        flag = flag_pb(key, targeting=targeting)
        await secure.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag), metadata=secure.md("editor"))
        request = evaluation_pb2.EvaluateRequest(flag_key=key)
        request.context.update({"n": 0})
        response = await secure.evaluation.Evaluate(request, metadata=secure.md("evaluator"))
        assert response.reason == evaluation_pb2.REASON_ERROR
        assert response.error_message == message
        assert not any(word in response.error_message for word in PYTHON_WORDS)


def _tls(pki: PkiFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=pki.ca)


async def _get(server: Secure, pki: PkiFiles, path: str, token: str = "") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"https://localhost:{server.app.http_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers, ssl=_tls(pki)) as r:
        return r.status, await r.text()


@pytest.mark.parametrize("profile", ["prod", "staging", "dev"])
async def test_metrics_and_readiness_detail_need_credentials_outside_local(
    pki: PkiFiles, profile: str
) -> None:
    async with open_secure(pki, env=profile) as server:
        scoped = await server.issue("admin", "local")
        everywhere = await server.issue("evaluator", "*")
        garbage = "vxk_0123456789abcdef_" + "x" * 43

        assert (await _get(server, pki, "/healthz"))[0] == 200
        for token, status in (("", 401), (garbage, 401), (scoped, 403), (everywhere, 200)):
            got, body = await _get(server, pki, "/metrics", token)
            assert got == status, (token[:20], got, body)
            if status != 200:
                assert "local" not in body and "vexil_" not in body
        assert "vexil_" in (await _get(server, pki, "/metrics", everywhere))[1]

        for token in ("", garbage, scoped):
            got, body = await _get(server, pki, "/readyz", token)
            assert (got, json.loads(body)) == (200, {"status": "ready"})
        got, body = await _get(server, pki, "/readyz", everywhere)
        detail = json.loads(body)
        assert got == 200 and detail["status"] == "ready"
        assert sorted(env["environment"] for env in detail["environments"]) == ["beta", "local"]


async def test_the_local_profile_keeps_metrics_and_readiness_open(secure: Secure, pki: PkiFiles) -> None:
    assert secure.app.settings.env == "local"
    got, body = await _get(secure, pki, "/metrics")
    assert got == 200 and "vexil_" in body
    got, body = await _get(secure, pki, "/readyz")
    assert got == 200 and "environments" in json.loads(body)


async def test_a_request_naming_no_environment_acts_in_the_credentials_only_one(secure: Secure) -> None:
    """The server's default is `local`; credentials scoped to `beta` alone mean `beta` wherever a
    request leaves its environment empty, on every RPC that takes one."""
    md = secure.md("beta-admin")
    admin = secure.admin
    created = await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("scoped")), metadata=md)
    updated = await admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(flag=flag_pb("scoped", default="on")), metadata=md
    )
    got = await admin.GetFlag(admin_pb2.GetFlagRequest(key="scoped"), metadata=md)
    listed = await admin.ListFlags(admin_pb2.ListFlagsRequest(), metadata=md)
    history = await admin.GetFlagHistory(admin_pb2.GetFlagHistoryRequest(key="scoped"), metadata=md)
    rolled = await admin.RollbackFlag(admin_pb2.RollbackFlagRequest(key="scoped", to_version=1), metadata=md)
    killed = await admin.SetKillSwitch(
        admin_pb2.SetKillSwitchRequest(flag_key="scoped", killed=True, reason="test"), metadata=md
    )
    changes = await admin.ListChanges(admin_pb2.ListChangesRequest(), metadata=md)
    environment = await admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(), metadata=md)
    waited = await admin.WaitForPropagation(
        admin_pb2.WaitForPropagationRequest(timeout_seconds=5), metadata=md
    )
    request = admin_pb2.UpdateEnvironmentRequest()
    request.metadata.update({"team": "scoped"})
    updated_environment = await admin.UpdateEnvironment(request, metadata=md)
    evaluated = await secure.evaluation.Evaluate(
        evaluation_pb2.EvaluateRequest(flag_key="scoped"), metadata=secure.md("beta-evaluator")
    )
    key = await secure.key_service.CreateKey(
        keys_pb2.CreateKeyRequest(role=keys_pb2.ROLE_EVALUATOR), metadata=md
    )
    await admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="scoped"), metadata=md)
    absent = await code_of(
        admin.GetFlag(admin_pb2.GetFlagRequest(key="scoped", environment="beta"), metadata=md)
    )

    flags = [created.flag, updated.flag, got, rolled.flag, killed.flag, *listed.flags]
    assert [f.environment for f in flags] == ["beta"] * 6
    assert [r.flag.environment for r in history.revisions] == ["beta", "beta"]
    assert {c.environment for c in changes.changes} == {"beta"}
    assert (environment.name, updated_environment.name, waited.environment) == ("beta", "beta", "beta")
    assert evaluated.reason == evaluation_pb2.REASON_DISABLED  # the beta flag, killed above
    assert key.key.environment == "beta"
    assert absent[0] == grpc.StatusCode.NOT_FOUND  # DeleteFlag deleted the beta flag


async def test_the_console_event_stream_defaults_to_the_credentials_only_environment(
    secure: Secure, pki: PkiFiles
) -> None:
    """As every RPC: a console session of a key scoped to `beta` alone, opening the change stream
    without naming an environment, follows `beta` (the server's default, `local`, is not its)."""
    token = await secure.issue("editor", "beta")
    base = f"https://localhost:{secure.app.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(f"{base}/ui/api/session", json={"credential": token}, ssl=_tls(pki)) as signed:
            assert signed.status == 200
            cookie = {"Cookie": f"vexil_console={signed.cookies['vexil_console'].value}"}
        root = secure.md("root")
        await secure.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb("moved", environment="beta")), metadata=root
        )
        beta, local = [
            await secure.admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment=env), metadata=root)
            for env in ("beta", "local")
        ]
        assert beta.config_version != local.config_version
        async with http.get(f"{base}/ui/api/events", headers=cookie, ssl=_tls(pki)) as stream:
            assert stream.status == 200
            async with asyncio.timeout(10):
                while not (line := (await stream.content.readline()).decode()).startswith("data: "):
                    pass
            opened = json.loads(line[6:])
            assert (opened["type"], opened["version"]) == ("opened", beta.config_version)


async def test_keys_are_scoped_alike_through_the_console_and_the_api(secure: Secure, pki: PkiFiles) -> None:
    """A `beta` admin creating keys: one refusal for another environment (the API's words through
    both adapters), and an environment left out (or not a string) read the same way."""
    token = await secure.issue("admin", "beta")
    with pytest.raises(grpc.aio.AioRpcError) as api_refusal:
        await secure.key_service.CreateKey(
            keys_pb2.CreateKeyRequest(role=keys_pb2.ROLE_EVALUATOR, environment="local"),
            metadata=bearer(token),
        )
    assert api_refusal.value.code() == grpc.StatusCode.PERMISSION_DENIED
    base = f"https://localhost:{secure.app.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(f"{base}/ui/api/session", json={"credential": token}, ssl=_tls(pki)) as signed:
            session = await signed.json()
            headers = {
                "Cookie": f"vexil_console={signed.cookies['vexil_console'].value}",
                "X-CSRF-Token": session["csrf"],
            }

        async def create(body: dict) -> tuple[int, dict]:
            async with http.post(f"{base}/ui/api/keys", json=body, headers=headers, ssl=_tls(pki)) as answer:
                return answer.status, await answer.json()

        status, refused = await create({"role": "evaluator", "environment": "local"})
        assert (status, refused["error"]["code"]) == (403, "PERMISSION_DENIED")
        assert refused["error"]["message"] == api_refusal.value.details()
        status, everywhere = await create({"role": "evaluator", "environment": "*"})
        assert (status, everywhere["error"]["code"]) == (403, "PERMISSION_DENIED")
        status, unnamed = await create({"role": "evaluator", "environment": None})
        assert (status, unnamed["error"]["field"]) == (400, "environment")
        status, made = await create({"role": "evaluator"})
        assert status == 201 and made["key"]["environment"] == "beta"
