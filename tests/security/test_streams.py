"""Open streams end when their credentials stop being valid: revoked (at once on this replica,
within the key cache TTL on another), rotated out, expired, and JWTs at their `exp`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.calls import eventually
from tests.support.flags import flag_pb
from tests.support.openfeature import stub
from tests.support.pki import PkiFiles
from tests.support.secure import Secure, open_secure
from vexil.store.keys import MemoryKeyStore
from vexil.transport import flagd_protos
from vexil.v1 import admin_pb2, evaluation_pb2, keys_pb2

WatchRequest = evaluation_pb2.WatchRequest


def open_streams(server: Secure, token: str) -> dict[str, Any]:
    """Watch, flagd EventStream (v1 and v2) and SyncFlags, all opened with `token`."""
    md = (("authorization", f"Bearer {token}"),)
    v1 = stub(server.channel, flagd_protos.EVALUATION_V1)
    v2 = stub(server.channel, flagd_protos.EVALUATION_V2)
    sync = stub(server.channel, flagd_protos.SYNC_V1)
    return {
        "Watch": server.evaluation.Watch(WatchRequest(), metadata=md),
        "EventStream v1": v1.EventStream(flagd_protos.evaluation_v1.EventStreamRequest(), metadata=md),
        "EventStream v2": v2.EventStream(flagd_protos.evaluation_v2.EventStreamRequest(), metadata=md),
        "SyncFlags": sync.SyncFlags(flagd_protos.sync_v1.SyncFlagsRequest(), metadata=md),
    }


async def ended(stream: Any, within: float) -> grpc.aio.AioRpcError:
    """Read until the stream ends (heartbeats are fine); its error, or fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stream.cancel()
            raise AssertionError(f"stream still open after {within} s")
        try:
            message = await asyncio.wait_for(stream.read(), remaining)
        except grpc.aio.AioRpcError as exc:
            return exc
        except TimeoutError:
            continue
        assert message is not grpc.aio.EOF, "stream ended without a status"


async def started(streams: dict[str, Any]) -> None:
    for stream in streams.values():
        await asyncio.wait_for(stream.read(), 5)


async def open_count(secure: Secure, expected: int) -> None:
    """Wait (bounded) until the server holds `expected` open streams: a client sees its stream
    end when the status arrives, a moment before the server's handler has released it."""

    async def reached() -> bool:
        return secure.app.security.streams.count() == expected

    await eventually(reached, timeout=2.0, interval=0.01)


async def test_revoking_a_key_ends_its_open_streams_at_once(secure: Secure) -> None:
    token = await secure.issue("evaluator")
    bystander = open_streams(secure, secure.tokens["evaluator"])
    streams = open_streams(secure, token)
    await started(streams)
    await started(bystander)
    assert secure.app.security.streams.count() == 8
    await secure.key_service.RevokeKey(keys_pb2.RevokeKeyRequest(id=token[4:20]), metadata=secure.md("root"))
    for name, stream in streams.items():
        error = await ended(stream, within=1.0)
        assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, "API key revoked"), name
    await open_count(secure, 4)  # other keys' streams go on
    for name, stream in bystander.items():
        if name != "SyncFlags":  # the others send heartbeats while idle
            assert await asyncio.wait_for(stream.read(), 5) is not grpc.aio.EOF
        stream.cancel()
    await open_count(secure, 0)


async def test_a_revocation_on_another_replica_ends_streams_within_the_cache_ttl(pki: PkiFiles) -> None:
    keys = MemoryKeyStore()  # shared, as the DynamoDB table is by real replicas
    async with (
        open_secure(pki, key_store=keys, key_cache_ttl=1.0) as replica_a,
        open_secure(pki, key_store=keys, key_cache_ttl=1.0) as replica_b,
    ):
        root = await replica_a.issue("admin", "*")
        token = await replica_a.issue("evaluator")
        watch = replica_b.evaluation.Watch(WatchRequest(), metadata=(("authorization", f"Bearer {token}"),))
        await asyncio.wait_for(watch.read(), 5)
        revoked_at = time.monotonic()
        await replica_a.key_service.RevokeKey(
            keys_pb2.RevokeKeyRequest(id=token[4:20]), metadata=(("authorization", f"Bearer {root}"),)
        )
        error = await ended(watch, within=4.0)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - revoked_at <= 1.0 + 1.0 + 1.0  # TTL + one sweep + slack


