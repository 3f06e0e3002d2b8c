"""Fan-out of changes to streaming subscribers (Watch, flagd EventStream, flagd SyncFlags).

Publishing never waits on a subscriber: each one has a bounded queue, filled with `put` that
cannot block.  A subscriber that falls too far behind has its queue dropped and is marked for a
*resync* (its stream then sends a fresh snapshot), so one slow reader costs a bounded amount of
memory and never delays the others, and nobody is silently left with a hole in their history.
The hub knows nothing of gRPC: `vexil.follow` turns what a subscription receives into what a
stream sends, and each adapter encodes that into its own wire messages.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from vexil.errors import ShuttingDown, VexilError
from vexil.model import Change

DEFAULT_QUEUE_SIZE = 256


class Resync:
    """Returned by `Subscription.next` when the subscriber missed changes and must resync."""


RESYNC = Resync()


@dataclass(eq=False)
class Subscription:
    """One subscriber's view of one environment's changes."""

    environment: str
    flag_keys: frozenset[str] | None = None
    queue_size: int = DEFAULT_QUEUE_SIZE
    _queue: deque[Change] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _overflowed: bool = False
    closed_reason: str = ""
    closed_error: VexilError | None = None
    """Raised by `next` once closed with one (the stream then ends with its status)."""

    def wants(self, change: Change) -> bool:
        return self.flag_keys is None or not change.flag_key or change.flag_key in self.flag_keys

    def offer(self, change: Change) -> None:
        """Queue a change without ever blocking; overflow turns into a resync."""
        if self.closed_reason or not self.wants(change):
            return
        if len(self._queue) >= self.queue_size:
            self.request_resync()
            return
        self._queue.append(change)
        self._wakeup.set()

    def request_resync(self) -> None:
        """Drop what is queued and make the next `next()` return RESYNC."""
        self._queue.clear()
        self._overflowed = True
        self._wakeup.set()

    def close(self, reason: str, error: VexilError | None = None) -> None:
        """End the subscription: `next` then raises `error`, or returns None without one (a
        revoked credential: the security layer picks the status)."""
        self.closed_reason = reason
        self.closed_error = error
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def next(self, timeout: float | None = None) -> Change | Resync | None:
        """The next change, RESYNC, or None on timeout or close (check `closed_reason`)."""
        while True:
            if self.closed_reason:
                if self.closed_error is not None:
                    raise self.closed_error
                return None
            if self._overflowed:
                self._overflowed = False
                return RESYNC
            if self._queue:
                return self._queue.popleft()
            self._wakeup.clear()
            try:
                # asyncio.timeout arms one timer; wait_for would also create a Task per message
                # per subscriber, which showed up as ~14 % of the server's time in fan-out.
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                return None


class Hub:
    """Registry of subscriptions per environment."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, environment: str, flag_keys: Iterable[str] | None = None) -> Subscription:
        keys = frozenset(flag_keys) if flag_keys else None
        sub = Subscription(environment, keys, self.queue_size)
        self._subscribers.setdefault(environment, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.environment)
        if subs is not None:
            subs.discard(sub)

    def publish(self, change: Change) -> None:
        for sub in tuple(self._subscribers.get(change.environment_name, ())):
            sub.offer(change)

    def resync_all(self, environment: str) -> None:
        """Tell every subscriber of `environment` to resync (after a full reload found drift)."""
        for sub in tuple(self._subscribers.get(environment, ())):
            sub.request_resync()

    def close_all(self, reason: str) -> None:
        """End every stream with UNAVAILABLE (server shutdown): clients reconnect, elsewhere."""
        error = ShuttingDown(f"{reason}; reconnect")
        for subs in self._subscribers.values():
            for sub in tuple(subs):
                sub.close(reason, error)

    def count(self, environment: str | None = None) -> int:
        if environment is not None:
            return len(self._subscribers.get(environment, ()))
        return sum(len(s) for s in self._subscribers.values())
