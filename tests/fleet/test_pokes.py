"""Pokes: after a write the writer tells the other live replicas "version N exists" and they read
the change log at once; a poke that is lost leaves the poll to deliver; a forged poke costs at
most one rate-limited change-log read, and without the replica secret (when one is set) none."""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.support.flags import flag_model, flag_pb
from tests.support.fleet import own_id, replicas, served_version, status, wait_until
from tests.support.richstatus import from_error
from tests.support.servers import (
    ServerProcess,
    dynamodb_replica,
    free_port,
    running_app,
    server_settings,
    started_together,
)
from vexil.app import App
from vexil.v1 import admin_pb2, admin_pb2_grpc, replica_pb2, replica_pb2_grpc

SLOW_POLL = ("--poll-interval", "5")
"""A poll this slow cannot explain a write arriving within a second: only a poke can."""


async def _write_and_time(writer: str, reader: str, keys: list[str]) -> list[float]:
    """Create each flag through `writer`; seconds until `reader` serves it."""
    delays = []
    async with grpc.aio.insecure_channel(writer) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for key in keys:
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key)), timeout=10)
            acked = time.monotonic()
            await wait_until(lambda k=key: served_version(reader, k), 10, f"{reader} serves {key}", 0.01)
            delays.append(time.monotonic() - acked)
    return delays


async def _registered(a: ServerProcess, b: ServerProcess) -> None:
    """Until A's heartbeat has read B's record (whom to poke: up to a heartbeat after B starts)."""
    b_id = await own_id(b.target)
    await wait_until(lambda: _listed(a.target, b_id), 10, "A lists B")
    await asyncio.sleep(2.5)  # A's next full heartbeat (2 s) re-reads its peers


async def _listed(target: str, replica_id: str) -> bool:
    return replica_id in replicas(await status(target))


def _metric(http_port: int, outcome: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f'vexil_replica_pokes_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_poke_makes_the_other_replica_read_the_change_log_at_once(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    with started_together(
        dynamodb_replica(tmp_path, endpoint, table, *SLOW_POLL),
        dynamodb_replica(tmp_path, endpoint, table, *SLOW_POLL),
    ) as (a, b):
        await _registered(a, b)
        delays = await _write_and_time(a.target, b.target, [f"poked-{i}" for i in range(10)])
        print(f"poked: median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
        assert max(delays) < 1.0, delays  # the poll (5 s) would take 2.5 s on average
        assert _metric(a.http_port, "sent") >= 10
        assert _metric(b.http_port, "accepted") >= 10


async def test_a_lost_poke_leaves_the_poll_to_deliver(tmp_path, dynamo_table) -> None:
    endpoint, table = dynamo_table
    nobody = f"127.0.0.1:{free_port()}"  # B advertises an address where nothing listens
    with started_together(
        dynamodb_replica(tmp_path, endpoint, table),
        dynamodb_replica(tmp_path, endpoint, table, "--advertise-address", nobody),
    ) as (a, b):
        await _registered(a, b)
        delays = await _write_and_time(a.target, b.target, [f"polled-{i}" for i in range(3)])
        print(f"poke lost, polled: {[round(d * 1000) for d in delays]} ms")
        assert _metric(a.http_port, "failed") >= 3  # the pokes really were lost ...
        assert _metric(b.http_port, "accepted") == 0
        assert max(delays) < 1.0 + 2.0, delays  # ... and the 1 s poll delivered each write


@pytest.fixture
async def lone(dynamo_table) -> AsyncIterator[App]:
    """One in-process replica on the emulator whose own poll is too slow to count (60 s)."""
    endpoint, table = dynamo_table
    settings = server_settings(
        store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table, poll_interval=60.0
    )
    async with running_app(settings) as app:
        yield app


def _count_reads(app: App) -> list[int]:
    """Count the change-log reads the feed makes (the read a poke may cause)."""
    reads = [0]
    list_changes = app.store.list_changes

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads[0] += 1
        return await list_changes(*args, **kwargs)

    app.store.list_changes = counted  # type: ignore[method-assign]
    return reads


async def test_forged_pokes_cost_at_most_one_rate_limited_read_each(lone: App) -> None:
    reads = _count_reads(lone)
    served = lone.cache.get("local").config_version
    async with grpc.aio.insecure_channel(f"127.0.0.1:{lone.port}") as channel:
        stub = replica_pb2_grpc.ReplicaServiceStub(channel)
        # A poke for a version already served costs nothing at all.
        for _ in range(5):
            answer = await stub.Poke(replica_pb2.PokeRequest(environment="local", config_version=served))
            assert not answer.read
        await asyncio.sleep(0.2)
        assert reads[0] == 0
        # A flood of forged pokes for a version that does not exist: the caller's bucket
        # (20 per second, its burst) lets a few through, each at most one read; the rest are refused.
        codes: list[grpc.StatusCode] = []
        started = time.monotonic()
        for _ in range(200):
            try:
                await stub.Poke(replica_pb2.PokeRequest(environment="local", config_version=10**9))
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)
    accepted = codes.count(grpc.StatusCode.OK)
    refused = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    print(f"200 forged pokes in {elapsed:.2f} s: {accepted} accepted, {refused} refused, {reads[0]} reads")
    assert accepted + refused == 200
    assert accepted <= 20 + 20 * elapsed + 1
    assert refused >= 200 - (20 + 20 * elapsed + 1)
    assert 1 <= reads[0] <= accepted  # one change-log read per accepted poke at most (often fewer)
    assert lone.cache.get("local").config_version == served  # and nothing changed


