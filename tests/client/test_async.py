"""`AsyncClient` on the test's event loop, against in-process servers on the same loop:
getters in both modes, listeners (plain and coroutine), deadline, and the restart story."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import grpc
import pytest

from tests.support.client import FAST, FakeEvaluation
from tests.support.flags import flag_pb
from tests.support.servers import Connected, connected, free_port, running_app, server_settings
from vexil.client import AsyncClient, ChangeEvent, ChangeKind, ConnectionState, ErrorCode, Reason, StateEvent
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2_grpc


@pytest.fixture
async def aio_server() -> AsyncIterator[Connected]:
    """A server on the test's own loop (the package-wide `server` fixture is a threaded one)."""
    async with running_app(server_settings()) as app, connected(app) as conn:
        yield conn


async def eventually(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def create(server: Connected, msg) -> int:  # type: ignore[no-untyped-def]
    return (await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=msg))).config_version


async def update(server: Connected, msg) -> int:  # type: ignore[no-untyped-def]
    return (await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=msg))).config_version


@pytest.mark.parametrize("mode", ["remote", "local"])
async def test_getters_in_both_modes(aio_server: Connected, mode: str) -> None:
    await create(aio_server, flag_pb("dark-mode", default="on"))
    await create(
        aio_server,
        flag_pb("banner", {"jp": "JP", "en": "EN"}, "en", {"if": [{"==": [{"var": "c"}, "JP"]}, "jp", None]}),
    )
    await create(aio_server, flag_pb("limit", {"s": 5, "l": 50}, "s"))
    await create(aio_server, flag_pb("ratio", {"x": 0.5}, "x"))
    await create(aio_server, flag_pb("conf", {"x": {"a": [1, 2]}}, "x"))
    async with AsyncClient(target=aio_server.target, mode=mode, **FAST) as client:
        assert await client.wait_for_ready(10)
        assert await client.bool_value("dark-mode", False) is True
        assert await client.string_value("banner", "?", {"c": "JP"}) == "JP"
        assert await client.int_value("limit", 0) == 5
        assert await client.float_value("ratio", 0.0) == 0.5
        assert await client.object_value("conf", {}) == {"a": [1, 2]}
        details = await client.string_details("banner", "?", {"c": "JP"})
        assert (details.variant, details.reason, details.flag_version) == ("jp", Reason.TARGETING_MATCH, 1)
        assert (await client.bool_details("dark-mode", False)).reason == Reason.STATIC
        assert (await client.int_details("limit", 0)).variant == "s"
        assert (await client.float_details("limit", 0.0)).value == 5.0
        assert (await client.object_details("conf", {})).value == {"a": [1, 2]}
        missing = await client.bool_details("nope", True)
        assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        mismatch = await client.int_details("banner", 3)
        assert (mismatch.value, mismatch.error_code) == (3, ErrorCode.TYPE_MISMATCH)
        if mode == "remote":  # a context no JSON number can carry is refused before it is sent
            huge = await client.int_details("limit", -1, {"age": 10**400})
            assert (huge.value, huge.error_code) == (-1, ErrorCode.INVALID_CONTEXT)
        values = await client.all_values({"c": "JP"})
        assert values == {"banner": "JP", "conf": {"a": [1, 2]}, "dark-mode": True, "limit": 5, "ratio": 0.5}
        assert (await client.all_details())["banner"].variant == "en"
    assert client.state is ConnectionState.CLOSED
    assert await client.bool_value("dark-mode", False) is False


async def test_listeners_plain_and_coroutine(aio_server: Connected) -> None:
    await create(aio_server, flag_pb("checkout", default="off"))
    async with AsyncClient(target=aio_server.target, mode="local", **FAST) as client:
        assert await client.wait_for_ready(10)
        plain: list[ChangeEvent] = []
        awaited: list[ChangeEvent] = []

        async def slow_listener(event: ChangeEvent) -> None:
            await asyncio.sleep(0.01)
            awaited.append(event)

        client.on_change(plain.append, flag_key="checkout")
        client.on_change(slow_listener)
        version = await update(aio_server, flag_pb("checkout", default="on"))
        assert await eventually(lambda: len(awaited) == 1)
        assert plain[0].flag_keys == {"checkout"} and plain[0].config_version == version
        assert await client.bool_value("checkout", False) is True


async def test_not_started_and_unreachable() -> None:
    client = AsyncClient(target=f"127.0.0.1:{free_port()}", **FAST)
    details = await client.bool_details("x", True)
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    assert "start" in details.error_message
    async with client:
        assert not await client.wait_for_ready(0.2)
        assert await eventually(lambda: client.state is ConnectionState.ERROR, 5)
        down = await client.string_details("x", "d")
        assert (down.value, down.error_code) == ("d", ErrorCode.GENERAL)


async def test_deadline() -> None:
    server = grpc.aio.server()
    evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(FakeEvaluation(delay=2.0), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with AsyncClient(target=f"127.0.0.1:{port}", deadline=0.1) as client:
            began = time.monotonic()
            details = await client.bool_details("x", False)
            assert time.monotonic() - began < 1.0
            assert (details.value, details.reason) == (False, Reason.ERROR)
            assert details.error_message.startswith("DEADLINE_EXCEEDED")
    finally:
        await server.stop(0)


async def test_restart_on_the_same_port_with_writes_through_another_replica() -> None:
    store = MemoryStore()  # one database, two replicas
    port = free_port()
    async with running_app(server_settings(), store) as second_app, connected(second_app) as second:
        first = AsyncExitStack()
        first_server = await first.enter_async_context(
            connected(await first.enter_async_context(running_app(server_settings(port=port), store)))
        )
        await create(first_server, flag_pb("checkout", default="off"))
        client = AsyncClient(target=first_server.target, mode="local", **FAST)
        states: list[StateEvent] = []
        changes: list[ChangeEvent] = []
        client.on_state(states.append)
        client.on_change(changes.append)
        async with client:
            assert await client.wait_for_ready(10)
            start = client.status().config_version

            await first.aclose()  # the server goes away mid-stream
            assert await eventually(lambda: client.state is ConnectionState.STALE)
            written = [await update(second, flag_pb("checkout", default="on"))]
            written.append(await create(second, flag_pb("later", default="on")))

            async with running_app(server_settings(port=port), store):
                assert await eventually(lambda: client.status().config_version == written[-1], 15)
                assert await eventually(lambda: client.state is ConnectionState.READY, 5)
                assert [e.config_version for e in changes] == list(range(start + 1, written[-1] + 1))
                assert ChangeKind.SNAPSHOT not in {e.kind for e in changes}
                assert [str(e.state) for e in states] == ["READY", "STALE", "READY"]
                assert await client.bool_value("checkout", False) is True
                assert await client.bool_value("later", False) is True
