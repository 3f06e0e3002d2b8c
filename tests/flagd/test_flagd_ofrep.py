"""OFREP on the HTTP side: the real `openfeature-provider-ofrep` client, and the raw protocol (ETag /
304, 404, 400, 401, 403, 429, 500), and the health endpoints."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from google.protobuf import struct_pb2
from openfeature.contrib.provider.ofrep import OFREPProvider

from tests.support.calls import raw_http
from tests.support.contexts import nested_struct
from tests.support.flags import flag_pb
from tests.support.flagset import CONTEXTS, FLAGS, TYPED_DEFAULTS, native, store_broken_flag
from tests.support.openfeature import OpenFeature
from tests.support.servers import Connected, ServerProcess
from vexil.cache import SnapshotCache
from vexil.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from vexil.http import HttpServer
from vexil.http.health import Readiness
from vexil.hub import Hub
from vexil.identity import Principal
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2
from vexil.wire_context import varint

INTEGER_FLAGS = {"limit"}
BOOLEAN_FLAGS = {"bool-static", "new-ui"}


def base_url(conn: Connected) -> str:
    return f"http://127.0.0.1:{conn.app.http_port}"


@pytest.fixture
async def http(flagd_server: Connected) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url(flagd_server)) as session:
        yield session


async def test_ofrep_provider_matches_native_evaluate(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    client = await openfeature.use(OFREPProvider(base_url(flagd_server)))
    for key in [*FLAGS, "missing"]:
        for context in CONTEXTS:
            for kind in TYPED_DEFAULTS:
                got = await openfeature.answer(client, kind, key, context)
                expected = await native(flagd_server, key, context, kind)
                # OFREP carries no type (only JSON's), so its client type-checks what it parses,
                # with Python's notion of types: a boolean passes as an integer, and an integer
                # flag's value is not a float.  vexil answers both as flagd does (TYPE_MISMATCH, 10.0).
                if kind == "integer" and key in BOOLEAN_FLAGS:
                    assert expected.error_code == "TYPE_MISMATCH" and got.value in (True, False)
                elif kind == "float" and key in INTEGER_FLAGS:
                    assert got.error_code == "TYPE_MISMATCH" and expected.value in (10.0, 100.0)
                else:
                    assert got == expected, (key, context, kind)


async def test_a_float_flags_integral_values_are_sent_as_floats(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    flag = flag_pb("weight", {"one": 1, "half": 0.5}, default="one")
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
    client = await openfeature.use(OFREPProvider(base_url(flagd_server)))
    answer = await openfeature.answer(client, "float", "weight", {})
    assert answer.value == 1.0 and isinstance(answer.value, float) and answer.error_code is None


async def post(http: aiohttp.ClientSession, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with http.post(path, **kwargs) as response:
        body = await response.json() if response.content_length else None
        return response.status, body, response.headers


async def test_single_flag_answers(flagd_server: Connected, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", json={"context": {"country": "JP"}})
    assert status == 200
    assert body == {
        "key": "color",
        "value": "red",
        "variant": "red",
        "reason": "TARGETING_MATCH",
        "metadata": {"team": "platform", "tier": 1, "owner-team": "web"},
    }
    # "Use your code default": 200 without a value.
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/killed", json={})
    assert status == 200 and "value" not in body
    assert (body["reason"], body["variant"]) == ("DISABLED", "")


async def test_404_and_400s(flagd_server: Connected, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/missing", json={"context": {}})
    assert status == 404 and body["key"] == "missing" and body["errorCode"] == "FLAG_NOT_FOUND"
    assert "missing" in body["errorDetails"]

    for payload in (b"{not json", b'{"context": [1, 2]}', b"[]", b'{"context": {"x": NaN}}'):
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", data=payload)
        assert status == 400 and body["errorCode"] == "INVALID_CONTEXT" and body["key"] == "color", payload
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags", data=payload)
        assert status == 400 and body["errorCode"] == "INVALID_CONTEXT" and "key" not in body, payload
    deep: Any = "bottom"
    for _ in range(40):
        deep = {"d": deep}
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", json={"context": deep})
    assert status == 400 and body["errorCode"] == "INVALID_CONTEXT" and "deeper" in body["errorDetails"]

    await store_broken_flag(flagd_server, "hand-written")
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/hand-written", json={})
    assert status == 400 and body["errorCode"] == "PARSE_ERROR"
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags", json={})
    assert status == 200
    (broken,) = [flag for flag in body["flags"] if flag["key"] == "hand-written"]
    assert broken["errorCode"] == "PARSE_ERROR" and "value" not in broken

    headers = {"flagd-selector": "flagSetId=nowhere"}
    status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", json={}, headers=headers)
    assert status == 400 and body["errorCode"] == "GENERAL" and "nowhere" in body["errorDetails"]


NOT_PORTABLE = {
    # what no door takes (README: text with a lone surrogate, a number no double holds, beyond
    # about 1.8e308) -> the path OFREP's INVALID_CONTEXT names
    b'{"context": {"country": "\\ud800"}}': "context.country",
    b'{"context": {"user": {"name": "a\\udc00b"}}}': "context.user.name",
    b'{"context": {"tags": ["ok", "\\udfff"]}}': "context.tags[1]",
    b'{"context": {"\\ud800": "a key"}}': "context",
    b'{"context": {"num": 1e400}}': "context.num",
    b'{"context": {"num": -1e400}}': "context.num",
    b'{"context": {"big": [1, 1' + b"0" * 400 + b"]}}": "context.big[1]",
}

UNREADABLE = {
    # past what a JSON reader takes at all: refused as a whole, saying what to fix
    b'{"context": {"n": ' + b"9" * 5000 + b"}}": "a 5000-digit number does not fit in a double",
    b'{"context": {"n": -' + b"9" * 5000 + b"}}": "a 5000-digit number does not fit in a double",
    b'{"context": {"a": ' + b"[" * 2000 + b"]" * 2000 + b"}}": "nested deeper than 32 levels",
}


async def test_a_context_no_reader_takes_is_named_for_what_to_fix(
    flagd_server: Connected, http: aiohttp.ClientSession
) -> None:
    """Python's own words ("maximum recursion depth exceeded", "use sys.set_int_max_str_digits()")
    tell an OFREP caller nothing about its request."""
    for payload, said in UNREADABLE.items():
        for path in ("/ofrep/v1/evaluate/flags/color", "/ofrep/v1/evaluate/flags"):
            status, body, _ = await post(http, path, data=payload)
            assert (status, body.get("errorCode")) == (400, "INVALID_CONTEXT"), (path, body)
            assert body["errorDetails"].startswith(f"context: {said}"), (path, body["errorDetails"][:200])


async def test_a_body_over_the_limit_is_413_in_json(
    flagd_server: Connected, http: aiohttp.ClientSession
) -> None:
    """aiohttp answers a body over its limit in plain text; an OFREP client reads JSON.  The limit
    (1 MiB, README) counts what a compressed body decompresses to: 20 MB of gzip'd context (87 KB
    on the wire) is refused as soon as the first MiB is out."""
    big = b'{"context": {"targetingKey": "' + b"u" * (1024 * 1024) + b'"}}'
    bomb = gzip.compress(b'{"context": {"targetingKey": "' + b"u" * 20_000_000 + b'"}}', 1)
    for data, headers in ((big, {}), (bomb, {"Content-Encoding": "gzip"})):
        for path in ("/ofrep/v1/evaluate/flags/color", "/ofrep/v1/evaluate/flags"):
            status, body, _ = await post(http, path, data=data, headers=headers)
            assert status == 413, (path, status)
            assert body["errorDetails"].startswith("the request body is over 1,048,576 bytes"), body
    status, _, _ = await post(http, "/ofrep/v1/evaluate/flags/color", json={"context": {}})
    assert status == 200


async def test_a_context_no_other_door_takes_is_invalid(
    flagd_server: Connected, http: aiohttp.ClientSession
) -> None:
    for payload, where in NOT_PORTABLE.items():
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", data=payload)
        found = (status, body.get("errorCode"), body.get("key"))
        assert found == (400, "INVALID_CONTEXT", "color"), (payload, body)
        assert body["errorDetails"].startswith(f"{where}: "), (payload, body)
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags", data=payload)
        assert (status, body.get("errorCode")) == (400, "INVALID_CONTEXT"), (payload, body)
        assert body["errorDetails"].startswith(f"{where}: "), (payload, body)


def nested_json(kinds: str) -> Any:
    """An attribute's value nesting objects ("o") and lists ("l"), outermost first, around 1."""
    value: Any = 1
    for kind in reversed(kinds):
        value = {"a": value} if kind == "o" else [value]
    return value


