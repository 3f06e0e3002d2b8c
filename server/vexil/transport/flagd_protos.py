"""flagd's generated messages, and servicer registration straight from their service descriptors.

The generated `*_pb2_grpc` modules cannot be used: they import their messages by the OpenFeature
provider's module path (the proto file names must be the provider's, see `vexil.flagd`).  The
service descriptors say everything those modules would: method names, message types and which
methods stream, so one small function registers any servicer for any of flagd's services.
"""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from vexil.flagd.evaluation.v1 import evaluation_pb2 as evaluation_v1
from vexil.flagd.evaluation.v2 import evaluation_pb2 as evaluation_v2
from vexil.flagd.sync.v1 import sync_pb2 as sync_v1
from vexil.transport.generic import Services

EVALUATION_V1 = evaluation_v1.DESCRIPTOR.services_by_name["Service"]
EVALUATION_V2 = evaluation_v2.DESCRIPTOR.services_by_name["Service"]
SYNC_V1 = sync_v1.DESCRIPTOR.services_by_name["FlagSyncService"]

SERVICE_NAMES = (EVALUATION_V1.full_name, EVALUATION_V2.full_name, SYNC_V1.full_name)
"""For reflection and health."""

__all__ = [
    "EVALUATION_V1",
    "EVALUATION_V2",
    "SERVICE_NAMES",
    "SYNC_V1",
    "add_servicer",
    "evaluation_v1",
    "evaluation_v2",
    "method_handlers",
    "sync_v1",
]


def method_handlers(service: ServiceDescriptor, servicer: object) -> dict[str, grpc.RpcMethodHandler]:
    """One handler per method of `service`, calling the servicer's method of the same name."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        if method.client_streaming:
            raise ValueError(f"{method.full_name}: client streaming is not supported here")
        request = GetMessageClass(method.input_type)
        response = GetMessageClass(method.output_type)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
    return handlers


def add_servicer(server: Services, service: ServiceDescriptor, servicer: object) -> None:
    """Serve `service` with `servicer` through a generic handler, as generated
    `add_*Servicer_to_server` functions do (without registering its methods: `transport.generic`)."""
    handlers = method_handlers(service, servicer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
