"""The foundation's end-to-end story over a real loopback server: create, evaluate, conflict,
update, watch, kill switches, history, rollback and resume."""

from __future__ import annotations

import grpc
import pytest

from tests.support.calls import context, next_event
from tests.support.flags import flag_pb
from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2, flag_pb2

WatchEvent = evaluation_pb2.WatchEvent


async def evaluate(server: Connected, key: str, **attrs) -> evaluation_pb2.EvaluateResponse:
    return await server.evaluation.Evaluate(
        evaluation_pb2.EvaluateRequest(flag_key=key, context=context(**attrs))
    )


async def test_create_evaluate_conflict_update_watch_kill_history_rollback(server: Connected) -> None:
    watch = server.evaluation.Watch(evaluation_pb2.WatchRequest())
    first = await next_event(watch)
    assert first.type == WatchEvent.TYPE_SNAPSHOT
    assert first.reason == "initial"
    base_version = first.config_version

    created = await server.admin.CreateFlag(
        admin_pb2.CreateFlagRequest(flag=flag_pb("checkout", owner="payments"), reason="new")
    )
    assert created.flag.version == 1
    assert created.flag.environment == "local"
    assert created.config_version == base_version + 1

    res = await evaluate(server, "checkout", targetingKey="u1")
    assert res.WhichOneof("value") == "bool_value" and res.bool_value is False
    assert res.variant == "off"
    assert res.reason == evaluation_pb2.REASON_STATIC
    assert res.flag_version == 1
    assert res.config_version == created.config_version

    # A stale expected_version is refused with ABORTED and nothing changes.
    stale = flag_pb("checkout", default="on")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=stale, expected_version=7))
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "1" in err.value.details()
    unchanged = await server.admin.GetFlag(admin_pb2.GetFlagRequest(key="checkout"))
    assert unchanged.version == 1 and unchanged.default_variant == "off"
    assert (await evaluate(server, "checkout")).bool_value is False

    updated = await server.admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(flag=flag_pb("checkout", default="on"), expected_version=1, reason="go")
    )
    assert updated.flag.version == 2
    assert (await evaluate(server, "checkout")).bool_value is True

    # Per-flag kill: DISABLED, no value (the caller's default applies).
    killed = await server.admin.SetKillSwitch(
        admin_pb2.SetKillSwitchRequest(flag_key="checkout", killed=True, reason="incident 42")
    )
    assert killed.flag.state == flag_pb2.FLAG_STATE_DISABLED
    res = await evaluate(server, "checkout")
    assert res.reason == evaluation_pb2.REASON_DISABLED
    assert res.WhichOneof("value") is None
    await server.admin.SetKillSwitch(
        admin_pb2.SetKillSwitchRequest(flag_key="checkout", killed=False, reason="resolved")
    )
    assert (await evaluate(server, "checkout")).bool_value is True

    # Environment kill: every flag DISABLED; reviving restores them.
    env_kill = await server.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="outage"))
    assert env_kill.environment.kill_switch is True
    assert (await evaluate(server, "checkout")).reason == evaluation_pb2.REASON_DISABLED
    await server.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=False, reason="over"))
    assert (await evaluate(server, "checkout")).bool_value is True

    # The Watch stream saw every change, in order, with increasing config_version.
    kinds = []
    versions = []
    for _ in range(6):
        event = await next_event(watch)
        kinds.append(event.type)
        versions.append(event.config_version)
    assert kinds == [
        WatchEvent.TYPE_UPSERT,
        WatchEvent.TYPE_UPSERT,
        WatchEvent.TYPE_UPSERT,
        WatchEvent.TYPE_UPSERT,
        WatchEvent.TYPE_ENVIRONMENT,
        WatchEvent.TYPE_ENVIRONMENT,
    ]
    assert versions == list(range(base_version + 1, base_version + 7))
    watch.cancel()

    # History newest first, then rollback to version 1 (the "off" default) as a new version.
    history = await server.admin.GetFlagHistory(admin_pb2.GetFlagHistoryRequest(key="checkout"))
    assert [r.flag.version for r in history.revisions] == [4, 3, 2, 1]
    assert history.revisions[1].reason == "incident 42"
    rolled = await server.admin.RollbackFlag(
        admin_pb2.RollbackFlagRequest(key="checkout", to_version=1, expected_version=4)
    )
    assert rolled.flag.version == 5 and rolled.flag.default_variant == "off"
    assert (await evaluate(server, "checkout")).bool_value is False

    changes = await server.admin.ListChanges(admin_pb2.ListChangesRequest(since_version=base_version))
    assert [c.kind for c in changes.changes] == [
        flag_pb2.CHANGE_KIND_CREATE,
        flag_pb2.CHANGE_KIND_UPDATE,
        flag_pb2.CHANGE_KIND_KILL,
        flag_pb2.CHANGE_KIND_KILL,
        flag_pb2.CHANGE_KIND_ENVIRONMENT,
        flag_pb2.CHANGE_KIND_ENVIRONMENT,
        flag_pb2.CHANGE_KIND_ROLLBACK,
    ]
    assert changes.changes[0].actor.startswith("anonymous@")
    assert changes.changes[2].reason == "incident 42"


