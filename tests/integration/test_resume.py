"""A Watch resume from a version this replica has not applied yet (written through another
replica: here, straight into the shared store while this replica's change feed is stopped)
waits for the replica, catches up and replays; a replica that cannot catch up answers
UNAVAILABLE (retry), never INVALID_ARGUMENT, which is only for a version ahead of the store."""

from __future__ import annotations

import time

import grpc
import pytest

from tests.support.calls import next_event
from tests.support.flags import flag_model, flag_pb
from tests.support.servers import connected, running_app, server_settings
from vexil.model import Flag
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2

WatchEvent = evaluation_pb2.WatchEvent
POLL_S = 0.2


def written_elsewhere(default: str) -> Flag:
    return flag_model("a", default=default)


async def test_resume_ahead_of_this_replica_catches_up_and_replays() -> None:
    store = MemoryStore()
    async with running_app(server_settings(poll_interval=POLL_S), store) as app, connected(app) as conn:
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("a")))
        await app.cache.stop_feed()  # this replica stops following the store
        seen = await store.update_flag(written_elsewhere("on"), expected_version=None, actor="elsewhere")
        missed = await store.update_flag(written_elsewhere("off"), expected_version=None, actor="elsewhere")
        assert app.cache.get("local").config_version == 1

        stream = conn.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=seen.config_version))
        first = await next_event(stream)
        assert (first.type, first.config_version, first.flag.default_variant) == (
            WatchEvent.TYPE_UPSERT,
            missed.config_version,
            "off",
        )
        stream.cancel()
        assert app.cache.get("local").config_version == missed.config_version


async def test_resume_on_a_replica_that_cannot_catch_up_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    async with running_app(server_settings(poll_interval=POLL_S), store) as app, connected(app) as conn:
        await conn.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("a")))
        await app.cache.stop_feed()

        async def stuck(environment: str) -> int:  # a feed that cannot reach the store's news
            return 0

        monkeypatch.setattr(app.cache, "catch_up", stuck)
        ahead = await store.update_flag(written_elsewhere("on"), expected_version=None, actor="elsewhere")

        started = time.monotonic()
        stream = conn.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=ahead.config_version))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await next_event(stream)
        waited = time.monotonic() - started
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert "retry" in refused.value.details()
        assert waited >= 2 * POLL_S, f"gave up after {waited:.2f} s, before two polls"