async def test_rotation_ends_streams_of_the_old_secret_when_its_overlap_ends(secure: Secure) -> None:
    token = await secure.issue("evaluator")
    old = secure.evaluation.Watch(WatchRequest(), metadata=(("authorization", f"Bearer {token}"),))
    await asyncio.wait_for(old.read(), 5)
    rotated = await secure.key_service.RotateKey(
        keys_pb2.RotateKeyRequest(id=token[4:20], overlap_seconds=3600), metadata=secure.md("root")
    )
    new = secure.evaluation.Watch(WatchRequest(), metadata=(("authorization", f"Bearer {rotated.token}"),))
    await asyncio.wait_for(new.read(), 5)
    assert await asyncio.wait_for(old.read(), 5) is not grpc.aio.EOF  # overlap: still open
    secure.app.security.streams.clock = lambda: time.time() + 3601
    await secure.app.security.streams.sweep()
    error = await ended(old, within=1.0)
    assert "rotated out" in (error.details() or "")
    assert await asyncio.wait_for(new.read(), 5) is not grpc.aio.EOF
    new.cancel()


async def test_expired_keys_and_tokens_end_their_streams(pki: PkiFiles, tmp_path: Any) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s" * 40)
    async with open_secure(
        pki, jwt_secret_file=str(secret), jwt_issuer="idp", jwt_audience="vexil"
    ) as server:
        token = await server.issue("evaluator", lifetime=3600)
        now = int(time.time())
        claims = {"iss": "idp", "aud": "vexil", "sub": "ops", "iat": now, "exp": now + 60}
        admin_jwt = jwt.encode(
            {**claims, "roles": ["admin"], "environments": ["*"]}, "s" * 40, algorithm="HS256"
        )
        key_watch = server.evaluation.Watch(WatchRequest(), metadata=(("authorization", f"Bearer {token}"),))
        jwt_watch = server.evaluation.Watch(
            WatchRequest(), metadata=(("authorization", f"Bearer {admin_jwt}"),)
        )
        await asyncio.wait_for(key_watch.read(), 5)
        await asyncio.wait_for(jwt_watch.read(), 5)
        server.app.security.streams.clock = lambda: time.time() + 120
        await server.app.security.streams.sweep()
        assert (await ended(jwt_watch, within=1.0)).details() == "token expired"
        assert await asyncio.wait_for(key_watch.read(), 5) is not grpc.aio.EOF
        server.app.security.streams.clock = lambda: time.time() + 3601
        await server.app.security.streams.sweep()
        assert (await ended(key_watch, within=1.0)).details() == "API key expired"


@pytest.mark.parametrize("revoke_first", [True, False])
async def test_a_ticket_closed_before_its_stream_subscribes_still_ends_it(revoke_first: bool) -> None:
    from vexil.identity import Principal
    from vexil.security.authn import Identity
    from vexil.security.streams import StreamTicket, TrackedHub, current_ticket

    hub = TrackedHub()
    ticket = StreamTicket(Identity(Principal("key:x", "evaluator"), key_id="x"))
    if revoke_first:
        ticket.close("API key revoked")
    token = current_ticket.set(ticket)
    try:
        sub = hub.subscribe("local")
    finally:
        current_ticket.reset(token)
    ticket.close("API key revoked")
    assert sub.closed_reason == "API key revoked"
    assert hub.subscribe("local").closed_reason == ""  # outside a stream call: untracked


async def test_the_sweeper_runs_until_stopped_and_never_after() -> None:
    """`stop` returns only once the sweeper has ended: no sweep reads the key store after it (the
    store is closed right after, on shutdown)."""
    from typing import cast

    from vexil.identity import Principal
    from vexil.security.authn import Identity
    from vexil.security.keys import KeyManager
    from vexil.security.streams import StreamRegistry

    class CountingKeys:
        """The one call a sweep makes on the key manager, counted."""

        lookups = 0

        async def lookup(self, key_id: str) -> None:
            self.lookups += 1
            await asyncio.sleep(0)

    keys = CountingKeys()
    registry = StreamRegistry(cast(KeyManager, keys), sweep_seconds=0.01)
    registry.open(Identity(Principal("key:x", "evaluator"), key_id="x"))
    registry.start()

    async def swept_twice() -> bool:
        return keys.lookups >= 2

    await eventually(swept_twice, timeout=10.0)
    await registry.stop()
    stopped_at = keys.lookups
    await asyncio.sleep(0.2)  # twenty sweep periods: a sweeper still running would have looked again
    assert keys.lookups == stopped_at


