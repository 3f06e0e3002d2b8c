"""Every RPC the server registers, callable generically: for the policy matrix and the fuzz tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from vexil.transport import flagd_protos
from vexil.v1 import admin_pb2, evaluation_pb2, keys_pb2, replica_pb2

SERVICES: tuple[ServiceDescriptor, ...] = (
    evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    keys_pb2.DESCRIPTOR.services_by_name["KeyService"],
    replica_pb2.DESCRIPTOR.services_by_name["ReplicaService"],
    flagd_protos.EVALUATION_V1,
    flagd_protos.EVALUATION_V2,
    flagd_protos.SYNC_V1,
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)


@dataclass(frozen=True)
class Rpc:
    service: ServiceDescriptor
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    def request(self, **fields: Any) -> Any:
        return GetMessageClass(self.method.input_type)(**fields)

    def __str__(self) -> str:
        return self.path


RPCS: tuple[Rpc, ...] = tuple(Rpc(s, m) for s in SERVICES for m in s.methods)


def _identity(data: bytes) -> bytes:
    return data


async def call(
    channel: grpc.aio.Channel,
    rpc: Rpc,
    metadata: Sequence[tuple[str, str]] = (),
    request: Any = None,
    raw: bytes | None = None,
    timeout: float = 5.0,
) -> grpc.aio.AioRpcError | None:
    """Call `rpc` once (a stream: read its first message) with `request`, or with `raw` bytes as
    the serialized request; None on success, the error otherwise."""
    serialize = _identity if raw is not None else (lambda m: m.SerializeToString())
    payload = raw if raw is not None else (request if request is not None else rpc.request())
    deserialize = _identity
    method = rpc.method
    try:
        if method.client_streaming:
            stream = channel.stream_stream(rpc.path, serialize, deserialize)(
                iter([payload]), metadata=tuple(metadata), timeout=timeout
            )
            await stream.read()
            stream.cancel()
        elif method.server_streaming:
            stream = channel.unary_stream(rpc.path, serialize, deserialize)(
                payload, metadata=tuple(metadata), timeout=timeout
            )
            await asyncio.wait_for(stream.read(), timeout)
            stream.cancel()
        else:
            await channel.unary_unary(rpc.path, serialize, deserialize)(
                payload, metadata=tuple(metadata), timeout=timeout
            )
    except grpc.aio.AioRpcError as exc:
        return exc
    return None
