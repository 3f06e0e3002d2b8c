"""Rate limits: the token buckets and their bounded memory, and over a real TLS server the admin
API's per-client limit, per-role limits, the server-wide evaluation cap, streams counted once,
and OFREP's 429."""

from __future__ import annotations

import asyncio
import ssl
import time

import aiohttp
import grpc
import pytest

from tests.support.pki import PkiFiles
from tests.support.secure import Secure, code_of, freeze, open_secure
from tests.support.servers import running_app, server_settings
from vexil.errors import ResourceExhausted
from vexil.security.policy import ADMIN_API, EVALUATION_API
from vexil.security.ratelimit import BucketTable, RateLimiter, TokenBucket
from vexil.transport.peers import peer_host
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

# -- units ---------------------------------------------------------------------------------------


def test_bucket_refills_continuously_and_says_when_to_retry() -> None:
    bucket = TokenBucket(capacity=3, rate=0.5, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(2.0)
    assert bucket.take(1.0) == pytest.approx(1.0)
    assert bucket.take(2.0) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # capped at capacity


def test_buckets_stay_bounded_with_millions_of_clients() -> None:
    table = BucketTable(capacity=100, rate=100 / 60, max_clients=10_000)
    for i in range(300_000):
        table.take(f"client-{i}", now=i * 1e-6)
    assert len(table) == 10_000
    # Idle buckets (a full refill period without a call) are dropped as new calls come in.
    later = 1_000.0
    for i in range(6_000):
        table.take(f"fresh-{i % 10}", now=later)
    assert len(table) == 10


def test_evicting_idle_buckets_never_changes_an_answer() -> None:
    table = BucketTable(capacity=2, rate=1.0)
    assert table.take("a", 0.0) == 0.0 and table.take("a", 0.0) == 0.0
    assert table.take("a", 0.0) > 0  # empty
    assert table.take("b", 0.5) == 0.0  # "a" not idle yet: kept, still empty
    assert table.take("a", 0.5) > 0
    assert table.take("b", 10.0) == 0.0  # now "a" is full again, so forgetting it is exact
    assert len(table) == 1


def test_limits_per_role_and_unlimited() -> None:
    limiter = RateLimiter(
        admin_per_minute=2, admin_per_minute_by_role={"admin": 4, "editor": 0}, evaluation_per_second=0
    )
    limiter.check(ADMIN_API, "key:e", "evaluator")
    limiter.check(ADMIN_API, "key:e", "evaluator")
    with pytest.raises(ResourceExhausted) as err:
        limiter.check(ADMIN_API, "key:e", "evaluator")
    assert err.value.retry_after == 30
    for _ in range(4):
        limiter.check(ADMIN_API, "key:a", "admin")
    with pytest.raises(ResourceExhausted):
        limiter.check(ADMIN_API, "key:a", "admin")
    for _ in range(1000):
        limiter.check(ADMIN_API, "key:ed", "editor")
        limiter.check(EVALUATION_API, "key:ed", "editor")
    assert not limiter.limits(EVALUATION_API) and limiter.limits(ADMIN_API)


def test_the_evaluation_check_is_cheap() -> None:
    limiter = RateLimiter(evaluation_per_second=1e12)
    started = time.perf_counter()
    for _ in range(100_000):
        limiter.check(EVALUATION_API, "key:x", "evaluator")
    assert time.perf_counter() - started < 1.0  # about a microsecond each, far below on a quiet machine


# -- over a real server ----------------------------------------------------------------------------


async def status_as(server: Secure, who: str) -> tuple[grpc.StatusCode, dict[str, str]]:
    return await code_of(server.admin.GetStatus(admin_pb2.GetStatusRequest(), metadata=server.md(who)))


async def test_the_101st_admin_call_in_a_minute_is_refused(secure: Secure) -> None:
    clock = freeze(secure)
    for i in range(100):
        assert (await status_as(secure, "editor"))[0] == grpc.StatusCode.OK, i
    code, trailers = await status_as(secure, "editor")
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and trailers["retry-after"] == "1"
    # Other clients, and this client's evaluations, are unaffected.
    assert (await status_as(secure, "admin"))[0] == grpc.StatusCode.OK
    request = evaluation_pb2.EvaluateRequest(flag_key="f")
    evaluate = secure.evaluation.Evaluate(request, metadata=secure.md("editor"))
    assert (await code_of(evaluate))[0] == grpc.StatusCode.OK
    clock.now += 0.61  # one call's worth of refill (100 per minute)
    assert (await status_as(secure, "editor"))[0] == grpc.StatusCode.OK
    assert (await status_as(secure, "editor"))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_limits_are_configurable_per_role(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_admin_roles="admin=3", rate_limit_admin=5) as server:
        freeze(server)
        server.tokens.update(admin=await server.issue("admin"), editor=await server.issue("editor"))
        results = [(await status_as(server, "admin"))[0] for _ in range(4)]
        assert results == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        results = [(await status_as(server, "editor"))[0] for _ in range(6)]
        assert results == [grpc.StatusCode.OK] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED]


