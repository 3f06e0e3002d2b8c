"""The real grpcurl binary calls flagd's services on vexil through server reflection."""

from __future__ import annotations

import json

from tests.support.grpcurl import grpcurl
from tests.support.servers import Connected


async def test_list_and_describe_through_reflection(flagd_server: Connected) -> None:
    services = (await grpcurl(flagd_server.target, "list")).split()
    for name in (
        "flagd.evaluation.v1.Service",
        "flagd.evaluation.v2.Service",
        "flagd.sync.v1.FlagSyncService",
    ):
        assert name in services
    described = await grpcurl(flagd_server.target, "describe", "flagd.evaluation.v2.Service")
    assert (
        "rpc ResolveBoolean ( .flagd.evaluation.v2.ResolveBooleanRequest ) "
        "returns ( .flagd.evaluation.v2.ResolveBooleanResponse )"
    ) in described


async def test_resolve_boolean_with_grpcurl(flagd_server: Connected) -> None:
    body = json.dumps({"flag_key": "new-ui", "context": {"version": "2.3.0"}})
    answer = json.loads(
        await grpcurl("-d", body, flagd_server.target, "flagd.evaluation.v2.Service/ResolveBoolean")
    )
    assert answer == {
        "value": True,
        "reason": "TARGETING_MATCH",
        "variant": "on",
        "metadata": {"team": "platform", "tier": 1},
    }
    selected = await grpcurl(
        "-H",
        "flagd-selector: flagSetId=local",
        "-d",
        '{"flag_key": "killed"}',
        flagd_server.target,
        "flagd.evaluation.v2.Service/ResolveBoolean",
    )
    assert json.loads(selected) == {"reason": "DISABLED", "metadata": {"team": "platform", "tier": 1}}