DEPTHS = {
    # README: "a context that is over 64 KB or nested deeper than 32 levels" is refused, by gRPC
    # and OFREP alike: an attribute holding 32 nested objects or lists is within the limit.
    "o" * 31: True,
    "o" * 32: True,
    "o" * 33: False,
    "l" * 32: True,
    "l" * 33: False,
    "ol" * 16: True,
    "lo" * 16 + "l": False,
    "o" * 20 + "l" * 12: True,
    "l" * 20 + "o" * 13: False,
}


async def test_ofrep_and_grpc_count_depth_alike(flagd_server: Connected, http: aiohttp.ClientSession) -> None:
    evaluate_raw = flagd_server.channel.unary_unary(
        "/vexil.v1.EvaluationService/Evaluate",
        request_serializer=lambda data: data,
        response_deserializer=evaluation_pb2.EvaluateResponse.FromString,
    )
    prefix = evaluation_pb2.EvaluateRequest(flag_key="color").SerializeToString()
    for kinds, within in DEPTHS.items():
        context = {"x": nested_json(kinds)}
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/color", json={"context": context})
        leaf = struct_pb2.Value(number_value=1)
        raw = nested_struct(kinds, attribute="x", key="a", leaf=leaf).SerializeToString()
        request = prefix + b"\x12" + varint(len(raw)) + raw  # field 2: context
        try:
            answer = await evaluate_raw(request)
        except grpc.aio.AioRpcError as exc:
            grpc_answer = (exc.code(), exc.details())
        else:
            grpc_answer = (grpc.StatusCode.OK, answer.string_value)
        if within:
            assert (status, body.get("value")) == (200, "blue"), (kinds, body)
            assert grpc_answer == (grpc.StatusCode.OK, "blue"), (kinds, grpc_answer)
        else:
            assert (status, body.get("errorCode")) == (400, "INVALID_CONTEXT"), (kinds, body)
            assert "nested deeper than 32 levels" in body["errorDetails"], (kinds, body)
            # gRPC says so in one of two words: past protobuf's own nesting limit the request does
            # not decode at all ("...nested at most 32 levels"), short of it the check names it.
            code, details = grpc_answer
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "32 levels" in details, (kinds, details)


