"""The composition root: builds the whole server from `Settings` and runs it.

This is the one place that knows every part; each part knows only the interfaces it is handed
(store, cache, hub, service), so stores, protocols and security can be swapped or added here
without touching the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from vexil import console, heap
from vexil.api.admin import AdminServicer
from vexil.api.evaluation import EvaluationServicer, add_to_server
from vexil.api.flagd_evaluation import FlagdEvaluationV1, FlagdEvaluationV2
from vexil.api.flagd_evaluation import add_to_server as add_flagd_evaluation
from vexil.api.flagd_sync import FlagdSync
from vexil.api.keys import KeyServicer
from vexil.api.replica import ReplicaServicer
from vexil.cache import SnapshotCache
from vexil.config import Settings
from vexil.connections import call_limit, connection_limit, grpc_options, raise_open_file_limit
from vexil.engine import budget
from vexil.errors import CannotListen, VexilError
from vexil.flagfile import FileSync
from vexil.fleet import Fleet
from vexil.http import HttpServer
from vexil.observability.interceptor import MetricsInterceptor, protocol_of
from vexil.observability.metrics import Metrics
from vexil.observability.web import instrument_http
from vexil.security.interceptors import classify
from vexil.security.layer import SecurityLayer
from vexil.security.ratelimit import QuotaExceeded
from vexil.service import FlagService
from vexil.store.base import FlagStore
from vexil.store.keys import KeyStore
from vexil.transport import flagd_protos
from vexil.transport.arrival import ArrivalInterceptor
from vexil.transport.decoding import DecodingInterceptor
from vexil.transport.gate import ShutdownGate
from vexil.transport.generic import Router
from vexil.transport.gone import install as quiet_clients_gone
from vexil.transport.poke import PokeClient, read_secret
from vexil.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    evaluation_pb2,
    keys_pb2,
    keys_pb2_grpc,
    replica_pb2,
    replica_pb2_grpc,
)

if TYPE_CHECKING:
    from vexil.observability.cloudwatch import CloudWatchPublisher

log = logging.getLogger(__name__)

SETTLE_QUIET_S = 0.1
"""On shutdown, refuse new calls until none has come for this long (within the grace)."""

SERVICE_NAMES = (
    evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    keys_pb2.DESCRIPTOR.services_by_name["KeyService"].full_name,
    replica_pb2.DESCRIPTOR.services_by_name["ReplicaService"].full_name,
    *flagd_protos.SERVICE_NAMES,
)


def build_store(settings: Settings) -> FlagStore:
    if settings.store == "dynamodb":
        from vexil.store.dynamodb import DynamoStore

        return DynamoStore(
            settings.table,
            region=settings.dynamodb_region,
            endpoint_url=settings.dynamodb_endpoint or None,
            write_timeout=settings.write_timeout,
            change_retention=settings.change_log_retention,
            max_changes=settings.change_log_max_entries,
            discovery_interval=settings.profile.ttl_seconds,
        )
    from vexil.store.memory import MemoryStore

    return MemoryStore(
        max_changes=settings.change_log_max_entries, change_retention=settings.change_log_retention
    )


class App:
    """One vexil server process: gRPC services over one store, cache and hub."""

    def __init__(
        self, settings: Settings, store: FlagStore | None = None, key_store: KeyStore | None = None
    ) -> None:
        self.settings = settings
        budget.configure(
            operations=settings.evaluation_budget_operations, characters=settings.evaluation_budget_characters
        )
        self.metrics = Metrics()
        """This process's metrics (served at /metrics); made first so every part can report to it."""
        self.store = store if store is not None else build_store(settings)
        instrument = getattr(self.store, "instrument", None)  # stores with a client to measure
        if instrument is not None:
            instrument(self.metrics.dynamodb.attach)
        self.security = SecurityLayer(settings, key_store)
        """Authentication, authorization, rate limits, TLS and API keys (`vexil.security`)."""
        self.metrics.insecure.set(1 if self.security.insecure.reasons else 0)
        self.hub = self.security.hub(settings.watch_queue_size)
        profile = settings.profile
        self.cache = SnapshotCache(
            self.store,
            self.hub,
            list(settings.served_environments),
            poll_interval=settings.poll_interval,
            reload_interval=profile.ttl_seconds,
        )
        self.service = FlagService(self.store, self.cache, settings.env, max_flags=profile.maxsize)
        self.replica_secret = read_secret(settings)
        self.pokes: PokeClient | None = None
        self.fleet = Fleet(
            self.store,
            self.cache,
            address=settings.replica_address,
            heartbeat=settings.replica_heartbeat,
            expiry=settings.replica_expiry,
            count=self.metrics.poke,
        )
        """This replica in the registry: heartbeat, pokes after local writes, receipts."""
        if settings.replica_pokes and (self.replica_secret or not settings.auth_required):
            self.pokes = PokeClient(settings, replica_id=self.fleet.replica_id, secret=self.replica_secret)
            self.fleet.send_poke = self.pokes
            self.service.written.append(self.fleet.written)
        self.metrics.watch_cache(self.cache, profile.maxsize)
        self.health = health.aio.HealthServicer()
        self.gate = ShutdownGate()
        quiet_clients_gone()
        self.server = grpc.aio.server(
            maximum_concurrent_rpcs=call_limit(settings.max_connections),
            options=[
                # Off unless several workers share the port on purpose: a second server started
                # by mistake on a busy port must fail, not silently take half the connections.
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
                ("grpc.max_receive_message_length", 4 * 1024 * 1024),
                *grpc_options(connection_limit(settings.max_connections)),
            ],
        )
        self.services = Router(
            self.server,
            [
                ArrivalInterceptor(),  # outermost: a call's message arrives in time, or it ends
                *self.security.interceptors(self._count_rejection),
                DecodingInterceptor(),  # after them: a request is parsed once its caller passed
                MetricsInterceptor(self.metrics.requests, self.metrics.evaluations),
            ],
            self.gate,
        )
        """Every gRPC service joins through this one generic handler (`vexil.transport.generic`)."""
        self.cloudwatch: CloudWatchPublisher | None = None
        """Publishes the alarm metrics to CloudWatch when `cloudwatch_namespace` is set."""
        if settings.cloudwatch_namespace:
            from vexil.observability.cloudwatch import CloudWatchPublisher

            self.cloudwatch = CloudWatchPublisher(
                self.metrics,
                self.cache,
                namespace=settings.cloudwatch_namespace,
                interval=settings.cloudwatch_interval,
                region=settings.cloudwatch_region or settings.dynamodb_region,
                endpoint_url=settings.cloudwatch_endpoint or None,
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
                reuse_port=settings.workers > 1,
                authenticate=self.security.http_authenticator,
                authenticate_operations=self.security.operations_authenticator,
                ssl_context=self.security.http_ssl_context,
                cors_origins=settings.cors_origins,
                max_connections=settings.max_connections,
                client_timeout=settings.http_client_timeout,
            )
            instrument_http(self.http, self.metrics)
            console.install(
                self.http.app,
                self.service,
                self.security,
                self.fleet,
                heartbeat_seconds=settings.heartbeat_seconds,
                registry=self.metrics.registry,
            )
        self.http_port = 0
        self.served = False
        """True once health said SERVING: only then is there traffic for `stop` to drain."""
        self._drain_cut = asyncio.Event()

    def _count_rejection(self, exc: VexilError, method: str) -> None:
        """Calls the security interceptors refuse never reach the metrics interceptor: count them."""
        kind, label = classify(exc)
        if kind == "rate_limit":
            self.metrics.rate_limit_rejected(label, protocol_of(method))
            if isinstance(exc, QuotaExceeded):
                self.metrics.quota_exceeded(exc.role)
        else:
            self.metrics.auth_failed(label, protocol_of(method))

    async def start(self, *, owns_process: bool = False) -> int:
        """Listen and load the flags; health turns SERVING only when everything is loaded.

        `owns_process`: this server is its process's whole purpose (`serve`), so what starting
        made is frozen out of the collector's full passes before SERVING (`heap.settle_startup`).
        An app embedded in another program (tests, the restore drill) leaves that program's heap
        alone."""
        settings = self.settings
        services = self.services
        add_to_server(
            EvaluationServicer(
                self.service, self.hub, settings.heartbeat_seconds, max_keys=settings.evaluate_all_max_keys
            ),
            services,
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(self.service, self.fleet, insecure_reasons=self.security.insecure.reasons),
            services,
        )
        replica_pb2_grpc.add_ReplicaServiceServicer_to_server(
            ReplicaServicer(
                self.fleet,
                secret=self.replica_secret,
                auth_required=settings.auth_required,
                rate=settings.replica_poke_rate,
                count=self.metrics.poke,
            ),
            services,
        )
        keys_pb2_grpc.add_KeyServiceServicer_to_server(
            KeyServicer(self.security.keys, self.service, auth_required=settings.auth_required),
            services,
        )
        heartbeat = settings.heartbeat_seconds
        for flagd in (FlagdEvaluationV1, FlagdEvaluationV2):
            add_flagd_evaluation(flagd(self.service, self.hub, heartbeat), services)
        flagd_protos.add_servicer(
            services, flagd_protos.SYNC_V1, FlagdSync(self.service, self.hub, heartbeat)
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, services)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)),
            services,
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        # A lone server listens first, so health checks can watch it load (NOT_SERVING). A worker
        # of a port group loads first: listening early would let the kernel hand it connections
        # that it could only answer with "still loading" while its siblings are ready.
        in_group = settings.workers > 1
        if not in_group:
            await self._listen()
        await self.store.start()
        await self.security.start()
        await self.cache.load()
        if settings.flags:
            self.file_sync = FileSync(
                settings.flags, self.service, settings.env, settings.poll_interval, mode=settings.file_mode
            )
            await self.file_sync.start()
        self.cache.start_feed()
        await self.fleet.start()
        if self.cloudwatch is not None:
            await self.cloudwatch.start()
        if in_group:
            await self._listen()
        if owns_process:
            heap.settle_startup()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.served = True
        log.info(
            "vexil serving %s on %s:%d (store %s)",
            ", ".join(settings.served_environments),
            settings.host,
            self.port,
            self.store.name,
        )
        return self.port

    async def _listen(self) -> None:
        settings = self.settings
        address = f"{settings.host}:{settings.port}"
        credentials = self.security.grpc_credentials()
        try:
            if credentials is not None:
                self.port = self.server.add_secure_port(address, credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError:  # grpc's "Failed to bind": in use, or not an address of this host
            self.port = 0
        if self.port == 0:
            raise CannotListen(
                f"cannot listen on {address} (gRPC): address already in use or not this host's"
            )
        await self.server.start()
        if self.http is not None:
            self.http_port = await self.http.start()
            log.info("HTTP side (OFREP, /healthz, /readyz) on %s:%d", settings.host, self.http_port)

    def cut_drain(self) -> None:
        """End the drain window now (a second stop signal: someone is waiting at a terminal)."""
        self._drain_cut.set()

    async def stop(self, grace: float | None = None, drain: float | None = None) -> None:
        """Drain, then stop: health NOT_SERVING and /readyz 503 at once, but keep serving (new
        connections too) for `drain` seconds while load balancers move away; then end streams
        with UNAVAILABLE (clients reconnect elsewhere), refuse new calls and give in-flight ones
        `grace` seconds to complete."""
        grace = self.settings.shutdown_grace if grace is None else grace
        drain = (self.settings.drain_seconds if drain is None else drain) if self.served else 0.0
        await self.health.enter_graceful_shutdown()
        if self.http is not None:
            self.http.readiness.draining = True
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain):
                    await self._drain_cut.wait()
        deadline = time.monotonic() + grace
        self.gate.close()
        self.hub.close_all("server shutting down")
        await self.gate.settle(SETTLE_QUIET_S, deadline)
        if self.http is not None:
            await self.http.stop()
        await self.server.stop(max(0.0, deadline - time.monotonic()))
        if self.file_sync is not None:
            await self.file_sync.stop()
        await self.fleet.stop()
        if self.pokes is not None:
            await self.pokes.close()
        await self.cache.stop_feed()
        if self.cloudwatch is not None:
            await self.cloudwatch.stop()
        await self.security.stop()
        await self.store.close()


