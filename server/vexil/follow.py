"""One follow loop for every stream: what a subscriber of one environment must be sent, in order.

Watch, flagd EventStream and flagd SyncFlags all need the same thing, and each used to re-implement
it; `follow` is that one loop, and each adapter only gives it an `encode` function that turns
its items into the protocol's messages (the handler returns `follow(...)` itself):
- `Opened(snapshot, reason)`: the whole state to start from;
- `Changed(change, snapshot)`: one change newer than anything sent, with the snapshot then served;
- `Resynced(snapshot, reason)`: changes were missed (the subscriber fell behind, or a reload found
  drift): the whole state again;
- `Heartbeat(version)`: nothing happened for `heartbeat_seconds`; `version` is the last one sent.

What it guarantees, so that no adapter has to:
- subscribe before reading the snapshot or the change log, so nothing written in between is lost;
- never send a change at or below the version already sent (de-duplication by `config_version`);
  with `whole_state` every item stands for the snapshot it carries, so the changes it already
  covers are skipped too (SyncFlags: changes arriving while one document is sent collapse into one);
- resume after `since` (Watch's `since_version`): replay the logged changes after it, or, when the
  log no longer reaches back that far, open with the whole state instead; a version this replica
  has not reached yet is waited for briefly (the change feed brings it), one ahead of the store
  itself is INVALID_ARGUMENT;
- end when the subscription is closed: shutdown raises UNAVAILABLE out of the iterator (clients
  reconnect, elsewhere), a revoked credential just ends it (the security layer picks the status);
- unsubscribe when the iterator ends, however that happens (the client gone: cancelled or closed).

It subscribes on its first step, in the caller's context, which is how `TrackedHub` ties the
subscription to the stream's credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from vexil.cache import SnapshotCache
from vexil.errors import InvalidArgument, Unavailable
from vexil.hub import RESYNC, Hub, Subscription
from vexil.model import Change
from vexil.snapshot import Snapshot

INITIAL = "initial"
RESUME_GAP = "resume-unavailable: changes since that version are gone"
FELL_BEHIND = "resync: subscriber fell behind"
REPLAY_PAGE = 1000
"""Changes read from the log per call while replaying a resume."""


@dataclass(slots=True)
class WholeState:
    """The whole state of the environment, and why it is sent: `Opened` or `Resynced` (adapters
    that send a snapshot for both read them as this)."""

    snapshot: Snapshot
    reason: str


class Opened(WholeState):
    """The whole state to start from (`INITIAL`, or `RESUME_GAP` when a resume cannot replay)."""

    __slots__ = ()


@dataclass(slots=True)
class Changed:
    """One change newer than anything sent; `snapshot` is the one served as it is sent (at or past
    the change: flagd names every flag it knows of for an environment change)."""

    change: Change
    snapshot: Snapshot


class Resynced(WholeState):
    """Changes were missed: the whole state again."""

    __slots__ = ()


@dataclass(slots=True)
class Heartbeat:
    """Nothing to send for a heartbeat interval (or a resume with nothing to replay): still here,
    at `version`."""

    version: int


Item = Opened | Changed | Resynced | Heartbeat
"""Values, never changed once made; not frozen dataclasses only because those take about twice as
long to build, and one write builds an item per subscriber."""
T = TypeVar("T")


async def interleave(streams: list[AsyncGenerator[T, None]]) -> AsyncGenerator[T, None]:
    """The messages of several `follow`s (one per environment) as each comes, for one stream that
    follows them all; it ends when any of them ends or fails (a shutdown, a revoked credential
    end them all alike), closing the others."""
    pending = {asyncio.ensure_future(anext(stream)): stream for stream in streams}
    try:
        while True:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=list(pending).index):  # the order they were asked for
                stream = pending.pop(task)
                try:
                    message = task.result()
                except StopAsyncIteration:
                    return
                yield message
                pending[asyncio.ensure_future(anext(stream))] = stream
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()


async def follow(
    environment: str,
    cache: SnapshotCache,
    hub: Hub,
    heartbeat_seconds: float,
    encode: Callable[[Item], T | None],
    *,
    since: int | None = None,
    flag_keys: Iterable[str] | None = None,
    whole_state: bool = False,
) -> AsyncGenerator[T, None]:
    """`encode(item)` for each item a subscriber of `environment` must be sent (None: nothing to
    send for that item), until its subscription is closed (see the module docstring).

    The adapter's `encode` is applied here rather than by a generator of its own around this one:
    every stream message then passes through one generator less, which is measurable when one
    write fans out to thousands of streams.  `flag_keys` limits changes (not snapshots: adapters
    filter those) to those flags and environment-wide ones."""
    sub = hub.subscribe(environment, flag_keys)
    try:
        opening, sent = await _opening(cache, sub, since)
        for first in opening:
            message = encode(first)
            if message is not None:
                yield message
        while True:
            change = await sub.next(heartbeat_seconds)
            if change is None:
                if sub.closed_reason:
                    return
                item: Item = Heartbeat(sent)
            elif change is RESYNC:
                snapshot = cache.get(environment)
                item = Resynced(snapshot, FELL_BEHIND)
                sent = snapshot.config_version
            elif isinstance(change, Change) and change.config_version > sent:
                snapshot = cache.get(environment)
                item = Changed(change, snapshot)
                sent = snapshot.config_version if whole_state else change.config_version
            else:
                continue
            message = encode(item)
            if message is not None:
                yield message
    finally:
        hub.unsubscribe(sub)


def as_is(item: Item) -> Item:
    """The identity encoding: `follow` then yields the items themselves."""
    return item


async def _opening(cache: SnapshotCache, sub: Subscription, since: int | None) -> tuple[list[Item], int]:
    """What to send first, and the version it brings the subscriber to."""
    environment = sub.environment
    if since is not None:
        missed = await _missed(cache, environment, since)
        if missed is not None:
            snapshot = cache.get(environment)
            replay: list[Item] = [Changed(change, snapshot) for change in missed if sub.wants(change)]
            sent = missed[-1].config_version if missed else since
            # Say "caught up" now, not at the first heartbeat.
            return (replay or [Heartbeat(sent)]), sent
    snapshot = cache.get(environment)
    return [Opened(snapshot, INITIAL if since is None else RESUME_GAP)], snapshot.config_version


async def _missed(cache: SnapshotCache, environment: str, since: int) -> list[Change] | None:
    """The logged changes after `since`, or None when the log cannot cover them all."""
    current = cache.get(environment).config_version
    if since > current:
        current = await _caught_up(cache, environment, since)
    missed: list[Change] = []
    cursor = since
    while cursor < current:
        batch = await cache.store.list_changes(environment, since_version=cursor, limit=REPLAY_PAGE)
        if not batch or batch[0].config_version != cursor + 1:
            return None
        missed.extend(batch)
        cursor = batch[-1].config_version
    return missed


async def _caught_up(cache: SnapshotCache, environment: str, since: int) -> int:
    """Wait for this replica to reach `since` (a version written through another replica that our
    change feed has not brought yet); returns the version it then serves.

    Only a version ahead of the store itself is the client's mistake (INVALID_ARGUMENT); a replica
    still behind after about two polls is UNAVAILABLE (retry, here or elsewhere)."""
    stored = await cache.store.stored_config_version(environment)
    if since > stored:
        raise InvalidArgument(
            f"since_version {since} is ahead of the environment's config_version {stored} in the"
            " store; resume from a config_version this environment has sent you",
            "since_version",
        )
    if not await cache.wait_for_version(environment, since, 2 * cache.poll_interval):
        await cache.catch_up(environment)  # the feed may be slow under load: one direct look
        current = cache.get(environment).config_version
        if current < since:
            raise Unavailable(
                f"this replica serves config_version {current}, behind since_version {since}; retry shortly"
            )
    return cache.get(environment).config_version