async def test_the_server_wide_evaluation_cap_holds_under_a_burst_from_many_clients(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_evaluation=20) as server:
        clients = [await server.issue("evaluator") for _ in range(10)]
        freeze(server)
        request = evaluation_pb2.EvaluateRequest(flag_key="f")
        calls = [
            code_of(server.evaluation.Evaluate(request, metadata=(("authorization", f"Bearer {token}"),)))
            for token in clients
            for _ in range(6)
        ]
        results = await asyncio.gather(*calls)
        codes = [code for code, _ in results]
        assert codes.count(grpc.StatusCode.OK) == 20
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 40
        assert all(trailers["retry-after"] == "1" for code, trailers in results if code != grpc.StatusCode.OK)


async def test_a_stream_counts_once_when_it_opens_and_ofrep_shares_the_cap(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_evaluation=3) as server:
        token = await server.issue("evaluator")
        freeze(server)
        md = (("authorization", f"Bearer {token}"),)
        watch = server.evaluation.Watch(evaluation_pb2.WatchRequest(), metadata=md)
        for _ in range(3):  # snapshot and heartbeats: no more tokens
            await asyncio.wait_for(watch.read(), 5)
        request = evaluation_pb2.EvaluateRequest(flag_key="f")
        assert (await code_of(server.evaluation.Evaluate(request, metadata=md)))[0] == grpc.StatusCode.OK
        context = ssl.create_default_context(cafile=pki.ca)
        url = f"https://localhost:{server.app.http_port}/ofrep/v1/evaluate/flags/f"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url, json={}, headers={"Authorization": f"Bearer {token}"}, ssl=context
            ) as r:
                assert r.status == 404  # allowed (the flag does not exist): the third token
            async with http.post(
                url, json={}, headers={"Authorization": f"Bearer {token}"}, ssl=context
            ) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1"
        assert (await code_of(server.evaluation.Evaluate(request, metadata=md)))[
            0
        ] == grpc.StatusCode.RESOURCE_EXHAUSTED
        watch.cancel()


CLIENTS = {
    # a gRPC peer, or an HTTP request's address: the client per-client limits count it as
    "ipv4:10.1.2.3:50000": "10.1.2.3",
    "10.1.2.3": "10.1.2.3",
    "ipv6:[::1]:50000": "::1",
    # IPv6 by its /64: the addresses one host or site may use all count as one client
    "ipv6:[2001:db8:1:2:aaaa::1]:50000": "2001:db8:1:2::/64",
    "ipv6:[2001:db8:1:2:ffff:ffff:ffff:ffff]:1": "2001:db8:1:2::/64",
    "2001:db8:1:2::7": "2001:db8:1:2::/64",
    "ipv6:[2001:db8:1:3::1]:50000": "2001:db8:1:3::/64",
    # an IPv4 client of a dual-stack listener is that IPv4 address, not the ::ffff:0:0/96 block
    "ipv6:[::ffff:10.1.2.3]:50000": "10.1.2.3",
    "ipv6:[::ffff:10.1.2.4]:50000": "10.1.2.4",
    "unix:/tmp/socket": "unix:/tmp/socket",
}


@pytest.mark.parametrize(("peer", "client"), CLIENTS.items())
def test_anonymous_clients_are_counted_by_address_not_by_connection(peer: str, client: str) -> None:
    assert peer_host(peer) == client


async def test_open_local_server_limits_anonymous_callers_when_asked() -> None:
    settings = server_settings(rate_limits="on", rate_limit_admin=3)
    async with running_app(settings) as app:
        codes = []
        for _ in range(2):  # two connections from one address share one bucket
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = admin_pb2_grpc.AdminServiceStub(channel)
                for _ in range(2):
                    codes.append((await code_of(stub.GetStatus(admin_pb2.GetStatusRequest())))[0])
        text = app.metrics.exposition().decode()
    assert codes == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert 'vexil_rate_limited_total{protocol="vexil",scope="client"} 1.0' in text


async def test_refused_calls_are_counted_in_the_metrics(secure: Secure) -> None:
    """The security interceptors run before the metrics interceptor; what they refuse is still
    counted (`vexil_auth_failures_total`, `vexil_rate_limited_total`)."""
    stub = evaluation_pb2_grpc.EvaluationServiceStub(secure.channel)
    request = evaluation_pb2.EvaluateRequest(flag_key="x")
    assert (await code_of(stub.Evaluate(request)))[0] == grpc.StatusCode.UNAUTHENTICATED
    garbage = (("authorization", "Bearer vxk_not-a-key"),)
    assert (await code_of(stub.Evaluate(request, metadata=garbage)))[0] == grpc.StatusCode.UNAUTHENTICATED
    admin = admin_pb2_grpc.AdminServiceStub(secure.channel)
    refused = await code_of(admin.GetStatus(admin_pb2.GetStatusRequest(), metadata=secure.md("evaluator")))
    assert refused[0] == grpc.StatusCode.PERMISSION_DENIED

    text = secure.app.metrics.exposition().decode()

    def counted(name: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{"):
                got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
                if got == wanted:
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert counted("vexil_auth_failures_total", reason="missing", protocol="vexil") == 1
    assert counted("vexil_auth_failures_total", reason="malformed", protocol="vexil") == 1
    assert counted("vexil_auth_failures_total", reason="forbidden", protocol="vexil") == 1
