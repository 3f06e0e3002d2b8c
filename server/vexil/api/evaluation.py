"""vexil.v1.EvaluationService: Evaluate, EvaluateAll and Watch over the snapshot cache and hub."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import grpc

from vexil.answers import Answer, BulkAnswer, answer, bulk_answer, serialize
from vexil.engine import ValueType
from vexil.errors import InvalidArgument
from vexil.follow import Changed, Heartbeat, Item, follow
from vexil.hub import Hub
from vexil.model import Change, ChangeKind
from vexil.service import FlagService
from vexil.snapshot import Snapshot
from vexil.transport import status
from vexil.transport.generic import Services
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc
from vexil.wire import change_to_pb, environment_to_pb, flag_to_pb
from vexil.wire_context import Decoded, as_decoded, request_decoder

WatchEvent = evaluation_pb2.WatchEvent
T = TypeVar("T")
SERVICE = "vexil.v1.EvaluationService"
CONTEXT_FIELD = evaluation_pb2.EvaluateRequest.DESCRIPTOR.fields_by_name["context"].number
ALL_CONTEXT_FIELD = evaluation_pb2.EvaluateAllRequest.DESCRIPTOR.fields_by_name["context"].number
EVENT_MEMO_SIZE = 64
DEFAULT_MAX_KEYS = 1000
"""Most distinct `flag_keys` one EvaluateAll may name (the `evaluate_all_max_keys` setting)."""
UINT32_MAX = 2**32 - 1
"""The most `WatchEvent.heartbeat_ms` holds (a `heartbeat_seconds` of 49 days and more)."""

VALUE_TYPES = {
    evaluation_pb2.VALUE_TYPE_UNSPECIFIED: ValueType.ANY,
    evaluation_pb2.VALUE_TYPE_BOOL: ValueType.BOOL,
    evaluation_pb2.VALUE_TYPE_STRING: ValueType.STRING,
    evaluation_pb2.VALUE_TYPE_INT: ValueType.INT,
    evaluation_pb2.VALUE_TYPE_DOUBLE: ValueType.FLOAT,
    evaluation_pb2.VALUE_TYPE_OBJECT: ValueType.OBJECT,
}


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(
        self,
        service: FlagService,
        hub: Hub,
        heartbeat_seconds: float = 15.0,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.service = service
        self.max_keys = max_keys
        self.cache = service.cache
        self.hub = hub
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_ms = min(round(heartbeat_seconds * 1000), UINT32_MAX)
        """What SNAPSHOT and HEARTBEAT events say of the heartbeat (`WatchEvent.heartbeat_ms`)."""
        # One event message per change, shared by every subscriber that receives it.
        self._events: OrderedDict[tuple[str, int], WatchEvent] = OrderedDict()

    def _change_event(self, change: Change) -> WatchEvent:
        key = (change.environment_name, change.config_version)
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = change_event(change)
            if len(self._events) > EVENT_MEMO_SIZE:
                self._events.popitem(last=False)
        return event

    def _snapshot(self, environment: str) -> Snapshot:
        return self.cache.get(self.service.environment(environment))

    def _read(self, request: Any, check: Callable[[Any], T]) -> tuple[T, Snapshot, Mapping[str, Any]]:
        """What an evaluation request asks (`check` reads and checks its message), the snapshot of
        its environment and its context: every evaluation refuses a bad request in that order."""
        decoded = as_decoded(request)
        asked = check(decoded.message)
        snapshot = self._snapshot(decoded.message.environment)
        return asked, snapshot, decoded.checked_context()

    @status.unary
    async def Evaluate(
        self, request: Decoded | evaluation_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> Answer:
        (key, value_type), snapshot, ctx = self._read(request, flag_and_type)
        resolution, version = snapshot.evaluate(key, ctx, value_type)
        return answer(snapshot, key, resolution, version)

    @status.unary
    async def EvaluateAll(
        self, request: Decoded | evaluation_pb2.EvaluateAllRequest, context: grpc.aio.ServicerContext
    ) -> BulkAnswer:
        keys, snapshot, ctx = self._read(request, self._distinct_keys)
        return await bulk_answer(snapshot, ctx, keys)

    def _distinct_keys(self, message: evaluation_pb2.EvaluateAllRequest) -> list[str]:
        """Each key once, in the order first named: a request repeating one key 300,000 times
        must not make the server evaluate and answer it 300,000 times."""
        keys = list(dict.fromkeys(message.flag_keys))
        if len(keys) > self.max_keys:
            raise InvalidArgument(
                f"{len(keys):,} distinct flag keys; at most {self.max_keys:,} per call: split the request, "
                "or name none to evaluate every flag",
                "flag_keys",
            )
        return keys

    @status.streaming
    def Watch(
        self, request: evaluation_pb2.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[evaluation_pb2.WatchEvent]:
        env = self.service.environment(request.environment)
        keys = frozenset(request.flag_keys) or None
        since = request.since_version if request.HasField("since_version") else None
        heartbeat_ms = self.heartbeat_ms

        def encode(item: Item) -> WatchEvent:
            if isinstance(item, Changed):
                return self._change_event(item.change)
            if isinstance(item, Heartbeat):
                return WatchEvent(
                    type=WatchEvent.TYPE_HEARTBEAT, config_version=item.version, heartbeat_ms=heartbeat_ms
                )
            event = snapshot_event(item.snapshot, keys, item.reason)
            event.heartbeat_ms = heartbeat_ms
            return event

        return follow(env, self.cache, self.hub, self.heartbeat_seconds, encode, since=since, flag_keys=keys)


def flag_and_type(message: evaluation_pb2.EvaluateRequest) -> tuple[str, ValueType]:
    """The flag an Evaluate asks for, and the type it asks for it as."""
    if not message.flag_key:
        raise InvalidArgument("name the flag to evaluate", "flag_key")
    value_type = VALUE_TYPES.get(message.value_type)
    if value_type is None:
        raise InvalidArgument(f"unknown value type {message.value_type}", "value_type")
    return message.flag_key, value_type


def add_to_server(servicer: EvaluationServicer, server: Services) -> None:
    """Add the service as the generated `add_EvaluationServiceServicer_to_server` does (a generic
    handler only: `transport.generic`), but with Evaluate and EvaluateAll decoding the context
    lazily (`wire_context`) and sending the answers encoded once per snapshot (`answers`)."""
    handlers = {
        "Evaluate": grpc.unary_unary_rpc_method_handler(
            servicer.Evaluate,
            request_deserializer=request_decoder(evaluation_pb2.EvaluateRequest, CONTEXT_FIELD),
            response_serializer=serialize,
        ),
        "EvaluateAll": grpc.unary_unary_rpc_method_handler(
            servicer.EvaluateAll,
            request_deserializer=request_decoder(evaluation_pb2.EvaluateAllRequest, ALL_CONTEXT_FIELD),
            response_serializer=serialize,
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            servicer.Watch,
            request_deserializer=evaluation_pb2.WatchRequest.FromString,
            response_serializer=evaluation_pb2.WatchEvent.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def snapshot_event(snapshot: Snapshot, keys: frozenset[str] | None, reason: str) -> WatchEvent:
    event = WatchEvent(type=WatchEvent.TYPE_SNAPSHOT, config_version=snapshot.config_version, reason=reason)
    for flag in snapshot.flags():
        if keys is None or flag.key in keys:
            flag_to_pb(flag, event.flags.add())
    environment_to_pb(snapshot.environment, event.environment)
    return event


def change_event(change: Change) -> WatchEvent:
    event = WatchEvent(config_version=change.config_version, flag_key=change.flag_key)
    change_to_pb(change, event.change)
    if change.kind is ChangeKind.ENVIRONMENT:
        event.type = WatchEvent.TYPE_ENVIRONMENT
        if change.environment is not None:
            environment_to_pb(change.environment, event.environment)
    elif change.kind is ChangeKind.DELETE:
        event.type = WatchEvent.TYPE_DELETE
    else:
        event.type = WatchEvent.TYPE_UPSERT
        if change.flag is not None:
            flag_to_pb(change.flag, event.flag)
    return event
