"""`VexilProvider` through the real `openfeature-sdk`: the same value and reason checks as the
client tests, error codes, provider events on change and on connection state, and a provider
that cannot initialize.  The SDK's global API is reset around every test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from tests.support.client import FAST, Admin, Replica, wait_until
from tests.support.flags import flag_pb
from tests.support.servers import free_port
from vexil.client import Client
from vexil.openfeature import VexilProvider


@pytest.fixture(autouse=True)
def fresh_api() -> Iterator[None]:
    api.shutdown()
    yield
    api.shutdown()


def provision(admin: Admin) -> None:
    admin.create(flag_pb("dark-mode", default="on", metadata={"owner": "web", "nested": {"dropped": True}}))
    admin.create(
        flag_pb(
            "banner", {"jp": "JP", "en": "EN"}, "en", {"if": [{"==": [{"var": "country"}, "JP"]}, "jp", None]}
        )
    )
    admin.create(
        flag_pb(
            "limit",
            {"s": 5, "l": 50},
            "s",
            {"if": [{"starts_with": [{"var": "targetingKey"}, "vip"]}, "l", None]},
        )
    )
    admin.create(flag_pb("ratio", {"x": 0.75}, "x"))
    admin.create(flag_pb("conf", {"x": {"a": [1, 2]}}, "x"))
    admin.create(flag_pb("killed", default="on", state="DISABLED"))


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_values_reasons_and_errors_through_the_sdk(server: Replica, admin: Admin, mode: str) -> None:
    provision(admin)
    provider = VexilProvider(target=server.target, mode=mode, **FAST)
    api.set_provider_and_wait(provider)
    assert api.get_provider_metadata().name == "vexil"
    client = api.get_client()
    assert client.get_provider_status() is ProviderStatus.READY
    jp = EvaluationContext(targeting_key="vip-1", attributes={"country": "JP"})

    assert client.get_boolean_value("dark-mode", False) is True
    assert client.get_string_value("banner", "?", jp) == "JP"
    assert client.get_integer_value("limit", 0, jp) == 50
    assert client.get_float_value("ratio", 0.0) == 0.75
    assert client.get_object_value("conf", {}) == {"a": [1, 2]}

    static = client.get_boolean_details("dark-mode", False)
    assert (static.reason, static.variant, static.flag_metadata) == (Reason.STATIC, "on", {"owner": "web"})
    match = client.get_string_details("banner", "?", jp)
    assert (match.reason, match.variant, match.error_code) == (Reason.TARGETING_MATCH, "jp", None)
    default = client.get_integer_details("limit", 0, EvaluationContext(targeting_key="user-1"))
    assert (default.value, default.reason) == (5, Reason.DEFAULT)
    disabled = client.get_boolean_details("killed", True)
    assert (disabled.value, disabled.reason, disabled.error_code) == (True, Reason.DISABLED, None)

    missing = client.get_boolean_details("no-such-flag", True)
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    mismatch = client.get_integer_details("banner", 9)
    assert (mismatch.value, mismatch.reason, mismatch.error_code) == (
        9,
        Reason.ERROR,
        ErrorCode.TYPE_MISMATCH,
    )
    assert client.get_float_details("dark-mode", 1.5).error_code == ErrorCode.TYPE_MISMATCH


async def test_async_resolution(server: Replica, admin: Admin) -> None:
    provision(admin)
    for mode in ("remote", "local"):
        api.set_provider_and_wait(VexilProvider(target=server.target, mode=mode, **FAST))
        client = api.get_client()
        assert (
            await client.get_string_value_async(
                "banner", "?", EvaluationContext(attributes={"country": "JP"})
            )
            == "JP"
        )
        details = await client.get_object_details_async("conf", {})
        assert (details.value, details.reason) == ({"a": [1, 2]}, Reason.STATIC)
        assert (await client.get_boolean_details_async("nope", False)).error_code == ErrorCode.FLAG_NOT_FOUND


def test_provider_events_on_change_and_on_connection_state(server: Replica, admin: Admin) -> None:
    provision(admin)
    events: list[tuple[ProviderEvent, EventDetails]] = []
    lock = threading.Lock()

    def record(kind: ProviderEvent) -> object:
        def handler(details: EventDetails) -> None:
            if details.provider_name == "vexil":  # not the no-op provider that is READY before
                with lock:
                    events.append((kind, details))

        return handler

    for kind in ProviderEvent:
        api.add_handler(kind, record(kind))  # type: ignore[arg-type]
    api.set_provider_and_wait(VexilProvider(target=server.target, mode="local", **FAST))
    client = api.get_client()
    # The SDK runs handlers on a thread pool: wait for them.
    assert wait_until(lambda: [k for k, _ in events] == [ProviderEvent.PROVIDER_READY], 5)

    admin.update(flag_pb("dark-mode", default="off"))
    assert wait_until(lambda: any(k is ProviderEvent.PROVIDER_CONFIGURATION_CHANGED for k, _ in events), 10)
    changed = next(d for k, d in events if k is ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["dark-mode"] and changed.provider_name == "vexil"
    assert client.get_boolean_value("dark-mode", True) is False

    server.stop()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.STALE, 10)
    assert client.get_boolean_value("dark-mode", True) is False  # served from the snapshot
    server.start()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, 15)
    expected = [ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY]
    assert wait_until(
        lambda: [k for k, _ in events if k is not ProviderEvent.PROVIDER_CONFIGURATION_CHANGED] == expected, 5
    )


def test_a_provider_that_cannot_connect_reports_error_and_serves_defaults() -> None:
    errors: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_ERROR, errors.append)
    api.set_provider(VexilProvider(target=f"127.0.0.1:{free_port()}", ready_timeout=0.2, **FAST))
    client = api.get_client()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.ERROR, 5)
    details = client.get_boolean_details("anything", True)
    assert (details.value, details.reason) == (True, Reason.ERROR)
    assert wait_until(lambda: bool(errors), 5) and errors[0].error_code == ErrorCode.PROVIDER_NOT_READY


def test_a_shared_client_is_left_open(server: Replica, admin: Admin) -> None:
    provision(admin)
    with Client(target=server.target, mode="local", **FAST) as shared:
        api.set_provider_and_wait(VexilProvider(client=shared))
        assert api.get_client().get_boolean_value("dark-mode", False) is True
        api.shutdown()
        assert shared.bool_value("dark-mode", False) is True  # still open: the caller owns it
    with pytest.raises(ValueError, match="either"):
        VexilProvider(client=shared, target="x:1")
