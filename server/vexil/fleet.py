"""The fleet: what every replica serves, told to the others through the store.

Registry.  Each replica writes one record per served environment into the store
(`vexil.store.replicas`): its id, the address others reach it at, the `config_version` it has
applied and when it wrote this; the record expires `expiry` seconds later unless rewritten.  The
heartbeat task writes every `heartbeat` seconds, and at once (coalesced) whenever the snapshot
of an environment moves forward, so a receipt sees an applied version within a store round trip.
It runs beside the change feed, never on the evaluate path.  Registry writes are plain puts:
they never bump `config_version` and never enter the change log.

Pokes.  After a write made here, the live replicas of that environment are told "version N
exists" (`PokeSender`, over the internal RPC); a poked replica whose snapshot is older wakes its
change-feed poll at once (`SnapshotCache.poll_now`), so it reads the change log now instead of up
to a poll interval later.  A poke carries no data: a forged one can only cause one change-log read,
and the receiving side rate-limits callers.  Pokes are best effort: one lost leaves the poll to
deliver the version, as before.  At most one round of pokes per environment is in flight; writes
meanwhile are folded into one more round with the newest version.

Receipts.  `wait_for` reads the registry until every replica reports the version applied, or the
timeout passes: then it answers k of n and names the laggards.  "Every replica" includes those
that went silent (their record expired without the goodbye a stopping replica sends) within
`SILENT_WINDOW_S`: a replica cut off from the table keeps serving what it has, and cannot say
so; until it comes back or the window passes, a receipt names it a laggard (at the version it last
reported) rather than answer complete while it may serve the old state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vexil.background import cancel_and_wait
from vexil.cache import SnapshotCache
from vexil.errors import EnvironmentNotServed, InvalidArgument
from vexil.model import Change
from vexil.store.base import FlagStore
from vexil.store.replicas import ReplicaRecord, live

log = logging.getLogger(__name__)

PokeSender = Callable[[str, str, int], Awaitable[None]]
"""Tell the replica at `address` that `environment` has `config_version` (raises on failure)."""

WAIT_READ_INTERVAL_S = 0.05
"""How often a receipt re-reads the registry while replicas are still behind."""
MAX_WAIT_S = 60.0
"""The longest a receipt may wait: a caller wanting longer asks again."""
DEFAULT_WAIT_S = 10.0
LEAVE_TIMEOUT_S = 1.0
"""How long a stopping replica tries to remove its records (an unreachable store must not hold
the shutdown; the records expire anyway)."""
ADVANCE_SETTLE_S = 0.05
"""Delay of the registry write after a snapshot moves forward (see `_advanced`)."""
SILENT_WINDOW_S = 300.0
"""How long a replica whose record expired unannounced still counts in receipts (see above)."""
POKE_TIMEOUT_S = 0.5
"""A poke not answered by then is given up (the poll delivers the version anyway)."""


def _ignore(outcome: str) -> None:
    return None


def new_replica_id() -> str:
    """Host name, process id and a random part: unique per start, readable in a listing."""
    host = socket.gethostname().split(".")[0][:40] or "replica"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One registry record as GetStatus and the console show it: lag is versions behind the newest
    any live replica has applied; `is_self` marks the replica that answered."""

    record: ReplicaRecord
    lag: int
    last_seen_seconds: float
    is_self: bool


def replica_views(self_id: str, replicas: list[ReplicaRecord], now: float) -> list[ReplicaView]:
    newest = max((r.config_version for r in replicas), default=0)
    return [
        ReplicaView(r, newest - r.config_version, max(0.0, now - r.last_seen_unix), r.replica_id == self_id)
        for r in replicas
    ]


@dataclass(frozen=True, slots=True)
class Receipt:
    """How far one config_version of one environment has propagated."""

    environment: str
    config_version: int
    replicas: list[ReplicaRecord]
    """Every live or recently silent replica, with the version it (last) reported applied."""
    elapsed_seconds: float

    @property
    def applied(self) -> list[ReplicaRecord]:
        return [r for r in self.replicas if r.config_version >= self.config_version]

    @property
    def laggards(self) -> list[ReplicaRecord]:
        return [r for r in self.replicas if r.config_version < self.config_version]

    @property
    def complete(self) -> bool:
        return not self.laggards


