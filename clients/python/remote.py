"""Remote evaluation: one `Evaluate` (or `EvaluateAll`) RPC per call, bounded by the deadline.

Every failure — unreachable server, deadline, refused credentials, a context the server will not
take — becomes the caller's default with reason ERROR and an error code; nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

from vexil.client.channel import Metadata
from vexil.client.config import ClientConfig
from vexil.client.context import ContextError, to_struct
from vexil.client.details import (
    ErrorCode,
    EvaluationDetails,
    failed,
    from_response,
    from_rpc_error,
)
from vexil.engine import ValueType
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

T = TypeVar("T")

VALUE_TYPES = {
    ValueType.ANY: evaluation_pb2.VALUE_TYPE_UNSPECIFIED,
    ValueType.BOOL: evaluation_pb2.VALUE_TYPE_BOOL,
    ValueType.STRING: evaluation_pb2.VALUE_TYPE_STRING,
    ValueType.INT: evaluation_pb2.VALUE_TYPE_INT,
    ValueType.FLOAT: evaluation_pb2.VALUE_TYPE_DOUBLE,
    ValueType.OBJECT: evaluation_pb2.VALUE_TYPE_OBJECT,
}


def evaluate_request(
    key: str, context: Mapping[str, Any] | None, environment: str, value_type: ValueType
) -> evaluation_pb2.EvaluateRequest:
    request = evaluation_pb2.EvaluateRequest(
        flag_key=key, environment=environment, value_type=VALUE_TYPES[value_type]
    )
    struct = to_struct(context)
    if struct is not None:
        request.context.CopyFrom(struct)
    return request


def evaluate_all_request(
    context: Mapping[str, Any] | None, environment: str
) -> evaluation_pb2.EvaluateAllRequest:
    request = evaluation_pb2.EvaluateAllRequest(environment=environment)
    struct = to_struct(context)
    if struct is not None:
        request.context.CopyFrom(struct)
    return request


def all_from_response(response: evaluation_pb2.EvaluateAllResponse) -> dict[str, EvaluationDetails[Any]]:
    return {r.flag_key: from_response(r.flag_key, None, r) for r in response.results}


def failure(key: str, default: T, exc: Exception, deadline: float) -> EvaluationDetails[T]:
    """What a failed `Evaluate` answers, sync or async: the default, with the error code that
    says why (the RPC's status, a context the client could not encode, anything else)."""
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(key, default, exc, deadline)
    if isinstance(exc, ContextError):
        return failed(key, default, ErrorCode.INVALID_CONTEXT, str(exc))
    return failed(key, default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")


class RemoteEvaluator:
    """Blocking RPCs for the sync `Client` (each bounded by the configured deadline)."""

    def __init__(self, channel: grpc.Channel, config: ClientConfig, metadata: Metadata) -> None:
        self._stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self._environment = config.environment
        self._deadline = config.deadline
        self._metadata = metadata

    def details(
        self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType
    ) -> EvaluationDetails[T]:
        try:
            request = evaluate_request(key, context, self._environment, value_type)
            response = self._stub.Evaluate(request, timeout=self._deadline, metadata=self._metadata)
            return from_response(key, default, response)
        except Exception as exc:
            return failure(key, default, exc, self._deadline)

    def value(self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType) -> T:
        return self.details(key, default, context, value_type).value

    def all_details(self, context: Mapping[str, Any] | None) -> dict[str, EvaluationDetails[Any]]:
        try:
            request = evaluate_all_request(context, self._environment)
            response = self._stub.EvaluateAll(request, timeout=self._deadline, metadata=self._metadata)
            return all_from_response(response)
        except Exception:
            return {}


class AsyncRemoteEvaluator:
    """The same over grpc.aio for `AsyncClient`."""

    def __init__(self, channel: grpc.aio.Channel, config: ClientConfig, metadata: Metadata) -> None:
        self._stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self._environment = config.environment
        self._deadline = config.deadline
        self._metadata = metadata

    async def details(
        self, key: str, default: T, context: Mapping[str, Any] | None, value_type: ValueType
    ) -> EvaluationDetails[T]:
        try:
            request = evaluate_request(key, context, self._environment, value_type)
            response = await self._stub.Evaluate(request, timeout=self._deadline, metadata=self._metadata)
            return from_response(key, default, response)
        except Exception as exc:
            return failure(key, default, exc, self._deadline)

    async def all_details(self, context: Mapping[str, Any] | None) -> dict[str, EvaluationDetails[Any]]:
        try:
            request = evaluate_all_request(context, self._environment)
            response = await self._stub.EvaluateAll(request, timeout=self._deadline, metadata=self._metadata)
            return all_from_response(response)
        except Exception:
            return {}