async def test_a_context_integer_beyond_2_53_gets_one_answer_on_every_door(
    flagd_server: Connected, http: aiohttp.ClientSession
) -> None:
    """flagd reads every JSON number as a double, on OFREP as on gRPC (where a Struct can carry
    nothing else): 9007199254740993 is 9007199254740992 to a rule, so it is even.  OFREP read it
    exactly and answered "odd" where gRPC answered "even"."""
    parity = {"if": [{"==": [{"%": [{"var": "account"}, 2]}, 0]}, "even", "odd"]}
    flag = flag_pb("parity", {"even": "even", "odd": "odd"}, "odd", parity)
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
    expected = {
        9007199254740993: "even",
        9007199254740992: "even",
        9007199254740991: "odd",
        -(2**53) - 1: "even",
    }
    for account, answer in expected.items():
        payload = b'{"context": {"account": %d}}' % account
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags/parity", data=payload)
        assert (status, body.get("value")) == (200, answer), (account, body)
        status, body, _ = await post(http, "/ofrep/v1/evaluate/flags", data=payload)
        (bulk,) = [f for f in body["flags"] if f["key"] == "parity"]
        assert bulk["value"] == answer, (account, bulk)
        context = struct_pb2.Struct()
        context.update({"account": account})  # a Struct holds the nearest double
        grpc_answer = await flagd_server.evaluation.Evaluate(
            evaluation_pb2.EvaluateRequest(flag_key="parity", context=context)
        )
        assert grpc_answer.string_value == answer, (account, grpc_answer)


