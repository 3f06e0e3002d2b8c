"""The composition root: builds the whole server from `Settings` and runs it.

This is the one place that knows every part; each part knows only the interfaces it is handed
(store, cache, hub, service), so stores, protocols and security can be swapped or added here
without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vexil.api import flagd_protos
from vexil.api.admin import AdminServicer
from vexil.api.decoding import DecodingInterceptor
from vexil.api.evaluation import EvaluationServicer
from vexil.api.flagd_evaluation import FlagdEvaluationV1, FlagdEvaluationV2
from vexil.api.flagd_sync import FlagdSync
from vexil.cache import SnapshotCache
from vexil.config import Settings
from vexil.flagfile import FileSync
from vexil.http import HttpServer
from vexil.hub import Hub
from vexil.service import FlagService
from vexil.store.base import FlagStore
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    *flagd_protos.SERVICE_NAMES,
)


def build_store(settings: Settings) -> FlagStore:
    if settings.store == "dynamodb":
        from vexil.store.dynamodb import DynamoStore

        return DynamoStore(
            settings.table,
            region=settings.dynamodb_region,
            endpoint_url=settings.dynamodb_endpoint or None,
        )
    from vexil.store.memory import MemoryStore

    return MemoryStore()


class App:
    """One vexil server process: gRPC services over one store, cache and hub."""

    def __init__(self, settings: Settings, store: FlagStore | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else build_store(settings)
        self.hub = Hub(queue_size=settings.watch_queue_size)
        profile = settings.profile
        self.cache = SnapshotCache(
            self.store,
            self.hub,
            list(settings.served_environments),
            poll_interval=settings.poll_interval,
            reload_interval=profile.ttl_seconds,
        )
        self.service = FlagService(self.store, self.cache, settings.env, max_flags=profile.maxsize)
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[DecodingInterceptor()],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ],
        )
        self.file_sync: FileSync | None = None
        self.port = 0
        self.http: HttpServer | None = None
        """The HTTP side (OFREP, health; add routes such as /metrics before `start`)."""
        if settings.http_port:
            self.http = HttpServer(
                self.service,
                host=settings.host,
                port=settings.http_port,
                shutdown_grace=settings.shutdown_grace,
            )
        self.http_port = 0

    async def start(self) -> int:
        """Load flags, then listen; health turns SERVING only when everything is loaded."""
        settings = self.settings
        evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(
            EvaluationServicer(self.service, self.hub, settings.heartbeat_seconds), self.server
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(self.service), self.server)
        heartbeat = settings.heartbeat_seconds
        for descriptor, servicer in (
            (flagd_protos.EVALUATION_V1, FlagdEvaluationV1(self.service, self.hub, heartbeat)),
            (flagd_protos.EVALUATION_V2, FlagdEvaluationV2(self.service, self.hub, heartbeat)),
            (flagd_protos.SYNC_V1, FlagdSync(self.service, self.hub, heartbeat)),
        ):
            flagd_protos.add_servicer(self.server, descriptor, servicer)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.port}")
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {settings.host}:{settings.port}")
        await self.server.start()
        if self.http is not None:
            self.http_port = await self.http.start()
            log.info("HTTP side (OFREP, /healthz, /readyz) on %s:%d", settings.host, self.http_port)

        await self.store.start()
        await self.cache.load()
        if settings.flags:
            self.file_sync = FileSync(settings.flags, self.service, settings.env, settings.poll_interval)
            await self.file_sync.start()
        self.cache.start_feed()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "vexil serving %s on %s:%d (store %s)",
            ", ".join(settings.served_environments),
            settings.host,
            self.port,
            self.store.name,
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: refuse new calls, end streams cleanly, let in-flight calls finish."""
        grace = self.settings.shutdown_grace if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if self.http is not None:
            await self.http.stop()
        self.hub.close_all("server shutting down")
        await self.server.stop(grace)
        if self.file_sync is not None:
            await self.file_sync.stop()
        await self.cache.stop_feed()
        await self.store.close()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    app = App(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        print(f"vexil listening on {settings.host}:{app.port}", flush=True)
        await stop.wait()
        log.info("shutting down (grace %.0f s)", settings.shutdown_grace)
    finally:
        try:
            await app.stop()
        except Exception:
            log.exception("error during shutdown")
