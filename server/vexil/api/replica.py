"""vexil.v1.ReplicaService: the internal poke RPC, a thin adapter over `vexil.fleet.Fleet`.

Who may poke: with a replica secret configured (`replica_secret_file`), only callers presenting
it; without one, anyone when authentication is off (the local profile, like every other RPC) and
no one when it is on (pokes then never arrive and the poll delivers every write).  Whoever it is,
a caller gets `replica_poke_rate` pokes per second and all callers together ten times that; a poke
for a version already served costs nothing, any other at most one change-log read, folded into
the feed's next poll.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

import grpc

from vexil.errors import FailedPrecondition, ResourceExhausted, Unauthenticated, VexilError
from vexil.fleet import Fleet
from vexil.security.ratelimit import BucketTable, TokenBucket
from vexil.transport import status
from vexil.transport.peers import peer_host
from vexil.transport.poke import SECRET_HEADER
from vexil.v1 import replica_pb2, replica_pb2_grpc

GLOBAL_FACTOR = 10
"""All callers together get this many times one caller's poke rate."""


class ReplicaServicer(replica_pb2_grpc.ReplicaServiceServicer):
    def __init__(
        self,
        fleet: Fleet,
        *,
        secret: str,
        auth_required: bool,
        rate: float,
        count: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.fleet = fleet
        self.count = count
        """Told "accepted" or "refused" for each poke (metrics)."""
        self.secret = secret
        self.auth_required = auth_required
        now = time.monotonic()
        self._callers = BucketTable(rate, rate) if rate > 0 else None
        self._all = TokenBucket(rate * GLOBAL_FACTOR, rate * GLOBAL_FACTOR, now) if rate > 0 else None

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        if not self.secret:
            if self.auth_required:
                raise FailedPrecondition(
                    "this replica accepts no pokes: authentication is required and no "
                    "replica_secret_file is configured (the change-log poll delivers writes)"
                )
            return
        given = [v for k, v in context.invocation_metadata() or () if k == SECRET_HEADER]
        if len(given) != 1 or not hmac.compare_digest(str(given[0]).encode(), self.secret.encode()):
            raise Unauthenticated(f"a poke needs the replica secret in '{SECRET_HEADER}'")

    def _limit(self, context: grpc.aio.ServicerContext) -> None:
        if self._callers is None or self._all is None:
            return
        now = time.monotonic()
        wait = self._callers.take(peer_host(context.peer()), now) or self._all.take(now)
        if wait:
            raise ResourceExhausted(
                f"poke rate limit ({self._callers.capacity:g} per second) exceeded", retry_after=1
            )

    @status.unary
    async def Poke(self, request, context: grpc.aio.ServicerContext) -> replica_pb2.PokeResponse:
        try:
            self._authenticate(context)
            self._limit(context)
        except VexilError:
            self.count("refused")
            raise
        self.count("accepted")
        read = self.fleet.poked(request.environment, request.config_version)
        return replica_pb2.PokeResponse(read=read)