async def test_a_selector_that_is_not_utf8_is_refused_naming_it(flagd_server: Connected) -> None:
    """README: a selector naming an environment this server does not serve is FAILED_PRECONDITION,
    OFREP 400; bytes that are not UTF-8 name none."""
    port = flagd_server.app.http_port
    for header, shown in (
        (b"flagd-selector: \xff\xfe\r\n", "\\xff\\xfe"),
        (b"flagd-selector: flagSetId=\xe9\r\n", "flagSetId=\\xe9"),
    ):
        status, body = await raw_http(port, "POST", "/ofrep/v1/evaluate/flags/color", header)
        assert (status, body["key"], body["errorCode"]) == (400, "color", "GENERAL"), body
        assert body["errorDetails"] == f"selector '{shown}' is not UTF-8 text"
        status, body = await raw_http(port, "POST", "/ofrep/v1/evaluate/flags", header)
        assert (status, body["errorCode"]) == (400, "GENERAL"), body
        assert body["errorDetails"] == f"selector '{shown}' is not UTF-8 text"


async def test_a_selector_header_sent_twice_is_one_selector(flagd_server: Connected) -> None:
    """Two `flagd-selector` headers are one selector (RFC 9110: a field sent twice is the list of
    both values): naming two environments is refused as two names in one header are."""
    port = flagd_server.app.http_port
    for path in ("/ofrep/v1/evaluate/flags/color", "/ofrep/v1/evaluate/flags"):
        in_one = b"flagd-selector: flagSetId=local,flagSetId=prod\r\n"
        status, body = await raw_http(port, "POST", path, in_one)
        assert status == 400 and "names more than one environment" in body["errorDetails"], body
        for twice in (
            b"flagd-selector: local\r\nflagd-selector: prod\r\n",
            b"flagd-selector: prod\r\nflagd-selector: local\r\n",
        ):
            status, body = await raw_http(port, "POST", path, twice)
            assert (status, body.get("errorCode")) == (400, "GENERAL"), (path, twice, body)
            assert "names more than one environment" in body["errorDetails"], body
        same = b"flagd-selector: local\r\nflagd-selector: flagSetId=local\r\n"
        status, body = await raw_http(port, "POST", path, same)
        assert status == 200, body


async def test_bulk_evaluation_etag_and_304(flagd_server: Connected, http: aiohttp.ClientSession) -> None:
    context = {"context": {"targetingKey": "user-1", "country": "JP"}}
    status, body, headers = await post(http, "/ofrep/v1/evaluate/flags", json=context)
    assert status == 200 and [f["key"] for f in body["flags"]] == sorted(FLAGS)
    assert body["metadata"] == {"team": "platform", "tier": 1}
    tag = headers["ETag"]

    status, body, headers = await post(
        http, "/ofrep/v1/evaluate/flags", json=context, headers={"If-None-Match": tag}
    )
    assert (status, body, headers["ETag"]) == (304, None, tag)
    listed = {"If-None-Match": f'"other", W/{tag}'}
    assert (await post(http, "/ofrep/v1/evaluate/flags", json=context, headers=listed))[0] == 304

    # Another context is another answer, whatever the client remembers.
    other = {"context": {"targetingKey": "user-2"}}
    status, _, headers = await post(
        http, "/ofrep/v1/evaluate/flags", json=other, headers={"If-None-Match": tag}
    )
    assert status == 200 and headers["ETag"] != tag

    # A write changes the environment's config_version, and with it the ETag.
    await flagd_server.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="killed"))
    status, body, headers = await post(
        http, "/ofrep/v1/evaluate/flags", json=context, headers={"If-None-Match": tag}
    )
    assert status == 200 and headers["ETag"] != tag and "killed" not in {f["key"] for f in body["flags"]}


