"""Refusals made before a handler runs (authentication, roles, scope, rate limits) and those of
an open stream carry the richer error model too: a reason a client can branch on and, for rate
limits, how long to wait (RetryInfo, beside the `retry-after` trailer older clients read).

Real TLS servers with authentication; the expected reasons and delays come from the API's
contract (a limit of 1 call per minute frees its next call in 60 s), not from the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from tests.support.pki import PkiFiles
from tests.support.richstatus import RichError, rich_error
from tests.support.secure import Secure, freeze, open_secure
from tests.support.servers import connected, running_app, server_settings
from vexil.v1 import admin_pb2, evaluation_pb2, keys_pb2, keys_pb2_grpc

C = grpc.StatusCode
DOMAIN = "vexil.dev"


def expect(found: RichError, code: grpc.StatusCode, reason: str, retry: float | None = None) -> None:
    assert (found.code, found.reason, found.domain) == (code, reason, DOMAIN), found
    assert found.infos == 1, found
    assert found.retry_seconds == retry, found


def evaluate(server: Secure, md: Any, **fields: Any) -> Any:
    return server.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="f", **fields), metadata=md)


async def test_authentication_and_authorization_refusals(secure: Secure) -> None:
    table = {
        "no credentials": (evaluate(secure, ()), C.UNAUTHENTICATED, "CREDENTIALS_MISSING"),
        "a malformed key": (
            evaluate(secure, (("authorization", "Bearer vxk_nonsense"),)),
            C.UNAUTHENTICATED,
            "CREDENTIALS_INVALID",
        ),
        "an evaluator reading a flag definition": (
            secure.admin.GetFlag(admin_pb2.GetFlagRequest(key="f"), metadata=secure.md("evaluator")),
            C.PERMISSION_DENIED,
            "ROLE_TOO_LOW",
        ),
        "a beta key evaluating in local": (
            evaluate(secure, secure.md("beta-evaluator"), environment="local"),
            C.PERMISSION_DENIED,
            "ENVIRONMENT_NOT_ALLOWED",
        ),
    }
    for name, (call, code, reason) in table.items():
        found, _ = await rich_error(call)
        assert found.code == code, name
        expect(found, code, reason)


async def test_an_unknown_api_key(secure: Secure) -> None:
    request = keys_pb2.RevokeKeyRequest(id="0123456789abcdef", reason="test")
    found, _ = await rich_error(secure.key_service.RevokeKey(request, metadata=secure.md("root")))
    expect(found, C.NOT_FOUND, "API_KEY_NOT_FOUND")


async def test_an_evaluation_quota_says_when_to_retry(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_evaluation_client=1) as server:
        token = await server.issue("evaluator")
        freeze(server)  # no refill: the second call is over the quota of 1 call per second
        md = (("authorization", f"Bearer {token}"),)
        first = evaluate(server, md)
        await first
        found, trailers = await rich_error(evaluate(server, md))
        expect(found, C.RESOURCE_EXHAUSTED, "EVALUATION_QUOTA_EXCEEDED", retry=1.0)
        assert trailers.get("retry-after") == "1"


async def test_the_admin_rate_limit_says_when_to_retry(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_admin=1) as server:
        token = await server.issue("admin")
        freeze(server)
        md = (("authorization", f"Bearer {token}"),)
        status = admin_pb2.GetStatusRequest()
        await server.admin.GetStatus(status, metadata=md)
        found, trailers = await rich_error(server.admin.GetStatus(status, metadata=md))
        expect(found, C.RESOURCE_EXHAUSTED, "RATE_LIMITED", retry=60.0)
        assert found.metadata.get("retry_after_seconds") == "60"
        assert trailers.get("retry-after") == "60"


async def test_a_stream_whose_key_is_revoked_ends_with_a_reason(secure: Secure) -> None:
    token = await secure.issue("evaluator")
    stream = secure.evaluation.Watch(
        evaluation_pb2.WatchRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    await asyncio.wait_for(stream.read(), 5)  # the opening snapshot
    await secure.key_service.RevokeKey(keys_pb2.RevokeKeyRequest(id=token[4:20]), metadata=secure.md("root"))
    found, _ = await asyncio.wait_for(rich_error(stream), 5)
    expect(found, C.UNAUTHENTICATED, "CREDENTIALS_CLOSED")


async def test_key_management_without_authentication_says_so() -> None:
    async with running_app(server_settings()) as app, connected(app) as conn:
        keys = keys_pb2_grpc.KeyServiceStub(conn.channel)
        found, _ = await rich_error(keys.ListKeys(keys_pb2.ListKeysRequest()))
        expect(found, C.FAILED_PRECONDITION, "AUTH_DISABLED")
