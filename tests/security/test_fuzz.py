"""Fuzzing the security surface of a real TLS server: malformed metadata, oversized headers,
garbage tokens, mangled real tokens and random request bytes, at every RPC and at OFREP.

Whatever comes in: the server keeps serving, no call ends INTERNAL or UNKNOWN (or HTTP 500),
protected RPCs never answer a caller without valid credentials, and no error message carries a
key secret or the credential that was sent.
"""

from __future__ import annotations

import base64
import ssl
import string
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pki import PkiFiles
from tests.support.rpcs import RPCS, call
from tests.support.secure import Secure
from tests.support.servers import tls_channel
from vexil.security import policy
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VISIBLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
"""What gRPC lets a client put in a text header at all."""
TEXT = st.text(alphabet=VISIBLE, max_size=120)
B64 = st.binary(max_size=90).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))

REAL = ("evaluator", "editor", "admin", "beta-admin", "root", "revoked")
MANGLES = ("as is", "suffix", "truncated", "flipped", "lowercase scheme", "no scheme", "twice")


def mangle(token: str, how: str, junk: str) -> list[tuple[str, str]]:
    """Metadata carrying a real token, damaged in one of several ways."""
    if how == "suffix":
        return [("authorization", f"Bearer {token}{junk}")]
    if how == "truncated":
        return [("authorization", f"Bearer {token[: max(4, len(token) - len(junk) - 1)]}")]
    if how == "flipped":
        return [("authorization", f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}")]
    if how == "lowercase scheme":
        return [("authorization", f"bearer {token}")]
    if how == "no scheme":
        return [("authorization", token)]
    if how == "twice":
        return [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {junk or token}")]
    return [("authorization", f"Bearer {token}")]


def still_valid(how: str, junk: str) -> bool:
    """Whether `mangle` left a real token usable."""
    return how in ("as is", "lowercase scheme") or (how == "suffix" and not junk.strip())


credential = st.one_of(
    TEXT,
    TEXT.map(lambda s: f"Bearer {s}"),
    TEXT.map(lambda s: f"Bearer vxk_{s}"),
    st.tuples(st.text("0123456789abcdef", min_size=16, max_size=16), B64).map(
        lambda p: f"Bearer vxk_{p[0]}_{p[1]}"
    ),
    st.tuples(B64, B64, B64).map(lambda p: f"Bearer {p[0]}.{p[1]}.{p[2]}"),
    st.integers(7_000, 20_000).map(lambda n: "Bearer " + "A" * n),
)
extra_metadata = st.lists(
    st.tuples(st.sampled_from(["authorization", "flagd-selector", "x-vexil-junk", "cookie"]), TEXT),
    max_size=3,
)
real_use = st.tuples(st.sampled_from(REAL), st.sampled_from(MANGLES), TEXT)
request = st.one_of(st.none(), st.binary(max_size=200))


@pytest.fixture
async def fuzz_server(secure: Secure, pki: PkiFiles) -> AsyncIterator[Secure]:
    """The secure server (one per test, shared by its examples) plus a revoked key.

    After all of a test's examples, the server they fuzzed must still serve: checked here, on
    that very server (a failure shows as an error in the test's teardown)."""
    secure.tokens["revoked"] = await secure.issue("evaluator")
    await secure.keys.revoke(secure.tokens["revoked"][4:20], actor="test")
    yield secure
    await still_serves(secure, pki)


async def still_serves(server: Secure, pki: PkiFiles) -> None:
    """Health SERVING, evaluation, a Watch and OFREP, on the fuzzed connection and on a new one."""
    evaluator = server.md("evaluator")
    async with tls_channel(server.target, pki) as fresh:
        for channel in (server.channel, fresh):
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            response = await stub.Evaluate(
                evaluation_pb2.EvaluateRequest(flag_key="f"), metadata=evaluator, timeout=5
            )
            assert response.flag_key == "f"
            watch = stub.Watch(evaluation_pb2.WatchRequest(), metadata=evaluator, timeout=5)
            assert (await watch.read()).type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT
            watch.cancel()
    url = f"https://localhost:{server.app.http_port}/ofrep/v1/evaluate/flags/f"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url,
            json={"context": {}},
            headers={"Authorization": evaluator[0][1]},
            ssl=ssl.create_default_context(cafile=pki.ca),
        ) as answer,
    ):
        assert answer.status in (200, 404), await answer.text()  # answered, not refused or failed


