"""Every service joins the server through its generic handler; no method is registered with
gRPC core (`vexil.transport.generic`: registration made each call cost about a tenth more CPU).

The spies sit on the server object itself, so a service added to `App.start` with the server
instead of its `Router` fails here, and a dropped generic handler fails the calls."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.servers import server_settings
from vexil.app import App
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

SERVED = {
    "vexil.v1.EvaluationService",
    "vexil.v1.AdminService",
    "vexil.v1.KeyService",
    "vexil.v1.ReplicaService",
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
    "flagd.sync.v1.FlagSyncService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
}
"""Written out here: the services a client of this server may call."""


async def test_services_are_served_by_generic_handlers_and_nothing_is_registered() -> None:
    app = App(server_settings(http_port=0))
    registered: list[str] = []
    generic: list[Any] = []

    def record_registered(service_name: str, handlers: Any) -> None:
        registered.append(service_name)

    def record_generic(handlers: Any) -> None:
        generic.extend(handlers)

    app.server.add_registered_method_handlers = record_registered  # type: ignore[method-assign]
    app.server.add_generic_rpc_handlers = record_generic  # type: ignore[method-assign]
    await app.start()
    try:
        assert registered == []
        assert generic == []  # the router, added when the app was built, is the server's only one
        assert {handler.service_name() for handler in app.services.generic_handlers} == SERVED
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            async for answer in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            ):
                assert {s.name for s in answer.list_services_response.service} == SERVED
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            missing = await evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="no-such-flag"))
            assert missing.error_code == evaluation_pb2.ERROR_CODE_FLAG_NOT_FOUND
            unknown = channel.unary_unary("/vexil.v1.EvaluationService/NoSuchMethod")
            with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
                await unknown(b"")
            assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await app.stop(grace=1.0)
