"""flagd.evaluation.v1 and v2 `Service`: typed resolution and the event stream, over the snapshot cache.

What flagd providers (every OpenFeature SDK) call in RPC mode.  The answers are the engine's, the
wire conventions flagd's:
- evaluation errors are gRPC statuses (`ERROR_STATUS`): the providers turn NOT_FOUND into
  FLAG_NOT_FOUND, INVALID_ARGUMENT into TYPE_MISMATCH, DATA_LOSS into PARSE_ERROR and anything
  else into GENERAL;
- "use your code default" (reason DISABLED, or DEFAULT for a flag without a default variant) is
  status OK with the reason and neither value nor variant, which is what providers check for;
- the event stream opens with `provider_ready`, then sends `configuration_change` naming the
  changed flags in `data.flags` (providers evict exactly those from their cache) and `keep_alive`
  while idle.
The environment comes from the `flagd-selector` header (see `flagd_selector`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from vexil.engine import ErrorCode, Resolution, ValueType
from vexil.flagd_compat.metadata import merged_metadata
from vexil.flagd_compat.selector import header_selector, select_environment
from vexil.follow import Heartbeat, Item, Opened, Resynced, follow, interleave
from vexil.hub import Hub
from vexil.identity import visible
from vexil.model import Change, ChangeKind
from vexil.pacing import Pacer
from vexil.reasons import Reason
from vexil.service import FlagService
from vexil.snapshot import Snapshot
from vexil.transport import flagd_protos, status
from vexil.transport.flagd_protos import evaluation_v1, evaluation_v2
from vexil.transport.generic import Services
from vexil.wire import dict_to_struct
from vexil.wire_context import Decoded, as_decoded, for_bulk, request_decoder

ERROR_STATUS = {
    ErrorCode.FLAG_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.TYPE_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.PARSE_ERROR: grpc.StatusCode.DATA_LOSS,
    ErrorCode.GENERAL: grpc.StatusCode.UNKNOWN,
}
"""flagd's mapping of evaluation error codes to gRPC status codes."""

ERROR_REASON = {
    ErrorCode.FLAG_NOT_FOUND: Reason.FLAG_NOT_FOUND,
    ErrorCode.TYPE_MISMATCH: Reason.TYPE_MISMATCH,
    ErrorCode.PARSE_ERROR: Reason.PARSE_ERROR,
    ErrorCode.GENERAL: Reason.EVALUATION_FAILED,
}
"""The same errors' reasons, for the richer error details every vexil error carries."""

PROVIDER_READY = "provider_ready"
CONFIGURATION_CHANGE = "configuration_change"
KEEP_ALIVE = "keep_alive"

CHANGE_TYPES = {ChangeKind.CREATE: "write", ChangeKind.DELETE: "delete"}
"""flagd's notification types per flag; every other change is an "update"."""

INT64 = range(-(2**63), 2**63)
EVENT_MEMO_SIZE = 64


def changed_flags(change: Change, snapshot: Snapshot) -> dict[str, str]:
    """Flag key -> flagd notification type for one change (environment changes touch every flag)."""
    if change.kind is ChangeKind.ENVIRONMENT or not change.flag_key:
        return dict.fromkeys(snapshot.entries, "update")
    return {change.flag_key: CHANGE_TYPES.get(change.kind, "update")}


def _resolver(value_type: ValueType, response: str) -> Callable[..., Awaitable[Message]]:
    """The handler of one typed resolution (`ResolveBoolean`, ...): `_resolve` for that type,
    answered with the version's `response` message."""

    @status.unary
    async def resolve(self: FlagdEvaluation, request: Any, context: grpc.aio.ServicerContext) -> Message:
        return await self._resolve(request, context, value_type, getattr(self.pb, response))

    resolve.__name__ = resolve.__qualname__ = response.removesuffix("Response")
    return resolve


