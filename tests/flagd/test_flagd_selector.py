"""Environment selection for callers that know nothing of vexil: selector header, deprecated selector
field, credentials' environment, server default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.openfeature import stub
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil import identity
from vexil.errors import PermissionDenied
from vexil.flagd_compat.selector import select_environment
from vexil.transport.flagd_protos import EVALUATION_V2, SYNC_V1, evaluation_v2, sync_v1
from vexil.v1 import admin_pb2


@pytest.fixture
async def two_environments() -> AsyncIterator[Connected]:
    async with running_app(server_settings(environments="local,beta")) as app, connected(app) as conn:
        for env in ("local", "beta"):
            flag = flag_pb("where", {"v": f"from {env}"}, default="v", environment=env)
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
        yield conn


async def where(conn: Connected, selector: str | None) -> str:
    metadata = (("flagd-selector", selector),) if selector is not None else None
    request = evaluation_v2.ResolveStringRequest(flag_key="where")
    return (await stub(conn.channel, EVALUATION_V2).ResolveString(request, metadata=metadata)).value


async def test_the_selector_header_picks_the_environment(two_environments: Connected) -> None:
    assert await where(two_environments, None) == "from local"  # the server's default environment
    assert await where(two_environments, "flagSetId=beta") == "from beta"
    assert await where(two_environments, "beta") == "from beta"  # a bare name
    assert await where(two_environments, " flagSetId = beta , flagSetId=beta") == "from beta"
    assert await where(two_environments, "") == "from local"


@pytest.mark.parametrize(
    "selector", ["flagSetId=gamma", "source=flags.json", "flagSetId=local,flagSetId=beta"]
)
async def test_selectors_vexil_cannot_honour_are_refused(two_environments: Connected, selector: str) -> None:
    """FAILED_PRECONDITION, which providers report as GENERAL: not FLAG_NOT_FOUND or TYPE_MISMATCH."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await where(two_environments, selector)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "gamma" in err.value.details() or "selector" in err.value.details()


async def test_a_selector_sent_twice_is_one_selector(two_environments: Connected) -> None:
    """As OFREP reads an HTTP header sent twice: the values must name one environment."""
    request = evaluation_v2.ResolveStringRequest(flag_key="where")
    resolve = stub(two_environments.channel, EVALUATION_V2).ResolveString
    twice = (("flagd-selector", "beta"), ("flagd-selector", "flagSetId=beta"))
    assert (await resolve(request, metadata=twice)).value == "from beta"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve(request, metadata=(("flagd-selector", "beta"), ("flagd-selector", "local")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "more than one environment" in (err.value.details() or "")
    sync = stub(two_environments.channel, SYNC_V1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sync.FetchAllFlags(
            sync_v1.FetchAllFlagsRequest(), metadata=(("flagd-selector", "local"), ("flagd-selector", "beta"))
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_sync_honours_the_deprecated_field_but_the_header_wins(two_environments: Connected) -> None:
    sync = stub(two_environments.channel, SYNC_V1)
    by_field = await sync.FetchAllFlags(sync_v1.FetchAllFlagsRequest(selector="beta"))
    assert "from beta" in by_field.flag_configuration
    both = await sync.FetchAllFlags(
        sync_v1.FetchAllFlagsRequest(selector="beta"), metadata=(("flagd-selector", "flagSetId=local"),)
    )
    assert "from local" in both.flag_configuration


async def test_event_stream_follows_only_the_selected_environment(two_environments: Connected) -> None:
    events = stub(two_environments.channel, EVALUATION_V2).EventStream(
        evaluation_v2.EventStreamRequest(), metadata=(("flagd-selector", "flagSetId=beta"),)
    )
    assert (await asyncio.wait_for(events.read(), 5)).type == "provider_ready"
    for env in ("local", "beta"):
        flag = flag_pb(f"new-in-{env}", {"on": True}, default="on", environment=env)
        await two_environments.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
    event = await asyncio.wait_for(events.read(), 5)
    assert event.type == "configuration_change" and list(event.data["flags"].keys()) == ["new-in-beta"]
    events.cancel()


async def changes_heard(events: Any, count: int) -> list[str]:
    """The flag keys of the next `count` configuration changes (keep-alives skipped, bounded)."""
    heard: list[str] = []
    for _ in range(4 * count + 4):
        if len(heard) == count:
            break
        event = await asyncio.wait_for(events.read(), 5)
        if event.type == "configuration_change":
            heard.extend(event.data["flags"].keys())
    return heard


async def test_an_event_stream_without_selector_announces_every_environment(
    two_environments: Connected,
) -> None:
    """flagd announces changes to every flag set on a stream that names none.  The JavaScript
    RPC provider sends its selector on Resolve calls but not on EventStream: announcing the
    default environment only, its cache of the selected one was never evicted (served stale)."""
    events = stub(two_environments.channel, EVALUATION_V2).EventStream(evaluation_v2.EventStreamRequest())
    assert (await asyncio.wait_for(events.read(), 5)).type == "provider_ready"
    for env in ("beta", "local", "beta"):
        flag = flag_pb("where", {"v": f"again from {env}"}, default="v", environment=env)
        current = await two_environments.admin.GetFlag(admin_pb2.GetFlagRequest(key="where", environment=env))
        request = admin_pb2.UpdateFlagRequest(flag=flag, expected_version=current.version)
        await two_environments.admin.UpdateFlag(request)
    assert await changes_heard(events, 3) == ["where", "where", "where"]
    events.cancel()


def as_principal(environments: frozenset[str] | None) -> Any:
    return identity.current_principal.set(identity.Principal("key-1", "evaluator", environments))


async def test_credentials_scope_the_environment(two_environments: Connected) -> None:
    service = two_environments.app.service
    token = as_principal(frozenset({"beta"}))
    try:
        assert select_environment(service, "") == "beta"  # the credentials' one environment
        assert select_environment(service, "flagSetId=beta") == "beta"
        with pytest.raises(PermissionDenied):
            select_environment(service, "flagSetId=local")
    finally:
        identity.current_principal.reset(token)
    token = as_principal(None)  # unrestricted credentials: the selector, else the server default
    try:
        assert select_environment(service, "beta") == "beta"
        assert select_environment(service, "") == "local"
    finally:
        identity.current_principal.reset(token)
