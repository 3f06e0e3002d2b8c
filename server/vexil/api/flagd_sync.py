"""flagd.sync.v1.FlagSyncService: the whole flag configuration, for providers in in-process mode.

`SyncFlags` sends the environment's configuration as a flagd document (`flagd_document`) at once
and again after every change; each response is complete, so a provider that missed some simply
catches up with the next, and changes that arrive while one is being sent collapse into one
response.  `GetMetadata` answers the sync context: static attributes flagd can be configured to add
to every evaluation.  vexil adds none (so in-process answers stay equal to vexil's own), and the
context is an empty object rather than absent because providers index into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from vexil.flagd_compat.document import DocumentCache
from vexil.flagd_compat.selector import header_selector, select_environment
from vexil.follow import Heartbeat, Item, follow
from vexil.hub import Hub
from vexil.service import FlagService
from vexil.transport import status
from vexil.transport.flagd_protos import sync_v1


class FlagdSync:
    def __init__(self, service: FlagService, hub: Hub, idle_seconds: float = 15.0) -> None:
        self.service = service
        self.cache = service.cache
        self.hub = hub
        self.idle_seconds = idle_seconds
        self.documents = DocumentCache()

    def _environment(self, request: Any, context: grpc.aio.ServicerContext) -> str:
        """The header wins over the deprecated `selector` field, as in flagd."""
        selector = header_selector(context.invocation_metadata()) or request.selector
        return select_environment(self.service, selector)

    @status.streaming
    def SyncFlags(
        self, request: sync_v1.SyncFlagsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sync_v1.SyncFlagsResponse]:
        def encode(item: Item) -> sync_v1.SyncFlagsResponse | None:
            if isinstance(item, Heartbeat):
                return None  # flagd's sync stream has no keep-alive message
            return sync_v1.SyncFlagsResponse(flag_configuration=self.documents.json(item.snapshot))

        environment = self._environment(request, context)
        # Every response is the whole document, so changes it already covers are not sent again.
        return follow(environment, self.cache, self.hub, self.idle_seconds, encode, whole_state=True)

    @status.unary
    async def FetchAllFlags(
        self, request: sync_v1.FetchAllFlagsRequest, context: grpc.aio.ServicerContext
    ) -> sync_v1.FetchAllFlagsResponse:
        snapshot = self.cache.get(self._environment(request, context))
        return sync_v1.FetchAllFlagsResponse(flag_configuration=self.documents.json(snapshot))

    @status.unary
    async def GetMetadata(
        self, request: sync_v1.GetMetadataRequest, context: grpc.aio.ServicerContext
    ) -> sync_v1.GetMetadataResponse:
        # Not tied to an environment (flagd providers call it without their selector), so it
        # answers whatever the selector would have been.
        response = sync_v1.GetMetadataResponse()
        response.metadata.SetInParent()
        return response
