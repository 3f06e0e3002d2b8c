"""vexil.v1.AdminService: flag management RPCs, a thin adapter over `FlagService`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import grpc

from vexil import __version__, identity
from vexil.errors import InvalidArgument
from vexil.model import Change, Flag
from vexil.service import FlagService
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


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: FlagService, *, insecure_reasons: Sequence[str] = ()) -> None:
        self.service = service
        self.insecure_reasons = tuple(insecure_reasons)
        """Why this server serves insecurely; GetStatus says so to every caller that may read it."""

    def _flag(self, request: admin_pb2.CreateFlagRequest | admin_pb2.UpdateFlagRequest) -> Flag:
        if not request.HasField("flag"):
            raise InvalidArgument("a flag definition is required", "flag")
        flag = replace(flag_from_pb(request.flag, strict=True), managed_by="")  # managed_by is output only
        if not flag.environment:
            flag = replace(flag, environment=identity.default_environment())
        return flag

    @status.unary
    async def CreateFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.FlagResponse:
        change = await self.service.create_flag(
            self._flag(request), actor=identity.actor(context), reason=request.reason
        )
        return _flag_response(change)

    @status.unary
    async def UpdateFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.FlagResponse:
        change = await self.service.update_flag(
            self._flag(request),
            expected_version=_optional(request, "expected_version"),
            actor=identity.actor(context),
            reason=request.reason,
            # No state in the request: keep the stored one (the kill switch is SetKillSwitch's).
            keep_state=request.flag.state == flag_pb2.FLAG_STATE_UNSPECIFIED,
        )
        return _flag_response(change)

    @status.unary
    async def DeleteFlag(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.DeleteFlagResponse:
        change = await self.service.delete_flag(
            request.environment or identity.default_environment(),
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
        flag = await self.service.get_flag(request.environment or identity.default_environment(), request.key)
        return flag_to_pb(flag)

    @status.unary
    async def ListFlags(self, request, context: grpc.aio.ServicerContext) -> admin_pb2.ListFlagsResponse:
        page = await self.service.list_flags(
            request.environment or identity.default_environment(),
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
            request.environment or identity.default_environment(),
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
            request.environment or identity.default_environment(),
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
        env = request.environment or identity.default_environment()
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
            request.environment or identity.default_environment(),
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
        return environment_to_pb(
            self.service.get_environment(request.environment or identity.default_environment())
        )

    @status.unary
    async def UpdateEnvironment(self, request, context: grpc.aio.ServicerContext) -> flag_pb2.Environment:
        change = await self.service.update_environment(
            request.environment or identity.default_environment(),
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
            response.environments.add(
                name=env,
                config_version=feed.config_version,
                flags=feed.flags,
                staleness_seconds=feed.staleness_seconds,
                healthy=feed.healthy,
                last_error=feed.last_error,
                subscribers=cache.hub.count(env),
            )
        response.state = (
            admin_pb2.ServerStatus.STATE_DEGRADED if degraded else admin_pb2.ServerStatus.STATE_SERVING
        )
        return response
