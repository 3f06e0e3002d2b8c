"""The real OpenFeature flagd provider (PyPI `openfeature-provider-flagd`) in RPC mode against vexil."""

from __future__ import annotations

import asyncio
import threading

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import CacheType, ResolverType
from openfeature.event import EventDetails, ProviderEvent

from tests.support.calls import eventually
from tests.support.flags import definition_fields, flag_pb
from tests.support.flagset import CONTEXTS, FLAGS, TYPED_DEFAULTS, native, store_broken_flag
from tests.support.openfeature import OpenFeature
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2


def rpc_provider(conn: Connected, **options) -> FlagdProvider:
    options.setdefault("cache", CacheType.DISABLED)
    return FlagdProvider(
        host="127.0.0.1", port=conn.app.port, resolver_type=ResolverType.RPC, deadline_ms=3000, **options
    )


async def test_every_type_reason_and_error_matches_native_evaluate(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    client = await openfeature.use(rpc_provider(flagd_server))
    seen_reasons, seen_errors = set(), set()
    for key in [*FLAGS, "missing"]:
        for context in CONTEXTS:
            for kind in TYPED_DEFAULTS:
                expected = await native(flagd_server, key, context, kind)
                got = await openfeature.answer(client, kind, key, context)
                assert got == expected, (key, context, kind)
                seen_reasons.add(got.reason)
                seen_errors.add(got.error_code)
    assert seen_reasons == {"STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "ERROR"}
    assert seen_errors == {None, "FLAG_NOT_FOUND", "TYPE_MISMATCH"}


async def test_typed_values(flagd_server: Connected, openfeature: OpenFeature) -> None:
    client = await openfeature.use(rpc_provider(flagd_server))
    gold = {"targetingKey": "user-1", "tier": "gold"}
    answers = {
        kind: await openfeature.answer(client, kind, key, gold)
        for kind, key in [
            ("boolean", "bool-static"),
            ("string", "color"),
            ("integer", "limit"),
            ("float", "ratio"),
            ("object", "theme"),
        ]
    }
    assert answers["boolean"].value is True and answers["boolean"].reason == "STATIC"
    assert answers["string"].value == "blue" and answers["string"].reason == "DEFAULT"
    assert answers["integer"].value == 100 and isinstance(answers["integer"].value, int)
    assert answers["integer"].variant == "big" and answers["integer"].reason == "TARGETING_MATCH"
    assert answers["float"].value == 0.25 and isinstance(answers["float"].value, float)
    assert answers["object"].value in ({"bg": "black", "size": 2}, {"bg": "white", "size": 1})
    disabled = await openfeature.answer(client, "boolean", "killed", {})
    assert (disabled.value, disabled.variant, disabled.reason) == (False, None, "DISABLED")


async def test_parse_error_of_a_broken_stored_flag(flagd_server: Connected, openfeature: OpenFeature) -> None:
    """A flag written to the store by hand that does not compile answers PARSE_ERROR (DATA_LOSS)."""
    await store_broken_flag(flagd_server, "hand-written")
    client = await openfeature.use(rpc_provider(flagd_server))
    got = await openfeature.answer(client, "boolean", "hand-written", {})
    assert got == await native(flagd_server, "hand-written", {}, "boolean")
    assert (got.reason, got.error_code) == ("ERROR", "PARSE_ERROR")


async def test_change_arrives_as_configuration_changed_and_evicts_the_cache(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    changed: list[list[str]] = []
    lock = threading.Lock()

    def on_change(details: EventDetails) -> None:
        with lock:
            changed.append(list(details.flags_changed or []))

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    try:
        client = await openfeature.use(rpc_provider(flagd_server, cache=CacheType.LRU))
        first = await openfeature.answer(client, "boolean", "bool-static", {})
        again = await openfeature.answer(client, "boolean", "bool-static", {})
        assert (first.value, first.reason) == (True, "STATIC")
        assert (again.value, again.reason) == (True, "CACHED")  # the provider caches STATIC answers

        body = {**FLAGS["bool-static"], "defaultVariant": "off"}
        await flagd_server.admin.UpdateFlag(
            admin_pb2.UpdateFlagRequest(flag=flag_pb("bool-static", **definition_fields(body)))
        )

        async def announced() -> bool:
            with lock:
                return any("bool-static" in keys for keys in changed)

        await eventually(announced)
        after = await openfeature.answer(client, "boolean", "bool-static", {})
        assert (after.value, after.variant, after.reason) == (False, "off", "STATIC")
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)


async def test_selector_picks_the_environment(openfeature: OpenFeature) -> None:
    async with (
        running_app(server_settings(environments="local,beta")) as app,
        connected(app) as conn,
    ):
        for env, value in (("local", "from local"), ("beta", "from beta")):
            flag = flag_pb("where", {"v": value}, default="v", environment=env)
            await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
        client = await openfeature.use(rpc_provider(conn, selector="flagSetId=beta"))
        assert (await openfeature.answer(client, "string", "where", {})).value == "from beta"
        await asyncio.to_thread(api.shutdown)
        client = await openfeature.use(rpc_provider(conn))
        assert (await openfeature.answer(client, "string", "where", {})).value == "from local"
