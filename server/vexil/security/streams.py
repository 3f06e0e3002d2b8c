"""Ending open streams when their credentials stop being valid.

A stream (Watch, flagd EventStream, flagd SyncFlags) authenticates once, when it opens, and may
then run for days.  So the auth interceptor gives every authenticated stream a `StreamTicket`
(held in a context variable for the duration of the call), and `TrackedHub.subscribe` - which
every stream's `vexil.follow.follow` loop calls from inside its handler - attaches the hub
subscription to the ticket.  The adapters need no change: closing a ticket closes its subscriptions
(`Subscription.close(reason)`), their loops end, and the interceptor then ends the call with
UNAUTHENTICATED and the reason.

When does a ticket close?
- at once, on the replica that rotates or revokes a key (`recheck`, via `KeyManager.on_change`);
- on other replicas, at the next `sweep` after their key cache expires (sweeps run every
  `sweep_seconds`; the key cache TTL is at most 60 s), which also catches keys that reach
  their expiry and JWTs that reach their `exp`;
- on a replica cut off from the key store, once the key's last known record may no longer stand
  in for it (`keys.LAST_KNOWN_SECONDS`): then the stream ends UNAVAILABLE, not UNAUTHENTICATED
  (nothing says the key is bad), and its client reconnects, to a replica that can confirm it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

from vexil.background import BackgroundTask
from vexil.errors import ResourceExhausted, Unavailable
from vexil.hub import Hub, Subscription
from vexil.identity import current_principal
from vexil.security import apikeys
from vexil.security.authn import Identity
from vexil.security.keys import KeyManager
from vexil.store.keys import ApiKey
from vexil.transport.details import DEFAULT_RETRY_SECONDS
from vexil.transport.peers import peer_host

log = logging.getLogger(__name__)


class StreamTicket:
    """One authenticated stream: its identity, its subscriptions, and why it was ended."""

    __slots__ = ("closed_reason", "identity", "retry", "subscriptions")

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.subscriptions: list[Subscription] = []
        self.closed_reason = ""
        self.retry = False
        """Closed because the credentials could not be confirmed (the key store unreachable for
        too long), not refused: the stream ends UNAVAILABLE, and the client reconnects."""

    def attach(self, sub: Subscription) -> None:
        if self.closed_reason:
            sub.close(self.closed_reason)
        else:
            self.subscriptions.append(sub)

    def close(self, reason: str, *, retry: bool = False) -> None:
        if self.closed_reason:
            return
        self.closed_reason = reason
        self.retry = retry
        for sub in self.subscriptions:
            sub.close(reason)


current_ticket: ContextVar[StreamTicket | None] = ContextVar("vexil_stream_ticket", default=None)


class TrackedHub(Hub):
    """The hub, plus: a subscription made inside an authenticated stream joins its ticket."""

    def subscribe(self, environment: str, flag_keys: Iterable[str] | None = None) -> Subscription:
        sub = super().subscribe(environment, flag_keys)
        ticket = current_ticket.get()
        if ticket is not None:
            ticket.attach(sub)
        return sub


Client = tuple[str, str]
"""(credential subject, client address): whom `MAX_STREAMS_PER_CLIENT` counts."""
MAX_STREAMS_PER_CLIENT = 100
"""Streams one credential may hold open from one client address (a service instance opens one or
a few; every open stream holds server memory, about 60 KB): the 101st is RESOURCE_EXHAUSTED.
Streams of the methods open to all (health Watch, reflection) count by address alone: each holds
one of the calls the server has open at once, and nothing else would bound them."""
ANONYMOUS = ""
"""The subject streams of methods open to all are counted under (no credential has it)."""


class StreamRegistry:
    """Every open authenticated stream, by API key id, and the sweeps that end invalid ones."""

    def __init__(
        self, keys: KeyManager, *, sweep_seconds: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.keys = keys
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self._by_key: dict[str, set[StreamTicket]] = {}
        self._per_client: Counter[Client] = Counter()
        """(credential, client address) -> open streams (`MAX_STREAMS_PER_CLIENT`)."""
        self._expiring: set[StreamTicket] = set()
        self._task = BackgroundTask("vexil-stream-sweeper")

    def open(self, identity: Identity) -> StreamTicket:
        ticket = StreamTicket(identity)
        if identity.key_id:
            self._by_key.setdefault(identity.key_id, set()).add(ticket)
        if identity.expires_at:
            self._expiring.add(ticket)
        return ticket

    def release(self, ticket: StreamTicket) -> None:
        key_id = ticket.identity.key_id
        tickets = self._by_key.get(key_id)
        if tickets is not None:
            tickets.discard(ticket)
            if not tickets:
                del self._by_key[key_id]
        self._expiring.discard(ticket)

    def reserve(self, identity: Identity | None, peer: str) -> Client:
        """Count one more stream of this credential (None: a stream of a method open to all,
        health Watch or reflection, counted by address alone) from this address (`peer`), for
        `tracking` or `holding` to release; `ResourceExhausted` when it already holds
        `MAX_STREAMS_PER_CLIENT`."""
        client = (identity.principal.subject if identity else ANONYMOUS, peer_host(peer))
        if self._per_client[client] >= MAX_STREAMS_PER_CLIENT:
            limit = MAX_STREAMS_PER_CLIENT
            held = (
                f"these credentials already hold {limit} open streams from this address"
                if identity
                else f"this address already holds {limit} open streams of methods open to all"
            )
            raise ResourceExhausted(
                f"{held}; close one (a client needs one stream per environment it follows)",
                retry_after=DEFAULT_RETRY_SECONDS,
            )
        self._per_client[client] += 1
        return client

    @contextlib.contextmanager
    def holding(self, client: Client) -> Iterator[None]:
        """For the duration of one stream of a method open to all: its `reserve`d place."""
        try:
            yield
        finally:
            self._release_client(client)

    def _release_client(self, client: Client) -> None:
        self._per_client[client] -= 1
        if not self._per_client[client]:
            del self._per_client[client]

    @contextlib.contextmanager
    def tracking(self, identity: Identity, client: Client | None = None) -> Iterator[StreamTicket]:
        """For the duration of one stream call: its ticket registered, and current (so that
        `TrackedHub.subscribe` attaches the call's subscriptions), with the caller's principal;
        then the `reserve`d `client` count released."""
        ticket = self.open(identity)
        principal_token = current_principal.set(identity.principal)
        ticket_token = current_ticket.set(ticket)
        try:
            yield ticket
        finally:
            self.release(ticket)
            if client is not None:
                self._release_client(client)
            # A stream's generator may be finalised from another context (client gone); that
            # context is being discarded anyway.
            with contextlib.suppress(ValueError):
                current_ticket.reset(ticket_token)
            with contextlib.suppress(ValueError):
                current_principal.reset(principal_token)

    def count(self) -> int:
        return sum(len(t) for t in self._by_key.values()) + len(self._expiring)

    def recheck(self, key: ApiKey) -> None:
        """End the streams that `key`, as it is now, no longer accepts."""
        now = self.clock()
        for ticket in tuple(self._by_key.get(key.id, ())):
            reason = apikeys.rejection(key, ticket.identity.matched_hash, now)
            if reason:
                ticket.close(reason)

    async def sweep(self) -> None:
        """One pass over every open stream (see the module docstring)."""
        now = self.clock()
        for ticket in tuple(self._expiring):
            if now >= ticket.identity.expires_at:
                ticket.close("token expired")
        for key_id in tuple(self._by_key):
            try:
                key = await self.keys.lookup(key_id)
            except Unavailable as exc:
                # Past the time a last known record may stand in (the lookup serves it until
                # then): a key revoked elsewhere meanwhile must not keep its streams.
                for ticket in tuple(self._by_key.get(key_id, ())):
                    ticket.close(f"this API key cannot be confirmed: {exc.message}; reconnect", retry=True)
                continue
            except Exception as exc:  # keep serving, try again next sweep
                log.debug("cannot re-check streams of key %s: %s", key_id, exc)
                continue
            if key is None:
                for ticket in tuple(self._by_key.get(key_id, ())):
                    ticket.close("API key deleted")
            else:
                self.recheck(key)

    def start(self) -> None:
        self._task.every(self.sweep_seconds, self.sweep)

    async def stop(self) -> None:
        await self._task.stop()
