"""The real flagd provider in in-process mode: it syncs vexil's flags (flagd.sync.v1) and evaluates
them itself, with flagd's reference evaluator, and must still agree with vexil."""

from __future__ import annotations

from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType

from tests.support.calls import eventually
from tests.support.flags import definition_fields, flag_pb
from tests.support.flagset import CONTEXTS, ENV_METADATA, FLAGS, TYPED_DEFAULTS, native, store_broken_flag
from tests.support.openfeature import OpenFeature
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.v1 import admin_pb2
from vexil.wire import dict_to_struct

BOOLEAN_FLAGS = {"bool-static", "new-ui"}  # enabled boolean flags ("killed" answers DISABLED to any type)


def in_process_provider(conn: Connected, **options) -> FlagdProvider:
    return FlagdProvider(
        host="127.0.0.1",
        port=conn.app.port,
        resolver_type=ResolverType.IN_PROCESS,
        deadline_ms=3000,
        **options,
    )


async def test_local_evaluation_matches_native_evaluate(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    # This provider's evaluator hashes `fractional` as CBOR: its environment opts in to that.
    request = admin_pb2.UpdateEnvironmentRequest()
    dict_to_struct({**ENV_METADATA, "fractionalHashing": "cbor"}, request.metadata)
    await flagd_server.admin.UpdateEnvironment(request)
    client = await openfeature.use(in_process_provider(flagd_server))
    reasons = set()
    for key in [*FLAGS, "missing"]:
        for context in CONTEXTS:
            for kind in TYPED_DEFAULTS:
                got = await openfeature.answer(client, kind, key, context)
                expected = await native(flagd_server, key, context, kind)
                if kind == "float" and key in BOOLEAN_FLAGS:
                    # The reference evaluator's quirk: a boolean passes its float check (bool is an
                    # int in Python) and comes back as 1.0 / 0.0; vexil, like flagd, says mismatch.
                    assert expected.error_code == "TYPE_MISMATCH"
                    assert got.value in (0.0, 1.0) and got.error_code is None
                    continue
                assert got == expected, (key, context, kind)
                reasons.add(got.reason)
    assert reasons == {"STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "ERROR"}


async def test_flag_set_metadata_reaches_local_evaluations(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    client = await openfeature.use(in_process_provider(flagd_server))
    details = await openfeature.details(client, "string", "color", {"country": "JP"})
    assert details.flag_metadata == {"team": "platform", "tier": 1, "owner-team": "web"}


async def test_changes_reach_the_local_copy(flagd_server: Connected, openfeature: OpenFeature) -> None:
    client = await openfeature.use(in_process_provider(flagd_server))
    body = {**FLAGS["color"], "defaultVariant": "red"}
    await flagd_server.admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(flag=flag_pb("color", **definition_fields(body)))
    )

    async def recolored() -> bool:
        return (await openfeature.answer(client, "string", "color", {})).value == "red"

    await eventually(recolored)
    created = flag_pb("fresh", {"yes": True}, default="yes")
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=created))

    async def fresh() -> bool:
        return (await openfeature.answer(client, "boolean", "fresh", {})).value is True

    await eventually(fresh)
    await flagd_server.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="incident"))

    async def all_disabled() -> bool:
        answers = [await openfeature.answer(client, "boolean", key, {}) for key in ("fresh", "bool-static")]
        return all(a.reason == "DISABLED" and a.value is False for a in answers)

    await eventually(all_disabled)


async def test_a_flag_vexil_cannot_compile_does_not_break_the_sync(
    flagd_server: Connected, openfeature: OpenFeature
) -> None:
    """A stored flag with an unknown operator is served as flagd serves it (PARSE_ERROR where the
    rule is reached), in-process and natively alike, and the rest of the sync is unaffected."""
    await store_broken_flag(flagd_server, "hand-written")
    client = await openfeature.use(in_process_provider(flagd_server))
    got = await openfeature.answer(client, "boolean", "hand-written", {})
    assert (got.value, got.error_code) == (False, "PARSE_ERROR")
    assert (await native(flagd_server, "hand-written", {}, "boolean")).error_code == "PARSE_ERROR"
    assert (await openfeature.answer(client, "boolean", "bool-static", {})).value is True


async def test_selector_on_a_server_whose_default_environment_is_not_served(openfeature: OpenFeature) -> None:
    """The provider sends its selector with SyncFlags (header and field) but not with GetMetadata."""
    async with running_app(server_settings(environments="beta")) as app, connected(app) as conn:
        flag = flag_pb("where", {"v": "from beta"}, default="v", environment="beta")
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
        client = await openfeature.use(in_process_provider(conn, selector="flagSetId=beta"))
        assert (await openfeature.answer(client, "string", "where", {})).value == "from beta"