async def test_unknown_environment_is_not_found(lone: App) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{lone.port}") as channel:
        stub = replica_pb2_grpc.ReplicaServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Poke(replica_pb2.PokeRequest(environment="nowhere", config_version=3))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert from_error(raised.value).reason == "ENVIRONMENT_NOT_SERVED"  # as every other door says it


async def test_with_a_replica_secret_only_its_holders_may_poke(tmp_path: Path) -> None:
    secret = tmp_path / "replica-secret"
    secret.write_text("s3cret-shared-by-the-replicas\n")
    settings = server_settings(replica_secret_file=str(secret), poll_interval=60.0)
    async with running_app(settings) as app:
        reads = _count_reads(app)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = replica_pb2_grpc.ReplicaServiceStub(channel)
            request = replica_pb2.PokeRequest(environment="local", config_version=10**9)
            for metadata in ((), (("x-vexil-replica-secret", "guess-guess-guess-guess"),)):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await stub.Poke(request, metadata=metadata)
                assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "replica secret" in (raised.value.details() or "")
            await asyncio.sleep(0.2)
            assert reads[0] == 0
            good = (("x-vexil-replica-secret", "s3cret-shared-by-the-replicas"),)
            assert (await stub.Poke(request, metadata=good)).read
            await wait_until(lambda: reads[0] >= 1, 5, "the accepted poke made a read")


async def test_with_authentication_and_no_secret_pokes_are_neither_sent_nor_accepted() -> None:
    async with running_app(server_settings(auth_mode="required", poll_interval=60.0)) as app:
        assert app.pokes is None and app.fleet.send_poke is None
        reads = _count_reads(app)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = replica_pb2_grpc.ReplicaServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Poke(replica_pb2.PokeRequest(environment="local", config_version=10**9))
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "replica_secret_file" in (raised.value.details() or "")
        await asyncio.sleep(0.2)
        assert reads[0] == 0