async def serve(settings: Settings, worker_command: Sequence[str] = ()) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    With `worker_command` (the parent of `settings.workers` processes), start that command
    `workers - 1` times once this process listens, forward the stop signal to those children and
    wait for them, so a supervisor that stops the parent stops the whole group."""
    raise_open_file_limit()  # before App: each listener's share of it is its connection limit
    app = App(settings)
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()
    children: list[asyncio.subprocess.Process] = []
    watchers: list[asyncio.Task[None]] = []

    def on_signal(sig: int) -> None:
        if stop.is_set():  # a second signal: stop draining, finish in-flight calls and exit
            app.cut_drain()
            for child in children:
                if child.returncode is None:
                    child.send_signal(sig)
        received.append(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await app.start(owns_process=True)
        if worker_command:
            for _ in range(settings.workers - 1):
                children.append(await asyncio.create_subprocess_exec(*worker_command))
            watchers = [asyncio.create_task(_watch(child, stop)) for child in children]
        print(f"vexil listening on {settings.host}:{app.port}", flush=True)
        await stop.wait()
        log.info(
            "shutting down: draining %.1f s, then in-flight calls get %.1f s",
            settings.drain_seconds,
            settings.shutdown_grace,
        )
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(received[0] if received else signal.SIGTERM)
        try:
            await app.stop()
        except Exception:
            log.exception("error during shutdown")
        await _reap(children, settings.drain_seconds + settings.shutdown_grace + 5.0)
        for watcher in watchers:
            watcher.cancel()


async def _watch(child: asyncio.subprocess.Process, stop: asyncio.Event) -> None:
    """Say so when a worker dies while the group is meant to be running (the others keep serving)."""
    code = await child.wait()
    if not stop.is_set():
        log.error("worker %d exited unexpectedly with %s; the other workers keep serving", child.pid, code)


async def _reap(children: list[asyncio.subprocess.Process], timeout: float) -> None:
    """Wait for the worker children (already signalled); kill any that outlive their grace."""
    for child in children:
        try:
            code = await asyncio.wait_for(child.wait(), timeout)
        except TimeoutError:
            log.error("worker %d did not stop within %.0f s; killing it", child.pid, timeout)
            child.kill()
            code = await child.wait()
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):
            log.warning("worker %d exited with %s", child.pid, code)
