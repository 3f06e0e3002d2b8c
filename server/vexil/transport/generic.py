"""Services join the gRPC server through one generic handler, `Router`, never as registered
methods and never through grpc.aio interceptors.

grpcio's generated `add_*Servicer_to_server` functions (and the three vexil writes by hand for its
lazily decoded requests) also register every method with gRPC core
(`add_registered_method_handlers`).  On grpc.aio that registration makes each call cost more:
measured with h2load saturating Evaluate of a static flag on a quiet 2-core machine, three
alternating runs, the server spent 268-290 us of CPU per call with the methods registered and
242-248 us without (the no-op floor server, which registers nothing: 217-221 us), and answered
4,500-4,830 calls/s against 5,350-5,490.  `Router` drops the registrations; the generic
handlers find every method just the same, and unknown methods still end UNIMPLEMENTED.

It also stands in for grpc.aio's interceptor chain (`transport.wrapping` says why): it applies
the interceptors to a method's handler the first time the method is called and hands gRPC the
wrapped handler, from a dict, on every later call.  The shutdown gate is checked here too, so a
closed server refuses a call before any interceptor runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc

from vexil.transport.gate import ShutdownGate
from vexil.transport.wrapping import WrappingInterceptor


class Services(Protocol):
    """Where a service's generic handler is added: the server, or `Router` in front of it."""

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler], /) -> None: ...


class Router(grpc.GenericRpcHandler):
    """Every service of the server, found by method path, with the interceptors applied.

    `interceptors` run outermost first (as grpc.aio would run them): the first one's wrapper is
    called first and the last one's sits next to the servicer.  The server gets this one generic
    handler; the `add_*_to_server` functions see it as the server and add theirs to it."""

    def __init__(
        self, server: grpc.aio.Server, interceptors: Sequence[WrappingInterceptor], gate: ShutdownGate
    ) -> None:
        self._generic: list[grpc.GenericRpcHandler] = []
        self._innermost_first = tuple(reversed(interceptors))
        self._interceptors = tuple(interceptors)
        self._gate = gate
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        """Method path -> its wrapped handler; only methods some service has, so it stays bounded."""
        server.add_generic_rpc_handlers((self,))

    @property
    def generic_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        """What the services added, in the order they were added (the first to know a method wins)."""
        return tuple(self._generic)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        """Dropped on purpose: the generic handler added with it serves the same methods."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._wrapped.get(handler_call_details.method)
        if handler is None:
            handler = self._first_call(handler_call_details)
            if handler is None:
                return None
        if self._gate.closed:
            return self._gate.refusing(handler)
        return handler

    def _first_call(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        for generic in self._generic:
            handler = generic.service(handler_call_details)
            if handler is not None:
                break
        else:
            for interceptor in self._interceptors:
                interceptor.unknown_method(method)
            return None
        for interceptor in self._innermost_first:
            handler = interceptor.wrap(method, handler)
        self._wrapped[method] = handler
        return handler
