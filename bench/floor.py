"""The floor: a no-op `grpc.aio` server with vexil's own request and response messages.

    python -m bench.floor --port PORT [--reuseport]

It decodes the same `EvaluateRequest` / `EvaluateAllRequest` and encodes a response of the same
shape as vexil's (one bool flag; 100 of them for `EvaluateAll`) without looking anything up, and
it runs `Watch` streams that an `UpdateFlag` call publishes to, one queue per subscriber.  So
whatever vexil costs beyond this server is vexil's own work (interceptors, snapshot lookup,
evaluation, building the answer), and whatever both cost is gRPC, asyncio and HTTP/2 in one Python
process: the ceiling no Python server on this machine gets past.  Ratios to it stay meaningful
on a busy or a different machine, where absolute numbers do not.

`--reuseport` lets several floor processes share one port, the floor of `vexil serve --workers`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from vexil.v1 import admin_pb2, evaluation_pb2

EVALUATE_ALL_FLAGS = 100
CONFIG_VERSION = 100


def evaluate_response(key: str = "static-flag", on: bool = True) -> evaluation_pb2.EvaluateResponse:
    """What vexil answers for an enabled static bool flag (same fields set, same sizes)."""
    return evaluation_pb2.EvaluateResponse(
        flag_key=key,
        bool_value=on,
        variant="on" if on else "off",
        reason=evaluation_pb2.REASON_STATIC,
        flag_version=1,
        config_version=CONFIG_VERSION,
    )


def evaluate_all_response(count: int = EVALUATE_ALL_FLAGS) -> evaluation_pb2.EvaluateAllResponse:
    response = evaluation_pb2.EvaluateAllResponse(config_version=CONFIG_VERSION)
    for i in range(count):
        response.results.append(evaluate_response(f"flag-{i:04d}", on=i % 2 == 0))
    return response


class Floor:
    """The handlers. Responses are built once: the floor must not do the work it is the floor of."""

    def __init__(self) -> None:
        self.evaluate_answer = evaluate_response()
        self.evaluate_all_answer = evaluate_all_response()
        self.subscribers: set[asyncio.Queue[evaluation_pb2.WatchEvent]] = set()
        self.version = CONFIG_VERSION

    async def evaluate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.evaluate_answer

    async def evaluate_all(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.evaluate_all_answer

    async def watch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        queue: asyncio.Queue[evaluation_pb2.WatchEvent] = asyncio.Queue()
        self.subscribers.add(queue)
        try:
            yield evaluation_pb2.WatchEvent(
                type=evaluation_pb2.WatchEvent.TYPE_SNAPSHOT, config_version=self.version, reason="initial"
            )
            while True:
                yield await queue.get()
        finally:
            self.subscribers.discard(queue)

    async def update_flag(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Publish the flag to every Watch stream, as vexil's hub does after a write."""
        self.version += 1
        event = evaluation_pb2.WatchEvent(
            type=evaluation_pb2.WatchEvent.TYPE_UPSERT,
            config_version=self.version,
            flag=request.flag,
            flag_key=request.flag.key,
        )
        for queue in self.subscribers:
            queue.put_nowait(event)
        return admin_pb2.FlagResponse(flag=request.flag, config_version=self.version)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        evaluation = grpc.method_handlers_generic_handler(
            "vexil.v1.EvaluationService",
            {
                "Evaluate": grpc.unary_unary_rpc_method_handler(
                    self.evaluate,
                    request_deserializer=evaluation_pb2.EvaluateRequest.FromString,
                    response_serializer=evaluation_pb2.EvaluateResponse.SerializeToString,
                ),
                "EvaluateAll": grpc.unary_unary_rpc_method_handler(
                    self.evaluate_all,
                    request_deserializer=evaluation_pb2.EvaluateAllRequest.FromString,
                    response_serializer=evaluation_pb2.EvaluateAllResponse.SerializeToString,
                ),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.watch,
                    request_deserializer=evaluation_pb2.WatchRequest.FromString,
                    response_serializer=evaluation_pb2.WatchEvent.SerializeToString,
                ),
            },
        )
        admin = grpc.method_handlers_generic_handler(
            "vexil.v1.AdminService",
            {
                "UpdateFlag": grpc.unary_unary_rpc_method_handler(
                    self.update_flag,
                    request_deserializer=admin_pb2.UpdateFlagRequest.FromString,
                    response_serializer=admin_pb2.FlagResponse.SerializeToString,
                )
            },
        )
        return [evaluation, admin]


async def serve(host: str, port: int, reuseport: bool) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuseport else 0)])
    server.add_generic_rpc_handlers(Floor().handlers())
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"floor: cannot listen on {host}:{port}")
    await server.start()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"floor listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reuseport", action="store_true", help="share the port with other floors")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.reuseport))


if __name__ == "__main__":
    main()
