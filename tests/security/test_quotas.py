"""Per-client evaluation quotas beside the server-wide cap: no noisy neighbour.

Before, evaluation had one bucket per server, so one key hammering it made a quiet key's calls
fail with RESOURCE_EXHAUSTED.  Each client (API key, JWT subject, or peer address when
anonymous) now has its own quota, checked first; what it refuses never takes from the
server-wide bucket.  Units on the limiter with a hand-moved clock, then a real TLS server with
authentication on.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.support.pki import PkiFiles
from tests.support.secure import Clock, code_of, freeze, open_secure
from vexil.errors import ResourceExhausted
from vexil.security.http import HttpAuthenticator
from vexil.security.policy import EVALUATION_API
from vexil.security.ratelimit import QuotaExceeded, RateLimiter
from vexil.v1 import evaluation_pb2

OK = grpc.StatusCode.OK
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def outcomes(limiter: RateLimiter, client: str, role: str, calls: int) -> list[str]:
    """'ok', 'quota' (the client's own limit) or 'global' (the server's) for each call."""
    result = []
    for _ in range(calls):
        try:
            limiter.check(EVALUATION_API, client, role)
            result.append("ok")
        except QuotaExceeded:
            result.append("quota")
        except ResourceExhausted:
            result.append("global")
    return result


# -- units ---------------------------------------------------------------------------------------


class HttpRequest:
    """What `HttpAuthenticator` reads of a request without credentials: its address."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self.headers: dict[str, str] = {}


async def test_ofrep_callers_without_credentials_count_by_ipv4_address_and_ipv6_64() -> None:
    """The HTTP side counts an anonymous caller as the gRPC side does (`peer_host`): the
    addresses of one IPv6 /64 share a quota, the next /64 and another IPv4 address have their own."""
    limiter = RateLimiter(evaluation_per_second=0, evaluation_per_client=2, clock=Clock())
    authenticate = HttpAuthenticator(None, limiter)

    async def outcome(remote: str) -> str:
        try:
            await authenticate(HttpRequest(remote))  # type: ignore[arg-type]
        except QuotaExceeded:
            return "quota"
        return "ok"

    one_64 = ["2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3"]
    assert [await outcome(a) for a in one_64] == ["ok", "ok", "quota"]
    assert [await outcome(a) for a in ("2001:db8:0:2::1", "10.0.0.1", "10.0.0.2")] == ["ok"] * 3


def test_a_client_over_its_quota_does_not_use_up_the_server_wide_cap() -> None:
    clock = Clock()
    limiter = RateLimiter(evaluation_per_second=10, evaluation_per_client=4, clock=clock)
    assert outcomes(limiter, "key:noisy", "evaluator", 100) == ["ok"] * 4 + ["quota"] * 96
    # 4 of the server's 10 tokens are gone, not 10: two more clients get their whole quota...
    assert outcomes(limiter, "key:quiet", "evaluator", 4) == ["ok"] * 4
    # ...and the server-wide cap still holds when the quotas add up to more than it.
    assert outcomes(limiter, "jwt:third", "admin", 4) == ["ok", "ok", "global", "global"]
    clock.now += 0.25  # a quarter second: one token back in a 4-per-second quota
    assert outcomes(limiter, "key:noisy", "evaluator", 2) == ["ok", "quota"]


def test_quotas_per_role_and_per_key_and_anonymous() -> None:
    limiter = RateLimiter(
        evaluation_per_second=0,
        evaluation_per_client=3,
        evaluation_per_client_by_role={"admin": 5, "anonymous": 1, "editor": 0},
        evaluation_per_client_by_key={"abc": 2},
        clock=Clock(),
    )
    assert outcomes(limiter, "key:other", "evaluator", 4) == ["ok"] * 3 + ["quota"]
    assert outcomes(limiter, "key:abc", "evaluator", 3) == ["ok"] * 2 + ["quota"]
    assert outcomes(limiter, "jwt:boss", "admin", 6) == ["ok"] * 5 + ["quota"]
    assert outcomes(limiter, "peer:127.0.0.1", "", 2) == ["ok", "quota"]
    assert outcomes(limiter, "key:ed", "editor", 1000) == ["ok"] * 1000  # 0: unlimited
    with pytest.raises(QuotaExceeded) as err:
        limiter.check(EVALUATION_API, "peer:127.0.0.1", "")
    assert err.value.role == "anonymous" and err.value.retry_after == 1
    assert "quota of this client (1 calls per second)" in err.value.message


def test_many_anonymous_peers_cannot_grow_the_quota_table() -> None:
    clock = Clock()
    limiter = RateLimiter(evaluation_per_second=0, evaluation_per_client=5, max_clients=1_000, clock=clock)
    for i in range(200_000):
        limiter.check(EVALUATION_API, f"peer:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "")
        clock.now += 0.0001
    table = limiter._quota_default
    assert table is not None and len(table) <= 1_000


# -- over a real server ----------------------------------------------------------------------------


async def test_a_quiet_key_keeps_every_call_while_another_exceeds_its_quota(pki: PkiFiles) -> None:
    async with open_secure(pki, rate_limit_evaluation=50, rate_limit_evaluation_client=20) as server:
        noisy, quiet = await server.issue("evaluator"), await server.issue("evaluator")
        freeze(server)  # no refill during the test: every count below is exact
        request = evaluation_pb2.EvaluateRequest(flag_key="f")

        async def call(token: str) -> grpc.StatusCode:
            md = (("authorization", f"Bearer {token}"),)
            return (await code_of(server.evaluation.Evaluate(request, metadata=md)))[0]

        async def one_by_one(token: str, count: int) -> list[grpc.StatusCode]:
            return [await call(token) for _ in range(count)]

        # The noisy key hammers: 50 calls at once (the whole server-wide cap), then 50 more
        # while the quiet key makes its 20 calls one after the other.
        first = await asyncio.gather(*(call(noisy) for _ in range(50)))
        quiet_codes, *second = await asyncio.gather(one_by_one(quiet, 20), *(call(noisy) for _ in range(50)))
        noisy_codes = [*first, *second]
        assert quiet_codes == [OK] * 20
        assert noisy_codes.count(OK) == 20 and noisy_codes.count(EXHAUSTED) == 80
        text = server.app.metrics.exposition().decode()
        assert 'vexil_evaluation_quota_exceeded_total{role="evaluator"} 80.0' in text
        assert noisy.split("_")[1] not in text  # by role, never by key


async def test_a_key_can_be_given_its_own_quota(pki: PkiFiles) -> None:
    key_id = "00000000000000aa"
    token = f"vxk_{key_id}_" + "s" * 40
    async with open_secure(
        pki, rate_limit_evaluation_client=50, rate_limit_evaluation_keys=f"{key_id}=3"
    ) as server:
        await server.issue("evaluator", token=token)
        other = await server.issue("evaluator")
        freeze(server)
        request = evaluation_pb2.EvaluateRequest(flag_key="f")

        async def codes(tok: str, count: int) -> list[grpc.StatusCode]:
            md = (("authorization", f"Bearer {tok}"),)
            return [
                (await code_of(server.evaluation.Evaluate(request, metadata=md)))[0] for _ in range(count)
            ]

        assert await codes(token, 4) == [OK] * 3 + [EXHAUSTED]
        assert await codes(other, 10) == [OK] * 10