async def test_health_endpoints(flagd_server: Connected, http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as response:
        assert response.status == 200 and (await response.json()) == {"status": "ok"}
    async with http.get("/readyz") as response:
        body = await response.json()
    assert response.status == 200 and body["status"] == "ready"
    (local,) = body["environments"]
    assert local["environment"] == "local" and local["flags"] == len(FLAGS) and local["healthy"]
    assert 0 <= local["staleness_seconds"] < 60


def test_readiness_while_loading_and_draining() -> None:
    readiness = Readiness(SnapshotCache(MemoryStore(), Hub(), ["local"]))
    assert readiness.report() == (
        False,
        {"status": "loading", "environments": [{"environment": "local", "loaded": False}]},
    )
    readiness.draining = True
    assert readiness.report()[1]["status"] == "draining"


async def authenticate(request: web.Request) -> Principal | None:
    """A stand-in for the security layer: the hook's contract, not a real credential check."""
    token = request.headers.get("Authorization", "")
    if token == "Bearer local-key":
        return Principal("local-key", "evaluator", frozenset({"local"}))
    if token == "Bearer other-key":
        return Principal("other-key", "evaluator", frozenset({"beta", "gamma"}))
    if token == "Bearer unserved-key":
        return Principal("unserved-key", "evaluator", frozenset({"gamma"}))
    if token == "Bearer too-many":
        raise ResourceExhausted("slow down", retry_after=3)
    if token == "Bearer broken":
        raise RuntimeError("the hook itself failed")
    if token == "Bearer no":
        raise PermissionDenied("this key may not evaluate")
    if token == "Bearer echo":  # a message holding text that is not Unicode (a lone surrogate)
        raise PermissionDenied("this key may not evaluate '\ud800'")
    raise Unauthenticated("send 'authorization: Bearer <key>'")


async def test_authentication_hook_401_403_429_500(flagd_server: Connected) -> None:
    server = HttpServer(flagd_server.app.service, port=0, authenticate=authenticate)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            path = "/ofrep/v1/evaluate/flags/color"
            status, body, headers = await post(http, path, json={})
            assert (
                status == 401 and headers["WWW-Authenticate"] == "Bearer" and "Bearer" in body["errorDetails"]
            )
            ok = await post(http, path, json={}, headers={"Authorization": "Bearer local-key"})
            assert ok[0] == 200 and ok[1]["value"] == "blue"
            # A key scoped to another environment may not read this one.
            assert (await post(http, path, json={}, headers={"Authorization": "Bearer other-key"}))[0] == 403
            assert (await post(http, path, json={}, headers={"Authorization": "Bearer no"}))[0] == 403
            # A lone surrogate reaching an answer is sent as its JSON escape, never a failed 500.
            async with http.post(path, json={}, headers={"Authorization": "Bearer echo"}) as response:
                raw = await response.read()
            assert response.status == 403 and response.content_type == "application/json"
            assert raw == b'{"errorDetails": "this key may not evaluate \'\\ud800\'"}'
            # A key for one environment means that one; this server does not serve it.
            status, body, _ = await post(
                http, path, json={}, headers={"Authorization": "Bearer unserved-key"}
            )
            assert status == 400 and "gamma" in body["errorDetails"]
            status, _, headers = await post(http, path, json={}, headers={"Authorization": "Bearer too-many"})
            assert status == 429 and headers["Retry-After"] == "3"
            status, body, _ = await post(http, path, json={}, headers={"Authorization": "Bearer broken"})
            assert (
                status == 500 and "server log" in body["errorDetails"] and "hook" not in body["errorDetails"]
            )
            async with http.get("/healthz") as response:  # operational routes are not authenticated
                assert response.status == 200
    finally:
        await server.stop()


async def test_serve_requires_credentials_for_ofrep(tmp_path: Path) -> None:
    """`vexil serve` with authentication on (here: a bootstrap admin key, local profile) passes its
    authenticator to the HTTP side: OFREP without a valid API key is 401, with one it is served."""
    admin = "vxk_0000000000000001_" + "k" * 43
    with ServerProcess(tmp_path, env={"VEXIL_BOOTSTRAP_ADMIN_KEY": admin}) as server:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.http_port}") as http:
            path = "/ofrep/v1/evaluate/flags/anything"
            status, body, headers = await post(http, path, json={})
            assert (
                status == 401
                and headers["WWW-Authenticate"] == "Bearer"
                and "credentials" in body["errorDetails"]
            )
            wrong = {"Authorization": "Bearer vxk_0000000000000001_" + "x" * 43}
            assert (await post(http, path, json={}, headers=wrong))[0] == 401
            status, body, _ = await post(http, path, json={}, headers={"Authorization": f"Bearer {admin}"})
            assert status == 404 and body["errorCode"] == "FLAG_NOT_FOUND"
            async with http.get("/healthz") as response:  # operational routes stay open
                assert response.status == 200