async def _two_tls_replicas_write_and_wait(tmp_path: Path) -> float | None:
    """Replicas A and B on one store (two Apps in this process share a MemoryStore, as two
    processes share a table), both serving TLS; B polls once a minute.  Write through A; the
    seconds until B serves the write, or None when it did not within 2 s."""
    from tests.support.pki import make_pki
    from tests.support.servers import secure_settings, tls_channel
    from vexil.store.memory import MemoryStore

    pki = make_pki(tmp_path / "pki")
    store = MemoryStore()
    tls = {"auth_mode": "none", "replica_heartbeat": 0.2, "replica_expiry": 2.0}
    a_settings = secure_settings(pki, **tls, replica_ca_cert=pki.ca)
    b_settings = secure_settings(pki, **tls, poll_interval=60.0)
    async with running_app(a_settings, store) as a, running_app(b_settings, store) as b:
        await wait_until(lambda: len(a.fleet.known_replicas("local")) == 2, 5, "A knows B")
        async with tls_channel(f"localhost:{a.port}", pki) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("over-tls")), timeout=10)
        acked = time.monotonic()
        try:
            await wait_until(lambda: b.cache.get("local").entries.get("over-tls"), 2.0, "B serves it", 0.01)
        except AssertionError:
            return None
        return time.monotonic() - acked


async def test_pokes_travel_over_tls_trusting_the_replica_ca(tmp_path: Path) -> None:
    took = await _two_tls_replicas_write_and_wait(tmp_path)
    assert took is not None and took < 1.0, took  # B's own poll is a minute away: a poke did it


async def test_a_poke_to_a_certificate_it_cannot_verify_is_lost_and_nothing_breaks(tmp_path: Path) -> None:
    # The writer A is given no replica CA: the system's roots do not know the test CA, so A cannot
    # verify B's certificate and its poke fails; B finds the write at its next poll, not before.
    from tests.support.pki import make_pki
    from tests.support.servers import secure_settings
    from vexil.store.memory import MemoryStore

    pki = make_pki(tmp_path / "pki")
    store = MemoryStore()
    tls = {"auth_mode": "none", "replica_heartbeat": 0.2, "replica_expiry": 2.0}
    async with (
        running_app(secure_settings(pki, **tls), store) as a,
        running_app(secure_settings(pki, **tls, poll_interval=60.0), store) as b,
    ):
        await wait_until(lambda: len(a.fleet.known_replicas("local")) == 2, 5, "A knows B")
        await a.service.create_flag(flag_model("unverified"), actor="test")
        await asyncio.sleep(1.0)
        assert "unverified" not in b.cache.get("local").entries  # the poke did not get through
        failed = [
            s for s in a.metrics.replica_pokes.collect()[0].samples if s.labels == {"outcome": "failed"}
        ]
        assert failed and failed[0].value >= 1


async def test_a_peer_certificate_is_verified_against_the_replica_tls_server_name(tmp_path: Path) -> None:
    """B advertises an address its certificate does not name (0.0.0.0 reaches this machine on
    Linux, as a pod IP reaches a pod): A's poke verifies B against the configured name instead."""
    from tests.support.pki import make_pki
    from tests.support.servers import secure_settings
    from vexil.store.memory import MemoryStore

    pki = make_pki(tmp_path / "pki")
    tls = {"auth_mode": "none", "replica_heartbeat": 0.2, "replica_expiry": 2.0}
    for name, delivered in (("", False), ("localhost", True)):
        store = MemoryStore()
        port = free_port()
        a_settings = secure_settings(pki, **tls, replica_ca_cert=pki.ca, replica_tls_server_name=name)
        b_settings = secure_settings(
            pki, **tls, port=port, advertise_address=f"0.0.0.0:{port}", poll_interval=60.0
        )
        async with running_app(a_settings, store) as a, running_app(b_settings, store) as b:
            await wait_until(lambda a=a: len(a.fleet.known_replicas("local")) == 2, 5, "A knows B")
            await a.service.create_flag(flag_model("named"), actor="test")
            try:
                await wait_until(
                    lambda b=b: "named" in b.cache.get("local").entries, 1.5, "B serves it", 0.01
                )
                got = True
            except AssertionError:
                got = False
        assert got is delivered, f"replica_tls_server_name={name!r}"