async def test_resume_with_since_version_misses_nothing(server: Connected) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("a")))
    watch = server.evaluation.Watch(evaluation_pb2.WatchRequest())
    snapshot = await next_event(watch)
    seen = snapshot.config_version
    watch.cancel()  # disconnect

    for i in range(5):  # written while the subscriber is away
        await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(f"away-{i}")))
    await server.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key="a"))

    resumed = server.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=seen))
    events = [await next_event(resumed) for _ in range(6)]
    assert [e.config_version for e in events] == list(range(seen + 1, seen + 7))
    assert [e.flag_key for e in events] == [f"away-{i}" for i in range(5)] + ["a"]
    assert events[-1].type == WatchEvent.TYPE_DELETE
    # and it keeps streaming live changes after the catch-up
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("live")))
    live = await next_event(resumed)
    assert live.flag_key == "live" and live.config_version == seen + 7
    resumed.cancel()


async def test_resume_with_nothing_missed_is_confirmed_at_once(server: Connected) -> None:
    """Without the confirmation a caught-up subscriber could not tell "resumed" from "still
    connecting" until the first heartbeat, 15 s later."""
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("mine")))
    current = (
        await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("other")))
    ).config_version

    stream = server.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=current))
    event = await next_event(stream, timeout=2.0)  # the heartbeat interval here is 15 s
    assert (event.type, event.config_version) == (WatchEvent.TYPE_HEARTBEAT, current)
    await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("mine", default="on")))
    live = await next_event(stream)  # and the stream carries on as usual
    assert (live.type, live.flag_key, live.config_version) == (WatchEvent.TYPE_UPSERT, "mine", current + 1)
    stream.cancel()

    # Changes were missed, but none about the flags this subscriber follows.
    await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("other", default="on")))
    request = evaluation_pb2.WatchRequest(since_version=current + 1, flag_keys=["mine"])
    stream = server.evaluation.Watch(request)
    event = await next_event(stream, timeout=2.0)
    assert (event.type, event.config_version) == (WatchEvent.TYPE_HEARTBEAT, current + 2)
    stream.cancel()


async def test_resume_beyond_the_log_gets_a_fresh_snapshot() -> None:
    store = MemoryStore(max_changes=3)
    async with running_app(server_settings(), store) as app, connected(app) as conn:
        admin, evaluation = conn.admin, conn.evaluation
        for i in range(6):
            await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(f"f{i}")))
        stream = evaluation.Watch(evaluation_pb2.WatchRequest(since_version=1))
        event = await next_event(stream)
        assert event.type == WatchEvent.TYPE_SNAPSHOT
        assert event.reason.startswith("resume-unavailable")
        assert sorted(f.key for f in event.flags) == [f"f{i}" for i in range(6)]
        assert event.config_version == 6
        stream.cancel()


async def test_watch_filter_by_flag_keys(server: Connected) -> None:
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("mine")))
    await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("other")))
    stream = server.evaluation.Watch(evaluation_pb2.WatchRequest(flag_keys=["mine"]))
    snap = await next_event(stream)
    assert [f.key for f in snap.flags] == ["mine"]
    await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("other", default="on")))
    await server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=flag_pb("mine", default="on")))
    event = await next_event(stream)
    assert event.flag_key == "mine" and event.flag.default_variant == "on"
    stream.cancel()


async def test_evaluate_all(server: Connected) -> None:
    for key in ("x", "y"):
        await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb(key, default="on")))
    res = await server.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(context=context(a=1)))
    assert [(r.flag_key, r.bool_value) for r in res.results] == [("x", True), ("y", True)]
    only = await server.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=["y", "nope"]))
    assert only.results[0].bool_value is True
    assert only.results[1].error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND


async def test_list_flags_by_owner_tag_and_pages(server: Connected) -> None:
    for i in range(7):
        flag = flag_pb(f"k{i}", owner="team-a" if i % 2 else "team-b", tags=["even"] if i % 2 == 0 else [])
        await server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag))
    keys, token = [], ""
    while True:
        page = await server.admin.ListFlags(admin_pb2.ListFlagsRequest(page_size=3, page_token=token))
        keys += [f.key for f in page.flags]
        token = page.next_page_token
        if not token:
            break
    assert keys == [f"k{i}" for i in range(7)]
    owned = await server.admin.ListFlags(admin_pb2.ListFlagsRequest(owner="team-a"))
    assert [f.key for f in owned.flags] == ["k1", "k3", "k5"]
    tagged = await server.admin.ListFlags(admin_pb2.ListFlagsRequest(tag="even"))
    assert [f.key for f in tagged.flags] == ["k0", "k2", "k4", "k6"]
