"""flagd.sync.v1 on the wire: the whole configuration as flagd JSON, first and after every change."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc
import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore

from tests.support.flags import definition_fields, flag_pb
from tests.support.flagset import ENV_METADATA, EVALUATORS, FLAGS
from tests.support.openfeature import stub
from tests.support.servers import Connected
from vexil.transport.flagd_protos import SYNC_V1, sync_v1
from vexil.v1 import admin_pb2
from vexil.wire import dict_to_struct


async def next_document(stream: Any) -> dict[str, Any]:
    response = await asyncio.wait_for(stream.read(), 5)
    assert not response.HasField("sync_context")
    return json.loads(response.flag_configuration)


async def test_first_response_is_the_whole_configuration_in_flagds_shape(flagd_server: Connected) -> None:
    extras = flag_pb("documented", {"on": True}, default="on")
    extras.description, extras.owner = "for people", "web-team"
    extras.tags.extend(["ui"])
    dict_to_struct({"ticket": "X-1", "nested": {"no": "objects in flagd metadata"}}, extras.metadata)
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=extras))

    stream = stub(flagd_server.channel, SYNC_V1).SyncFlags(sync_v1.SyncFlagsRequest(provider_id="test"))
    document = await next_document(stream)
    stream.cancel()
    assert set(document) == {"flags", "$evaluators", "metadata"}
    assert document["$evaluators"] == EVALUATORS and document["metadata"] == ENV_METADATA
    assert set(document["flags"]) == {*FLAGS, "documented"}
    color = document["flags"]["color"]
    assert color == {**FLAGS["color"], "state": "ENABLED", "metadata": {**ENV_METADATA, "owner-team": "web"}}
    # Only flagd's fields and scalar metadata: providers reject a whole document over one bad flag.
    assert document["flags"]["documented"] == {
        "state": "ENABLED",
        "variants": {"on": True},
        "defaultVariant": "on",
        "metadata": {**ENV_METADATA, "ticket": "X-1"},
    }
    assert document["flags"]["no-default"].get("defaultVariant") is None
    reference = FlagdCore()
    reference.set_flags(json.dumps(document))
    assert reference.resolve_string_value("color", "x").value == "blue"


async def test_every_change_sends_the_whole_configuration_again(flagd_server: Connected) -> None:
    stream = stub(flagd_server.channel, SYNC_V1).SyncFlags(sync_v1.SyncFlagsRequest())
    first = await next_document(stream)
    body = {**FLAGS["limit"], "defaultVariant": "big"}
    await flagd_server.admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(flag=flag_pb("limit", **definition_fields(body)))
    )
    second = await next_document(stream)
    assert second["flags"]["limit"]["defaultVariant"] == "big"
    assert {k: v for k, v in second["flags"].items() if k != "limit"} == {
        k: v for k, v in first["flags"].items() if k != "limit"
    }
    await flagd_server.admin.SetKillSwitch(admin_pb2.SetKillSwitchRequest(killed=True, reason="incident"))
    killed = await next_document(stream)  # flagd has no environment kill switch: every flag DISABLED
    assert {flag["state"] for flag in killed["flags"].values()} == {"DISABLED"}
    stream.cancel()


async def test_fetch_all_flags_and_get_metadata(flagd_server: Connected) -> None:
    sync = stub(flagd_server.channel, SYNC_V1)
    stream = sync.SyncFlags(sync_v1.SyncFlagsRequest())
    streamed = await next_document(stream)
    stream.cancel()
    fetched = await sync.FetchAllFlags(sync_v1.FetchAllFlagsRequest())
    assert json.loads(fetched.flag_configuration) == streamed
    metadata = await sync.GetMetadata(sync_v1.GetMetadataRequest())
    # The sync context: present (providers index into it) and empty (vexil adds no static context).
    assert metadata.HasField("metadata") and dict(metadata.metadata) == {}


async def test_a_client_that_stops_reading_and_goes_away_is_no_server_error(
    flagd_server: Connected, caplog: pytest.LogCaptureFixture
) -> None:
    """Streams that stopped reading fill the transport's window with whole documents; cancelled
    then, their last send fails inside grpc, which logged each one at ERROR with a traceback."""
    big = flag_pb("big", {"a": "x" * 120_000, "b": "y"}, default="a")
    await flagd_server.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=big))
    channels = [grpc.aio.insecure_channel(flagd_server.target) for _ in range(8)]  # a connection each
    streams = [
        stub(channel, SYNC_V1).SyncFlags(sync_v1.SyncFlagsRequest(provider_id=f"idle-{i}"))
        for i, channel in enumerate(channels)
    ]
    with caplog.at_level(logging.DEBUG, logger="vexil.transport.gone"):
        for n in range(80):  # never read: the sends back up behind the window
            big.variants["a"].string_value = f"{n:02d}" + "x" * 120_000
            await flagd_server.admin.UpdateFlag(admin_pb2.UpdateFlagRequest(flag=big))
        for stream in streams:
            stream.cancel()
        await asyncio.sleep(1.5)
    for channel in channels:
        await channel.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    gone = [r for r in caplog.records if r.name == "vexil.transport.gone"]
    assert gone, "no stream's send failed: the test no longer reaches the case it is about"