class Fleet:
    """This replica's place in the fleet: registry heartbeat, pokes out and in, receipts."""

    def __init__(
        self,
        store: FlagStore,
        cache: SnapshotCache,
        *,
        address: str,
        heartbeat: float = 2.0,
        expiry: float = 10.0,
        replica_id: str = "",
        send_poke: PokeSender | None = None,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.address = address
        self.heartbeat = heartbeat
        self.expiry = expiry
        self.replica_id = replica_id or new_replica_id()
        self.send_poke = send_poke
        """Pokes the other replicas after a local write (None: they find writes by polling)."""
        self._written: dict[str, int] = {}
        """The config_version last written into each environment's registry record."""
        self._peers: dict[str, list[ReplicaRecord]] = {}
        """Each environment's live replicas as last read (whom to poke)."""
        self._wake = asyncio.Event()
        self._wake_soon: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._pokes: dict[str, asyncio.Task[None]] = {}
        self._poke_pending: dict[str, int] = {}
        self._failing = False
        self.count = count or _ignore
        """Told "sent" or "failed" for each poke (metrics)."""
        cache.listeners.append(self._advanced)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Register at once (so a receipt right after start counts this replica), then beat."""
        try:
            await self._beat(full=True)
        except Exception as exc:  # the store answered the load a moment ago; the loop retries
            log.warning("replica registry: cannot write this replica's record: %s", exc)
            self._failing = True
        self._task = asyncio.create_task(self._run(), name="fleet:heartbeat")

    async def stop(self) -> None:
        """Stop beating and leave the registry now rather than an expiry later (best effort)."""
        if self._wake_soon is not None:
            self._wake_soon.cancel()
        tasks = [t for t in (self._task, *self._pokes.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)
        self._task = None
        self._pokes.clear()
        try:
            async with asyncio.timeout(LEAVE_TIMEOUT_S):
                for env in list(self._written):  # only records it wrote: a failed start wrote none
                    await self.store.delete_replica(env, self.replica_id)
        except Exception as exc:  # leaving is a courtesy; the records expire anyway
            log.info("could not remove replica %s from the registry: %s", self.replica_id, exc)

    # -- registry ----------------------------------------------------------------------------

    def _advanced(self, change: Change) -> None:
        """A snapshot moved forward: write the registry record soon (coalesced), just after the
        change-log reads the pokes of this write cause, so it does not queue ahead of them."""
        if self._wake_soon is None or self._wake_soon.cancelled():
            self._wake_soon = asyncio.get_running_loop().call_later(ADVANCE_SETTLE_S, self._wake_now)

    def _wake_now(self) -> None:
        self._wake_soon = None
        self._wake.set()

    async def _run(self) -> None:
        next_full = time.monotonic() + self.heartbeat
        while True:
            remaining = next_full - time.monotonic()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()
            self._wake.clear()
            full = time.monotonic() >= next_full
            if full:
                next_full = time.monotonic() + self.heartbeat
            try:
                await self._beat(full=full)
            except Exception as exc:  # the heartbeat must outlive any store fault
                if not self._failing:
                    log.warning("replica registry: cannot write this replica's record: %s", exc)
                self._failing = True

    async def _beat(self, *, full: bool) -> None:
        """Write the records whose version moved (all of them on a full beat, which also re-reads
        the others' records: whom to poke)."""
        for env in self.cache.environments:
            version = self._applied(env)
            if version is None or (not full and self._written.get(env) == version):
                continue
            await self.store.put_replica(self._record(env, version))
            self._written[env] = version
            if full:
                self._peers[env] = await self.store.list_replicas(env)
        if self._failing:
            log.info("replica registry: writing this replica's record again")
        self._failing = False

    def _applied(self, env: str) -> int | None:
        try:
            return self.cache.get(env).config_version
        except Exception:  # still loading: nothing to report yet
            return None

    def _record(self, env: str, version: int) -> ReplicaRecord:
        now = time.time()
        return ReplicaRecord(
            replica_id=self.replica_id,
            environment=env,
            address=self.address,
            config_version=version,
            last_seen_unix=now,
            expires_at_unix=math.ceil(now + self.expiry),
        )

    async def replicas(self, env: str, *, expired_within: float = 0.0) -> list[ReplicaRecord]:
        """The live replicas of `env` as the store lists them now (one read), this one with the
        version it serves right now (its record may be up to a heartbeat old); `expired_within`:
        also those whose record expired at most that many seconds ago."""
        return self._with_self(env, await self.store.list_replicas(env, expired_within=expired_within))

    def known_replicas(self, env: str) -> list[ReplicaRecord]:
        """The live replicas of `env` as of the last heartbeat's read (no I/O: GetStatus answers
        at once even while the store is stalled), those expired since left out, and this one as
        it serves right now."""
        return self._with_self(env, live(self._peers.get(env, []), time.time()))

    def _with_self(self, env: str, records: list[ReplicaRecord]) -> list[ReplicaRecord]:
        found = [r for r in records if r.replica_id != self.replica_id]
        version = self._applied(env)
        if version is not None:
            found.append(self._record(env, version))
        return sorted(found, key=lambda r: r.replica_id)

    # -- receipts ----------------------------------------------------------------------------

    async def wait_for(self, env: str, config_version: int, timeout: float) -> Receipt:
        """Wait until every replica of `env` (live or recently silent) has applied
        `config_version`, at most `timeout` seconds (0 < timeout <= MAX_WAIT_S); the receipt says
        who has and who has not."""
        if not self.cache.serves(env):
            raise EnvironmentNotServed(f"environment '{env}' is not served here")
        if not 0 < timeout <= MAX_WAIT_S:
            raise InvalidArgument(f"must be more than 0 and at most {MAX_WAIT_S:g} seconds", "timeout")
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        while True:
            found = await self.replicas(env, expired_within=SILENT_WINDOW_S)
            receipt = Receipt(env, config_version, found, loop.time() - start)
            remaining = deadline - loop.time()
            if receipt.complete or remaining <= 0:
                return receipt
            await asyncio.sleep(min(WAIT_READ_INTERVAL_S, remaining))

    # -- pokes -------------------------------------------------------------------------------

    def written(self, change: Change) -> None:
        """A write made through this replica: poke the others (in the background, bounded)."""
        if self.send_poke is None:
            return
        env = change.environment_name
        self._poke_pending[env] = max(self._poke_pending.get(env, 0), change.config_version)
        if env not in self._pokes:
            self._pokes[env] = asyncio.create_task(self._poke_rounds(env), name=f"fleet:poke:{env}")

    async def _poke_rounds(self, env: str) -> None:
        send = self.send_poke
        if send is None:
            return
        try:
            while (version := self._poke_pending.pop(env, None)) is not None:
                peers = [p for p in self._peers.get(env, []) if p.replica_id != self.replica_id]
                results = await asyncio.gather(
                    *(self._poke_one(send, p, env, version) for p in peers), return_exceptions=True
                )
                for peer, result in zip(peers, results, strict=True):
                    if isinstance(result, BaseException):
                        self.count("failed")
                        log.debug("poke of %s at %s failed: %s", peer.replica_id, peer.address, result)
                    else:
                        self.count("sent")
        finally:
            self._pokes.pop(env, None)

    @staticmethod
    async def _poke_one(send: PokeSender, peer: ReplicaRecord, env: str, version: int) -> None:
        async with asyncio.timeout(POKE_TIMEOUT_S):
            await send(peer.address, env, version)

    def poked(self, env: str, config_version: int) -> bool:
        """Another replica says `config_version` exists: poll the change log now unless it is
        served already.  True when a read was triggered (it is folded into the feed's next poll,
        so at most one extra read is ever in flight per environment)."""
        if not self.cache.serves(env):
            raise EnvironmentNotServed(f"environment '{env}' is not served here")
        version = self._applied(env)
        if version is None or version >= config_version:
            return False
        return self.cache.poll_now(env)
