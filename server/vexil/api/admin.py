"""vexil.v1.AdminService: flag management RPCs, a thin adapter over `FlagService`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial

import grpc

from vexil import __version__, identity
from vexil.errors import InvalidArgument
from vexil.fleet import DEFAULT_WAIT_S, MAX_WAIT_S, Fleet, replica_views
from vexil.model import Change, Flag
from vexil.service import FlagService
from vexil.store.replicas import ReplicaRecord
from vexil.transport import status
from vexil.v1 import admin_pb2, admin_pb2_grpc, flag_pb2
from vexil.wire import (
    change_to_pb,
    environment_to_pb,
    flag_from_pb,
    flag_to_pb,
    revision_to_pb,
    struct_to_dict,
)


def _optional(request: object, field: str) -> int | None:
    return getattr(request, field) if request.HasField(field) else None  # type: ignore[attr-defined]


def _flag_response(change: Change) -> admin_pb2.FlagResponse:
    response = admin_pb2.FlagResponse(config_version=change.config_version)
    if change.flag is not None:
        flag_to_pb(change.flag, response.flag)
    return response


def _replica_statuses(
    fleet: Fleet, replicas: list[ReplicaRecord], now: float
) -> list[admin_pb2.ReplicaStatus]:
    return [
        admin_pb2.ReplicaStatus(
            id=v.record.replica_id,
            address=v.record.address,
            config_version=v.record.config_version,
            lag=v.lag,
            last_seen_seconds=v.last_seen_seconds,
            self=v.is_self,
        )
        for v in replica_views(fleet.replica_id, replicas, now)
    ]


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: FlagService, fleet: Fleet, *, insecure_reasons: Sequence[str] = ()) -> None:
        self.service = service
        self.fleet = fleet
        """The replica registry: GetStatus lists it, WaitForPropagation waits on it."""
        self.insecure_reasons = tuple(insecure_reasons)
        """Why this server serves insecurely; GetStatus says so to every caller that may read it."""

    def _flag(self, request: admin_pb2.CreateFlagRequest | admin_pb2.UpdateFlagRequest) -> Flag:
        if not request.HasField("flag"):
            raise InvalidArgument("a flag definition is required", "flag")
        flag = flag_from_pb(request.flag, strict=True)
        # managed_by and problem are output only
        return replace(flag, managed_by="", problem="")

    async def _write_definition(
        self,
        request: admin_pb2.CreateFlagRequest | admin_pb2.UpdateFlagRequest,
        context: grpc.aio.ServicerContext,
        write: Callable[..., Awaitable[Change]],
    ) -> admin_pb2.FlagResponse:
        """CreateFlag and UpdateFlag: what a definition write takes from the request.  No state in the
        request keeps the stored one: an update leaves the kill switch to SetKillSwitch, and a
        deleted flag comes back in the state it had."""
        change = await write(
            self._flag(request),
            actor=identity.actor(context),
            reason=request.reason,
            keep_state=request.flag.state == flag_pb2.FLAG_STATE_UNSPECIFIED,
        )
        return _flag_response(change)

    @status.unary
    async def CreateFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.FlagResponse:
        return await self._write_definition(request, context, self.service.create_flag)

    @status.unary
    async def UpdateFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.FlagResponse:
        expected_version = _optional(request, "expected_version")
        return await self._write_definition(
            request, context, partial(self.service.update_flag, expected_version=expected_version)
        )

    @status.unary
    async def DeleteFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.DeleteFlagResponse:
        change = await self.service.delete_flag(
            request.environment,
            request.key,
            expected_version=_optional(request, "expected_version"),
            actor=identity.actor(context),
            reason=request.reason,
        )
        return admin_pb2.DeleteFlagResponse(
            config_version=change.config_version, deleted_version=change.before_version
        )

    @status.unary
    async def GetFlag(self, request, context: grpc.aio.ServicerContext) -> flag_pb2.Flag:
        flag = await self.service.get_flag(request.environment, request.key)
        return flag_to_pb(flag)

    @status.unary
    async def ListFlags(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.ListFlagsResponse:
        page = await self.service.list_flags(
            request.environment,
            owner=request.owner,
            tag=request.tag,
            size=request.page_size,
            token=request.page_token,
        )
        response = admin_pb2.ListFlagsResponse(next_page_token=page.next_token)
        for flag in page.items:
            flag_to_pb(flag, response.flags.add())
        return response

    @status.unary
    async def GetFlagHistory(
        self, request, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetFlagHistoryResponse:
        page = await self.service.history(
            request.environment,
            request.key,
            size=request.page_size,
            token=request.page_token,
        )
        return admin_pb2.GetFlagHistoryResponse(
            revisions=[revision_to_pb(r) for r in page.items], next_page_token=page.next_token
        )

    @status.unary
    async def RollbackFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.FlagResponse:
        change = await self.service.rollback(
            request.environment,
            request.key,
            request.to_version,
            expected_version=_optional(request, "expected_version"),
            actor=identity.actor(context),
            reason=request.reason,
        )
        return _flag_response(change)

    @status.unary
    async def SetKillSwitch(
        self, request, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SetKillSwitchResponse:
        env = request.environment
        if request.flag_key:
            change = await self.service.set_flag_killed(
                env, request.flag_key, request.killed, actor=identity.actor(context), reason=request.reason
            )
        else:
            change = await self.service.set_environment_killed(
                env, request.killed, actor=identity.actor(context), reason=request.reason
            )
        response = admin_pb2.SetKillSwitchResponse(config_version=change.config_version)
        if change.flag is not None:
            flag_to_pb(change.flag, response.flag)
        if change.environment is not None:
            environment_to_pb(change.environment, response.environment)
        return response

    @status.unary
    async def ListChanges(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.ListChangesResponse:
        changes = await self.service.list_changes(
            request.environment,
            since_version=request.since_version,
            size=request.page_size,
            flag_key=request.flag_key,
        )
        return admin_pb2.ListChangesResponse(
            changes=[change_to_pb(c) for c in changes],
            next_since_version=changes[-1].config_version if changes else request.since_version,
        )

    @status.unary
    async def GetEnvironment(self, request, context: grpc.aio.ServicerContext) -> flag_pb2.Environment:
        return environment_to_pb(self.service.get_environment(request.environment))

    @status.unary
    async def UpdateEnvironment(self, request, context: grpc.aio.ServicerContext) -> flag_pb2.Environment:
        change = await self.service.update_environment(
            request.environment,
            evaluators=(
                struct_to_dict(request.evaluators, field="evaluators", strict=True)
                if request.HasField("evaluators")
                else None
            ),
            metadata=(
                struct_to_dict(request.metadata, field="metadata", strict=True)
                if request.HasField("metadata")
                else None
            ),
            expected_config_version=_optional(request, "expected_config_version"),
            actor=identity.actor(context),
            reason=request.reason,
        )
        return environment_to_pb(self.service.get_environment(change.environment_name))

    @status.unary
    async def GetStatus(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.ServerStatus:
        cache = self.service.cache
        response = admin_pb2.ServerStatus(
            store=self.service.store.name,
            version=__version__,
            insecure=bool(self.insecure_reasons),
            insecure_reasons=self.insecure_reasons,
        )
        if not cache.loaded:
            response.state = admin_pb2.ServerStatus.STATE_LOADING
            return response
        degraded = False
        for env in identity.visible(cache.environments):
            feed = cache.status(env)
            degraded |= not feed.healthy
            replicas = self.fleet.known_replicas(env)  # as of the last heartbeat: no I/O here
            response.environments.add(
                name=env,
                config_version=feed.config_version,
                flags=feed.flags,
                staleness_seconds=feed.staleness_seconds,
                healthy=feed.healthy,
                last_error=feed.last_error,
                subscribers=cache.hub.count(env),
                replicas=_replica_statuses(self.fleet, replicas, time.time()),
            )
        response.state = (
            admin_pb2.ServerStatus.STATE_DEGRADED if degraded else admin_pb2.ServerStatus.STATE_SERVING
        )
        return response

    @status.unary
    async def WaitForPropagation(
        self, request, context: grpc.aio.ServicerContext
    ) -> admin_pb2.WaitForPropagationResponse:
        env = self.service.environment(request.environment)
        version = request.config_version or self.service.cache.get(env).config_version
        timeout = request.timeout_seconds or DEFAULT_WAIT_S
        if not 0 < timeout <= MAX_WAIT_S:
            raise InvalidArgument(
                f"must be more than 0 and at most {MAX_WAIT_S:g} seconds", "timeout_seconds"
            )
        if version > self.service.cache.get(env).config_version:
            # Written through another replica, or never written: only the store can tell.
            stored = await self.service.cache.store.stored_config_version(env)
            if version > stored:
                raise InvalidArgument(
                    f"config_version {version} is ahead of the environment's config_version {stored} "
                    "in the store: name a version a write returned",
                    "config_version",
                )
        if context.time_remaining() is not None:  # the caller's own deadline bounds the wait too
            timeout = max(0.001, min(timeout, context.time_remaining() - 0.05))
        receipt = await self.fleet.wait_for(env, version, timeout)
        return admin_pb2.WaitForPropagationResponse(
            environment=env,
            config_version=version,
            complete=receipt.complete,
            applied=len(receipt.applied),
            total=len(receipt.replicas),
            replicas=_replica_statuses(self.fleet, receipt.replicas, time.time()),
            laggards=[r.replica_id for r in receipt.laggards],
            elapsed_seconds=receipt.elapsed_seconds,
        )