ROTATED = str.maketrans(
    string.ascii_lowercase + string.ascii_uppercase + string.digits,
    string.ascii_lowercase[1:] + "a" + string.ascii_uppercase[1:] + "A" + string.digits[1:] + "0",
)
"""Each letter and digit the next one: text of the same shape that is not the text sent."""


def secrets_of(server: Secure) -> list[str]:
    return [token.split("_", 2)[2] for token in server.tokens.values()]


@FUZZ
@given(
    rpc=st.sampled_from(RPCS),
    sent=st.one_of(credential.map(lambda c: [("authorization", c)]), extra_metadata),
    real=st.one_of(st.none(), real_use),
    raw=request,
)
async def test_fuzz_every_rpc(
    fuzz_server: Secure, rpc: Any, sent: list[tuple[str, str]], real: tuple | None, raw: bytes | None
) -> None:
    metadata = sent
    if real is not None:
        name, how, junk = real
        metadata = mangle(fuzz_server.tokens[name], how, junk)
    error = await call(fuzz_server.channel, rpc, metadata, raw=raw, timeout=10)
    code = error.code() if error is not None else grpc.StatusCode.OK
    details = (error.details() or "") if error is not None else ""
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (code, details)
    assert not any(secret in details for secret in secrets_of(fuzz_server))
    for index, (name, value) in enumerate(metadata):
        for sent_text in {value, value.removeprefix("Bearer ")}:
            if len(sent_text) >= 4 and sent_text in details:
                # An echo, unless the server says it whatever stood there: a word of a fixed
                # message ("Bearer serve" in "this server accepts API keys only").
                other = value.replace(sent_text, sent_text.translate(ROTATED))
                changed = [*metadata[:index], (name, other), *metadata[index + 1 :]]
                again = await call(fuzz_server.channel, rpc, changed, raw=raw, timeout=10)
                assert again is not None and sent_text in (again.details() or ""), f"echoed {sent_text!r}"
    valid = real is not None and real[0] != "revoked" and still_valid(real[1], real[2])
    rule = policy.rule_for(rpc.path)
    if rule is not None and rule.role is not None and not valid:
        assert code in (
            grpc.StatusCode.UNAUTHENTICATED,  # undecodable bytes too: a request is parsed after auth
            grpc.StatusCode.RESOURCE_EXHAUSTED,  # headers beyond gRPC's own limit
        ), (rpc.path, code, details)


@FUZZ
@given(
    header=st.one_of(st.none(), credential, st.tuples(st.sampled_from(REAL), st.sampled_from(MANGLES), TEXT)),
    body=st.one_of(st.binary(max_size=200), st.just(b'{"context": {}}')),
)
async def test_fuzz_ofrep(fuzz_server: Secure, pki: PkiFiles, header: Any, body: bytes) -> None:
    headers: dict[str, str] = {}
    if isinstance(header, tuple):
        name, how, junk = header
        (_, value), *_ = mangle(fuzz_server.tokens[name], how, junk)
        headers["Authorization"] = value
    elif header is not None:
        headers["Authorization"] = header[:7000]  # aiohttp's own header limit is 8190 bytes
    url = f"https://localhost:{fuzz_server.app.http_port}/ofrep/v1/evaluate/flags/f"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers=headers, ssl=ssl.create_default_context(cafile=pki.ca)) as response,
    ):
        text = await response.text()
    assert response.status in (200, 400, 401, 403, 404, 429), (response.status, text)
    assert not any(secret in text for secret in secrets_of(fuzz_server))
    if "Authorization" in headers and len(headers["Authorization"]) >= 12:
        assert headers["Authorization"].removeprefix("Bearer ") not in text