async def test_an_event_stream_without_selector_announces_only_what_the_key_may_read(
    pki: PkiFiles,
) -> None:
    """A stream that names no environment announces every one the credentials may read, and no
    other: a key of `beta` never hears of a change in `local`."""
    async with open_secure(pki) as server:
        beta = await server.issue("evaluator", "beta")
        root = await server.issue("admin", "*")
        md = (("authorization", f"Bearer {beta}"),)
        events = stub(server.channel, flagd_protos.EVALUATION_V2).EventStream(
            flagd_protos.evaluation_v2.EventStreamRequest(), metadata=md
        )
        assert (await asyncio.wait_for(events.read(), 5)).type == "provider_ready"
        admin_md = (("authorization", f"Bearer {root}"),)
        for env in ("local", "beta"):
            flag = flag_pb(f"new-in-{env}", environment=env)
            await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag), metadata=admin_md)
        heard: list[str] = []
        for _ in range(10):
            event = await asyncio.wait_for(events.read(), 5)
            if event.type == "configuration_change":
                heard.extend(event.data["flags"].keys())
                break
        assert heard == ["new-in-beta"], heard
        events.cancel()


async def test_one_credential_holds_at_most_100_streams_from_one_address(secure: Secure) -> None:
    """Every open stream holds server memory (4,000 unread Watch streams of one key: 250 MB), and
    the rate limit bounds only how fast they open.  A service instance follows an environment or
    two: the 101st stream of one credential from one address is RESOURCE_EXHAUSTED, with a
    retry-after; closing one makes room, and another credential is not affected."""
    md = secure.md("evaluator")
    opened = [secure.evaluation.Watch(WatchRequest(), metadata=md) for _ in range(100)]
    await started(dict(enumerate(opened)))
    refused = secure.evaluation.Watch(WatchRequest(), metadata=md)
    error = await ended(refused, within=5)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert "100 open streams" in (error.details() or "")
    assert dict(error.trailing_metadata() or ()).get("retry-after") == "1"
    other = secure.evaluation.Watch(WatchRequest(), metadata=secure.md("editor"))
    await started({"other": other})
    opened.pop().cancel()
    await asyncio.sleep(0.2)
    again = secure.evaluation.Watch(WatchRequest(), metadata=md)
    await started({"again": again})
    for stream in (*opened, other, again):
        stream.cancel()


async def test_streams_open_to_all_count_by_address(secure: Secure) -> None:
    """Health Watch and reflection need no credentials, and each open stream holds one of the
    calls the server has open at once: without a bound, one address could open them all and
    every other client's calls would be refused.  They count by address: the 101st is
    RESOURCE_EXHAUSTED, whatever the method; a stream with credentials is not affected."""
    health = health_pb2_grpc.HealthStub(secure.channel)
    opened = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(99)]
    await started(dict(enumerate(opened)))
    reflection = reflection_pb2_grpc.ServerReflectionStub(secure.channel).ServerReflectionInfo()
    await reflection.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    assert (await asyncio.wait_for(reflection.read(), 5)).list_services_response.service
    refused = health.Watch(health_pb2.HealthCheckRequest())
    error = await ended(refused, within=5)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert "this address already holds 100 open streams of methods open to all" in (error.details() or ""), (
        error
    )
    watch = secure.evaluation.Watch(WatchRequest(), metadata=secure.md("evaluator"))
    await started({"watch": watch})
    reflection.cancel()
    await asyncio.sleep(0.2)
    again = health.Watch(health_pb2.HealthCheckRequest())
    await started({"again": again})
    for stream in (*opened, watch, again):
        stream.cancel()
