"""Services join the gRPC server through generic handlers only, never as registered methods.

grpcio's generated `add_*Servicer_to_server` functions (and the three vexil writes by hand for its
lazily decoded requests) also register every method with gRPC core
(`add_registered_method_handlers`).  On grpc.aio that registration makes each call cost more:
measured with h2load saturating Evaluate of a static flag on a quiet 2-core machine, three
alternating runs, the server spent 268-290 us of CPU per call with the methods registered and
242-248 us without (the no-op floor server, which registers nothing: 217-221 us), and answered
4,500-4,830 calls/s against 5,350-5,490.  The generic handlers find every method just the same;
unknown methods still end UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc


class Services(Protocol):
    """Where a service's generic handler is added: the server, or `GenericOnly` around it."""

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler], /) -> None: ...


class GenericOnly:
    """The server as the `add_*_to_server` functions see it: generic handlers are added, method
    registrations are dropped (see the module docstring)."""

    __slots__ = ("_server",)

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        """Dropped on purpose: the generic handler added with it serves the same methods."""