class FlagdEvaluation:
    """The handlers flagd's v1 and v2 evaluation services share; `pb` is the version's messages,
    `descriptor` the service they implement."""

    pb: ClassVar[ModuleType]
    descriptor: ClassVar[ServiceDescriptor]

    def __init__(self, service: FlagService, hub: Hub, keep_alive_seconds: float = 15.0) -> None:
        self.service = service
        self.cache = service.cache
        self.hub = hub
        self.keep_alive_seconds = keep_alive_seconds
        # One event per change, shared by every stream that sends it.
        self._events: OrderedDict[tuple[str, int], Message] = OrderedDict()

    def _environment(self, context: grpc.aio.ServicerContext) -> str:
        return select_environment(self.service, header_selector(context.invocation_metadata()))

    async def _resolve(
        self,
        request: Decoded | Message,
        context: grpc.aio.ServicerContext,
        value_type: ValueType,
        response_type: type[Message],
    ) -> Message:
        request = as_decoded(request)
        snapshot = self.cache.get(self._environment(context))
        resolution, _ = snapshot.evaluate(request.flag_key, request.checked_context(), value_type)
        if resolution.error_code is not None:
            code = resolution.error_code
            await status.refuse(context, ERROR_STATUS[code], resolution.error_message, ERROR_REASON[code])
        response: Any = response_type(reason=str(resolution.reason))
        if resolution.variant is not None:
            response.variant = resolution.variant
        value = resolution.value
        if value is not None:
            if value_type is ValueType.OBJECT:
                if not isinstance(value, Mapping):
                    await status.refuse(
                        context,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"flag '{request.flag_key}' is a list; flagd's ResolveObject carries only objects",
                        Reason.TYPE_MISMATCH,
                    )
                dict_to_struct(value, response.value)
                response.value.SetInParent()
            elif value_type is ValueType.INT and value not in INT64:
                await status.refuse(
                    context,
                    grpc.StatusCode.UNKNOWN,
                    f"flag '{request.flag_key}': {value} does not fit in int64",
                    Reason.EVALUATION_FAILED,
                )
            else:
                response.value = value
        metadata = merged_metadata(snapshot, resolution)
        if metadata:
            dict_to_struct(metadata, response.metadata)
        return response

    ResolveBoolean = _resolver(ValueType.BOOL, "ResolveBooleanResponse")
    ResolveString = _resolver(ValueType.STRING, "ResolveStringResponse")
    ResolveFloat = _resolver(ValueType.FLOAT, "ResolveFloatResponse")
    ResolveInt = _resolver(ValueType.INT, "ResolveIntResponse")
    ResolveObject = _resolver(ValueType.OBJECT, "ResolveObjectResponse")

    # -- events ------------------------------------------------------------------------------

    def _event(self, kind: str, flags: Mapping[str, str] | None = None) -> Message:
        event: Any = self.pb.EventStreamResponse(type=kind)
        event.data.SetInParent()
        if flags:
            dict_to_struct({"flags": {key: {"type": t} for key, t in flags.items()}}, event.data)
        return event

    def _change_event(self, change: Change, snapshot: Snapshot) -> Message:
        key = (change.environment_name, change.config_version)
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = self._event(CONFIGURATION_CHANGE, changed_flags(change, snapshot))
            if len(self._events) > EVENT_MEMO_SIZE:
                self._events.popitem(last=False)
        return event

    def _followed(self, context: grpc.aio.ServicerContext) -> list[str]:
        """The environments an EventStream announces: the selected one, first.  Without a
        selector, also every other served environment the credentials may read, as flagd's
        stream announces changes to every flag set: a provider that sends its selector on
        Resolve calls but not on EventStream (the JavaScript RPC provider) caches what it
        resolves in its flag set, and must hear when that changes."""
        selected = self._environment(context)
        if header_selector(context.invocation_metadata()):
            return [selected]
        others = [env for env in visible(self.cache.environments) if env != selected]
        return [selected, *others]

    @status.streaming
    def EventStream(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
        environments = self._followed(context)

        def encoder(environment: str) -> Callable[[Item], Message | None]:
            known: set[str] = set()  # every flag this stream has seen: after a resync, any may differ
            main = environment == environments[0]  # ready and keep-alive: once, from the selected one

            def encode(item: Item) -> Message | None:
                if isinstance(item, Heartbeat):
                    return self._event(KEEP_ALIVE) if main else None
                known.update(item.snapshot.entries)
                if isinstance(item, Opened):
                    return self._event(PROVIDER_READY) if main else None
                if isinstance(item, Resynced):
                    return self._event(CONFIGURATION_CHANGE, dict.fromkeys(sorted(known), "update"))
                return self._change_event(item.change, item.snapshot)

            return encode

        streams = [
            follow(env, self.cache, self.hub, self.keep_alive_seconds, encoder(env)) for env in environments
        ]
        # One environment (a selector, scoped credentials, one served): its follow loop as it is,
        # without a generator more for every message of a fan-out.
        return streams[0] if len(streams) == 1 else interleave(streams)


class FlagdEvaluationV2(FlagdEvaluation):
    """flagd.evaluation.v2.Service: what current flagd providers call."""

    pb: ClassVar[ModuleType] = evaluation_v2
    descriptor: ClassVar[ServiceDescriptor] = flagd_protos.EVALUATION_V2


class FlagdEvaluationV1(FlagdEvaluation):
    """flagd.evaluation.v1.Service: the older protocol, with ResolveAll."""

    pb: ClassVar[ModuleType] = evaluation_v1
    descriptor: ClassVar[ServiceDescriptor] = flagd_protos.EVALUATION_V1

    @status.unary
    async def ResolveAll(self, request: Decoded | Message, context: grpc.aio.ServicerContext) -> Message:
        """Every flag with a value for this context (as flagd: flags without one are left out)."""
        request = as_decoded(request)
        snapshot = self.cache.get(self._environment(context))
        ctx = for_bulk(request.checked_context())
        response = evaluation_v1.ResolveAllResponse()
        async with Pacer() as pacer:
            for key in sorted(snapshot.entries):
                await pacer.tick()
                resolution, _ = snapshot.evaluate(key, ctx)
                flag = _any_flag(resolution, merged_metadata(snapshot, resolution))
                if flag is not None:
                    response.flags[key].CopyFrom(flag)
        if snapshot.environment.metadata:
            dict_to_struct(snapshot.environment.metadata, response.metadata)
        return response


def add_to_server(servicer: FlagdEvaluation, server: Services) -> None:
    """Register the service as `flagd_protos.add_servicer` does, but with the resolutions decoding
    the context lazily (`wire_context`), as vexil's Evaluate does: a rule reading one attribute
    of a 50 KB context converts that one."""
    handlers = flagd_protos.method_handlers(servicer.descriptor, servicer)
    for method in servicer.descriptor.methods:
        request = GetMessageClass(method.input_type)
        if "context" in request.DESCRIPTOR.fields_by_name and not method.server_streaming:
            field = request.DESCRIPTOR.fields_by_name["context"].number
            handlers[method.name] = handlers[method.name]._replace(
                request_deserializer=request_decoder(request, field)
            )
    name = servicer.descriptor.full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


def _any_flag(resolution: Resolution, metadata: Mapping[str, Any]) -> Message | None:
    """The AnyFlag for a resolution, None when it has no value AnyFlag can carry (no value, an
    error, a list, an integer beyond a double)."""
    value = resolution.value
    if resolution.error_code is not None or value is None:
        return None
    out: Any = evaluation_v1.AnyFlag(reason=str(resolution.reason), variant=resolution.variant or "")
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int | float):
        try:
            out.double_value = float(value)
        except OverflowError:
            return None
    elif isinstance(value, Mapping):
        dict_to_struct(value, out.object_value)
        out.object_value.SetInParent()
    else:
        return None
    if metadata:
        dict_to_struct(metadata, out.metadata)
    return out
