"""`DynamoStore`: the `FlagStore` on DynamoDB (aioboto3), one table per deployment.

Writes.  What a write stores is built by `records` (through `writes.StoreWrites`, as for the
memory store); here it becomes ONE `TransactWriteItems`:
  1. the environment item's `configVersion` goes from the value read to that value + 1
     (conditional on the value read: this serialises writes per environment and makes the
     change log gap-free);
  2. the flag item is put or deleted, conditional on it being as read (absent, or at the version
     read); when it is not, the builder is given the failed condition's ALL_OLD image, so a
     stale caller gets the same `AlreadyExists`, `NotFound` or `Conflict` as if it had been read;
  3. the history item `VERSION#<n>` and 4. the change-log item `CHANGE#<configVersion>` are put,
     both conditional on not existing (they are never overwritten).
A transaction that lost only the race for `configVersion` (another flag was written meanwhile)
is re-read and retried with jittered exponential backoff, up to `write_attempts` times; after
that the write fails with `Unavailable` and nothing was written.  A write with
`expected_version=None` that loses the race on the flag itself is retried the same way (it asks
to apply on top of whatever is current).  Only a `ConditionalCheckFailed` cancellation reason is
a lost race; `TransactionConflict` (another transaction was in flight on one of our items,
routine when writers share a flag) and throttling reasons mean nothing was decided, so they are
retried the same way, never answered as "already exists" or "does not exist".

Deadline.  A write, retries included, gets `write_timeout` seconds (default 5).  When they run
out the write fails with `Unavailable` at once instead of waiting for the SDK's own retries and
read timeouts (a stalled table used to hold a writer for about 44 s); the message says whether
the transaction had been sent, since only then may it have been applied.

Reads.  Point reads and queries (`get_flag`, history, change log) are strongly consistent, and
no read grows with history: a listing or reload reads flag items only.
- `load_environment` reads the environment item, then the flag items by Query on GSI1
  (`GSI1PK = ENV#<env>`): one page, and when there is more, the next few parts of about a page
  each at once beside the rest (`LOAD_PARTS`, bounds from `key_ranges`), so a cold start costs
  one read per flag however long the history.
  A GSI is eventually consistent: a flag written just before the environment item was read may
  not be in the index yet.  So the load then reads the newest change-log entries (back to
  `index_settle` seconds before now, default `GSI_SETTLE_S`, consistently) and lays
  them over the indexed flags by flag version: the snapshot never claims a `configVersion` whose
  flags it has not seen.  Every write also records on the environment item when it was made
  (`changedAt`); when that is older than the settling time the log is not read at all, so a
  quiet environment reloads with one GetItem and its flags' Query.
- Flag items written by hand as in the operations guide carry no GSI attributes, so no index finds
  them.  A *discovery* pass, at most once per `discovery_interval` (the cache profile's TTL in the
  server: the full-reload interval, as before) and first at the load after a start's (the change
  feed's first full reload, one poll after the start), scans for flag items of the environment without
  `GSI1PK` (parallel scan segments) and serves them; it also adds the GSI attributes to each one
  (conditional on it still being unindexed and as scanned, whatever it holds, a `version`
  included; nothing else of the item changes), so
  every later query, on every replica, finds it.  Only that pass reads the whole table.
- Only an item with PK `FLAG#<env>#<key>`, SK `METADATA` and a key the admin API accepts is a
  flag of the environment: whatever else an index holds or the scan meets is skipped (one
  warning per item and process), so a load serves and a listing lists the same flags.  Both read
  the index's sort keys from `FLAG#` to `FLAG$` (`key_ranges.past_prefix`), past every flag's.
- `list_flags` pages with the index's own cursor (a query that starts after the last key of the
  previous page: the GSI1 or, for an owner, the GSI2 key of that flag), so a page costs about its
  size whatever the table holds.  The hand-written flags the last discovery pass served but
  could not index (its index write failed) are read again by key and listed in their place, so
  a listing (and an export) holds every flag a load serves.
`load_environment` reads the environment item first, so the flags it returns are at least as new
as its `config_version`; replaying the change log from there is idempotent by flag version.

Retention.  Change-log entries carry `expiresAt` (written + `change_retention` seconds, the table's
TTL attribute) and a write that lands `configVersion` N deletes, in the background, entries at or
below N - `max_changes`.  `list_changes` never returns an entry past its `expiresAt` (TTL deletion
is lazy) and stops at the first gap, so a reader resuming from before the retention sees a first
entry other than `since + 1` (the protocol's "changes since N are gone") and takes a snapshot.

Errors.  Connection, timeout and throttling problems are `Unavailable`; nothing from botocore
escapes (see `dynamodb_client`).  A flag whose item would exceed `records.MAX_ITEM_BYTES` is
refused with `InvalidArgument` before any request is sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard, Unpack

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from vexil.errors import FailedPrecondition, InvalidArgument, OutcomeUnknown, Unavailable
from vexil.model import (
    FLAG_KEY_PATTERN,
    Change,
    ChangeKind,
    Environment,
    Flag,
    FlagRevision,
    Page,
    check_environment_name,
    check_flag_key,
    shown,
)
from vexil.store import dynamodb_items as items
from vexil.store import key_ranges, paging, records
from vexil.store.base import FlagStore
from vexil.store.changelog import contiguous, overlay
from vexil.store.dynamodb_client import (
    ClientSettings,
    OwnsClient,
    Where,
    error_code,
    translated_errors,
)
from vexil.store.dynamodb_table import GSI1_NAME, GSI2_NAME
from vexil.store.replicas import ReplicaRecord, live
from vexil.store.writes import BuildEnvironmentWrite, BuildFlagWrite

Item = items.Item

log = logging.getLogger(__name__)

DEFAULT_WRITE_ATTEMPTS = 20
DEFAULT_WRITE_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 0.005
BACKOFF_CAP_S = 0.25
DEFAULT_CHANGE_RETENTION_S = 7 * 24 * 3600.0
DEFAULT_MAX_CHANGES = 10_000
LOAD_PARTS = 3
"""Parts of about a page each that a load reads at once beside the rest, after a page that did
not reach the end (`key_ranges`)."""
LOAD_PAGE_ITEMS: int | None = None
"""Items in a page of a load's open-ended reads (None: DynamoDB's 1 MB page); tests lower it to
reach the parts."""
SCAN_SEGMENTS = 4
UNINDEXED_READS = 25
"""Consistent reads a listing sends at once for hand-written flags discovery could not index."""
GSI_SETTLE_S = 10.0
"""How far back (seconds) a load lays change-log entries over the GSI's answer: well beyond the
index's usual propagation delay (under a second)."""
LOAD_READ_TIMEOUT_S = 30.0
"""Bound on one page read of a load (index query, discovery scan): generous because a load's
pages run at once and serve no waiting writer; the change feed's own reads keep the write
deadline, so a stalled table is still noticed within it."""
TRIM_BATCH = 25
"""Change-log entries one trim deletes (one DeleteItem each, at once); later writes continue the
work."""
MAX_REPLICAS = 1000
"""Most registry records one listing reads (a bound; fleets are far smaller)."""

CONDITION_FAILED = "ConditionalCheckFailed"
RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
"""Cancellation reasons that decide nothing: the same transaction, re-read, may well commit."""
NO_REASON = ("", "None")

_transaction_sent: ContextVar[list[bool] | None] = ContextVar("_transaction_sent", default=None)
"""Set per write by `_with_retries`: whether a transaction was sent (its outcome may be unknown)."""

_reached: ContextVar[list[bool] | None] = ContextVar("_reached", default=None)
"""Set per transaction by `_send`: whether one of the SDK's attempts got through to DynamoDB."""
_ATTEMPT_EVENT = "needs-retry.dynamodb.TransactWriteItems"


def _note_attempt(caught_exception: BaseException | None = None, **_: Any) -> None:
    """The SDK's hook after each attempt of a transaction: an answer, or any failure but one to
    connect, means the request reached DynamoDB, so its outcome is no longer "nothing written"."""
    reached = _reached.get()
    if reached is not None and not isinstance(caught_exception, EndpointConnectionError):
        reached.append(True)


class _Retry(Exception):
    """Internal: the transaction lost a race (or met a conflict) that re-reading and trying again
    resolves; the message says which, for the answer when the attempts run out."""


@dataclass(slots=True)
class _Cancelled:
    """Why a transaction was cancelled: one reason code (and ALL_OLD image) per action."""

    codes: list[str]
    images: list[Item | None] = field(default_factory=list)

    def failed(self, index: int) -> bool:
        """Whether action `index` failed its condition (a lost race, a definite answer)."""
        return index < len(self.codes) and self.codes[index] == CONDITION_FAILED

    def image(self, index: int) -> Item | None:
        return self.images[index] if index < len(self.images) else None


def _entries_ahead(
    env: str,
    config_version: int,
    cancelled: _Cancelled,
    *,
    change: int,
    history: int | None = None,
    flag_key: str = "",
) -> FailedPrecondition:
    """The answer when a write's own conditions held (the environment and flag items are as read)
    but the change-log entry or history revision it adds already exists.  No other writer can
    cause that (every writer moves `configVersion` with its entry, in one transaction), so it is
    not a lost race to retry: the table holds entries of a newer state under an older
    environment item (items restored or imported over it without removing the newer ones), and
    every retry would find the same.  Only the operator can resolve it."""
    if cancelled.failed(change):
        what = (
            f"the change log of environment '{env}' already holds entry {config_version + 1}"
            f" ({items.env_pk(env)}/{items.change_sk(config_version + 1)}) while the environment"
            f" item is at config_version {config_version}"
        )
    elif history is not None and cancelled.failed(history):
        what = f"flag '{flag_key}' of environment '{env}' already holds the history revision this write adds"
    else:
        what = f"DynamoDB refused a write to environment '{env}' whose items are as read"
    return FailedPrecondition(
        f"{what}: the table holds entries of a newer state than its environment or flag item"
        " (restored or imported over without removing them); nothing was written. Import the"
        " backup again with `vexil backup import FILE --into table --force` (which removes what the"
        " export does not hold), or delete the entries above it"
    )


class DynamoStore(OwnsClient, FlagStore):
    """A `FlagStore` on one DynamoDB table; see the module docstring for the design."""

    def __init__(
        self,
        table: str,
        *,
        max_attempts: int = 3,
        connect_timeout: float = 2.0,
        read_timeout: float | None = None,
        max_pool_connections: int = 10,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT_S,
        change_retention: float = DEFAULT_CHANGE_RETENTION_S,
        max_changes: int = DEFAULT_MAX_CHANGES,
        discovery_interval: float = 0.0,
        index_settle: float = GSI_SETTLE_S,
        **where: Unpack[Where],
    ) -> None:
        """`where` says where DynamoDB is (`Where`).  `max_attempts` is the SDK's own retry budget
        per request (connection errors, throttling); `write_attempts` bounds vexil's
        re-read-and-retry loop for lost races; `write_timeout` bounds a whole write, retries
        included, and every read but a load's page reads.  `read_timeout` (the SDK's per-request
        socket timeout) defaults to the longer of that and `LOAD_READ_TIMEOUT_S`; every request is
        bounded by its own deadline anyway.  `change_retention` (seconds) and `max_changes` bound
        the change log; `discovery_interval` is how often a load also looks for hand-written flag
        items (0: every load; otherwise the first load of an environment, a start, reads flags only
        and the next one looks); `index_settle` how far back (seconds) a load lays logged changes
        over GSI1's answer."""
        read_timeout = max(write_timeout, LOAD_READ_TIMEOUT_S) if read_timeout is None else read_timeout
        super().__init__(
            table,
            ClientSettings(
                **where,
                max_attempts=max_attempts,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max_pool_connections,
            ),
        )
        if write_attempts < 1:
            raise ValueError("write_attempts must be at least 1")
        if write_timeout <= 0:
            raise ValueError("write_timeout must be greater than 0")
        if change_retention <= 0 or max_changes < 1:
            raise ValueError("change_retention must be greater than 0 and max_changes at least 1")
        self._write_attempts = write_attempts
        self._write_timeout = write_timeout
        self.change_retention = change_retention
        self.max_changes = max_changes
        self._discovery_interval = discovery_interval
        self._index_settle = index_settle
        self._discovered: dict[str, float] = {}
        """When each environment's last discovery pass began (monotonic)."""
        self._unindexed: dict[str, dict[str, Flag]] = {}
        """Hand-written flags the last discovery pass found but could not index, per environment."""
        self._skipped: set[tuple[str, str]] = set()
        """PK/SK of the items a load or listing skipped and already warned about (once each: a
        reload every cache TTL would repeat the same warnings)."""
        self._trims: set[asyncio.Task[int]] = set()

    def instrument(self, on_open: Callable[[Any], None]) -> None:
        """Have `on_open` called with the client when `start` opens it (metrics hooks)."""
        self._settings = replace(self._settings, on_open=on_open)

    def __repr__(self) -> str:
        return (
            f"DynamoStore(table={self.table!r}, region={self._settings.region!r},"
            f" endpoint_url={self._settings.endpoint_url!r})"
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        # Each attempt of a transaction reports whether it got through (see `_note_attempt`).
        self._require_client().meta.events.register(_ATTEMPT_EVENT, _note_attempt, unique_id=_ATTEMPT_EVENT)

    async def close(self) -> None:
        """Cancel change-log trims still running (the next write's trim does their work)."""
        trims, self._trims = self._trims, set()
        for task in trims:
            task.cancel()
        await asyncio.gather(*trims, return_exceptions=True)
        await super().close()

    async def ping(self) -> None:
        """One cheap eventually-consistent GetItem: proves endpoint, credentials and table."""
        await self._call(
            "checking the table",
            "get_item",
            Key=items.key("VEXIL#PING", items.METADATA),
            ProjectionExpression="PK",
        )

    # --- reads ----------------------------------------------------------------------------

    async def load_environment(self, env: str) -> tuple[Environment, list[Flag]]:
        item = await self._environment_item(env)
        environment = items.environment_from_item(env, item)
        indexed, unindexed = await asyncio.gather(self._query_flags(env), self._discover(env))
        flags = {flag.key: flag for flag in unindexed}
        flags.update((flag.key, flag) for flag in indexed)
        await self._settle(env, environment.config_version, flags, items.changed_at_of(item))
        return environment, [flags[key] for key in sorted(flags)]

    async def read_environment(self, env: str) -> Environment:
        return items.environment_from_item(env, await self._environment_item(env))

    async def _environment_item(self, env: str) -> Item | None:
        """The environment's item as stored (None: none yet); a load also reads its `changedAt`."""
        check_environment_name(env)
        return await self._get(items.env_item_key(env))

    async def get_flag(self, env: str, key: str) -> Flag | None:
        if not self._valid_identity(env, key):
            return None
        item = await self._get(items.flag_item_key(env, key))
        return items.flag_from_item(item) if item else None

    async def _list_flags(
        self, env: str, *, owner: str, tag: str, size: int, after: str
    ) -> tuple[list[Flag], bool]:
        """A query on GSI1 (GSI2 for an owner) starting after the token's key: a page reads about
        `size` items whatever the table holds (a tag filter reads on until it has them)."""
        if after and not self._valid_identity(env, after):
            raise InvalidArgument("malformed page token", field="page_token")
        if owner:
            index, pk_name, pk, sk_name = GSI2_NAME, items.GSI2_PK, items.gsi2_pk(env, owner), items.GSI2_SK
        else:
            index, pk_name, pk, sk_name = GSI1_NAME, items.GSI1_PK, items.gsi1_pk(env), items.GSI1_SK
        prefix = items.gsi1_sk("")
        args: dict[str, Any] = {  # the load's range of sort keys: a listing lists what is served
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#pk": pk_name, "#sk": sk_name},
            "ExpressionAttributeValues": {
                ":pk": items.s(pk),
                ":lo": items.s(prefix),
                ":hi": items.s(key_ranges.past_prefix(prefix)),
            },
        }
        if tag:
            args["FilterExpression"] = "contains(tags, :tag)"
            args["ExpressionAttributeValues"][":tag"] = items.s(tag)
        found: list[Item] = []
        start = items.index_start_key(pk_name, pk, env, after) if after else None
        while len(found) <= size:  # one more than the page: is there a next page?
            page_args = {**args, "Limit": size + 1 - len(found)}
            if start:
                page_args["ExclusiveStartKey"] = start
            response = await self._call(f"listing flags of {env}", "query", **page_args)
            found.extend(self._flag_items(env, response.get("Items", []), index))
            start = response.get("LastEvaluatedKey")
            if not start:
                break

        def wanted(flag: Flag | None) -> TypeGuard[Flag]:
            return flag is not None and (not owner or flag.owner == owner) and (not tag or tag in flag.tags)

        flags = [items.flag_from_item(i) for i in found]
        listed: dict[str, Flag | None] = {flag.key: flag for flag in flags}
        bound = flags[size].key if len(flags) > size else None
        listed.update(await self._unindexed_after(env, after, bound, wanted, want=size + 1))
        kept = [flag for key in sorted(listed) if wanted(flag := listed[key])]
        return kept[:size], len(kept) > size

    async def _unindexed_after(
        self, env: str, after: str, bound: str | None, wanted: Callable[[Flag | None], bool], *, want: int
    ) -> dict[str, Flag | None]:
        """The flags the last discovery pass served but could not index (no index lists them),
        with keys after `after` (and up to `bound`, past which the page ends anyway), read again
        consistently: the pass's copy may be stale, the item rewritten or deleted by hand since.
        Keyed by flag key, None for an item that is gone or no flag any more (so a stale index
        entry of that key is not listed either).  Reads go in key order, `UNINDEXED_READS` at
        once, and stop once `want` of them are `wanted`: later keys cannot reach the page.
        Usually no item is unindexed and this reads nothing."""
        keys = sorted(k for k in self._unindexed.get(env, {}) if k > after and (bound is None or k <= bound))
        fresh: dict[str, Flag | None] = {}
        for start in range(0, len(keys), UNINDEXED_READS):
            part = keys[start : start + UNINDEXED_READS]
            read = await asyncio.gather(*(self._get(items.flag_item_key(env, key)) for key in part))
            for key, item in zip(part, read, strict=True):
                kept = self._flag_items(env, [item], "a listing") if item else []
                fresh[key] = items.flag_from_item(kept[0]) if kept else None
            if sum(map(wanted, fresh.values())) >= want:
                break
        return fresh

    async def get_history(
        self, env: str, key: str, *, page_size: int = 50, page_token: str = ""
    ) -> Page[FlagRevision]:
        size = paging.clamp_page_size(page_size, 50)
        before = paging.decode_version_token(page_token)
        if not self._valid_identity(env, key):
            return Page(items=[])
        upper = items.version_sk(before - 1) if before is not None else items.VERSION_PREFIX + "~"
        found = await self._query_partition(
            items.flag_pk(env, key),
            "SK BETWEEN :lo AND :hi",
            {":lo": items.version_sk(0), ":hi": upper},
            want=size + 1,
            ScanIndexForward=False,
        )
        revisions = [items.revision_from_item(i) for i in found[:size]]
        token = paging.encode_version_token(revisions[-1].flag.version) if len(found) > size else ""
        return Page(items=revisions, next_token=token)

    async def get_revision(self, env: str, key: str, version: int) -> FlagRevision | None:
        if not self._valid_identity(env, key) or version < 1:
            return None
        item = await self._get(items.key(items.flag_pk(env, key), items.version_sk(version)))
        return items.revision_from_item(item) if item else None

    async def list_changes(self, env: str, *, since_version: int = 0, limit: int = 1000) -> list[Change]:
        if limit <= 0 or not self._valid_identity(env) or since_version >= items.LAST_CHANGE_VERSION:
            return []  # a key past the last one would sort among the others as text
        found = await self._query_partition(
            items.env_pk(env),
            "SK BETWEEN :lo AND :hi",
            {":lo": items.change_sk(max(since_version, 0) + 1), ":hi": items.LAST_CHANGE_SK},
            want=limit,
        )
        now = time.time()
        return contiguous(
            items.change_from_item(env, i)
            for i in found
            if (expires := items.expires_at_of(i)) is None or expires > now
        )

    async def stored_config_version(self, env: str) -> int:
        if not self._valid_identity(env):
            return 0
        response = await self._call(
            f"reading the config_version of {env}",
            "get_item",
            Key=items.env_item_key(env),
            ConsistentRead=True,
            ProjectionExpression="configVersion",
        )
        return items.config_version_of(response.get("Item"))

    async def adoption(self, env: str) -> str:
        if not self._valid_identity(env):
            return ""
        item = await self._get(items.adoption_item_key(env))
        return item.get("adoptionId", {}).get("S", "") if item else ""

    # --- writes ---------------------------------------------------------------------------

    async def adopt(self, env: str, *, actor: str) -> str:
        """Its own item beside the environment item, so environment writes (which put that item
        whole) never erase it."""
        check_environment_name(env)
        adoption_id = uuid.uuid4().hex
        await self._call(
            f"recording the adoption of {env}",
            "put_item",
            Item={
                **items.adoption_item_key(env),
                "itemType": items.s(items.TYPE_ADOPTION),
                "adoptionId": items.s(adoption_id),
                "adoptedAt": items.s(records.format_timestamp(records.now())),
                "adoptedBy": items.s(actor),
            },
        )
        return adoption_id

    # --- the replica registry (see `vexil.store.replicas`) ---------------------------------

    async def put_replica(self, record: ReplicaRecord) -> None:
        """One PutItem of the replica's own record: no transaction, no `configVersion` bump, no
        change-log entry."""
        check_environment_name(record.environment)
        await self._call(
            f"recording replica {record.replica_id} for {record.environment}",
            "put_item",
            Item=items.replica_to_item(record),
        )

    async def list_replicas(self, env: str, *, expired_within: float = 0.0) -> list[ReplicaRecord]:
        """One consistent Query of the environment's `REPLICA#` range; expired records dropped
        (the table's TTL deletes them lazily, and not before they expired)."""
        if not self._valid_identity(env):
            return []
        found = await self._query_partition(
            items.env_pk(env),
            "begins_with(SK, :replica)",
            {":replica": items.REPLICA_PREFIX},
            want=MAX_REPLICAS,
        )
        return live((items.replica_from_item(env, i) for i in found), time.time(), expired_within)

    async def delete_replica(self, env: str, replica_id: str) -> None:
        """A replica stopping on purpose leaves the registry at once (not an expiry later)."""
        if self._valid_identity(env):
            await self._call(
                f"removing replica {replica_id} from {env}",
                "delete_item",
                Key=items.replica_item_key(env, replica_id),
            )

    async def _write_flag(self, env: str, key: str, build: BuildFlagWrite, doing: str) -> Change:
        """Read the environment and flag items (and the history, when the flag item cannot tell the
        newest version), build, and send one transaction conditional on everything read.  When
        the flag item changed meanwhile, the builder is given the winner's item: it answers as
        if that had been read (already exists, not found, conflict), or the write is retried."""

        async def attempt() -> Change:
            env_item, item = await asyncio.gather(
                self._get(items.env_item_key(env)), self._get(items.flag_item_key(env, key))
            )
            history_version, imported = await self._history_version(env, key, item)
            config_version = items.config_version_of(env_item)
            read = records.FlagRead(self._flag_of(item), history_version, config_version, records.now())
            write = build(read)
            condition = self._unchanged_condition(item)
            if write.deleted:
                action = {"Delete": {"Key": items.flag_item_key(env, key), **condition}}
            else:
                # What vexil does not know of the item (a hand-written TTL, say) is kept.
                stored = {**items.carried_over(item), **items.flag_to_item(write.flag)}
                action = {"Put": {"Item": stored, **condition}}
            cancelled = await self._transact(env, config_version, action, write, imported)
            if cancelled is None:
                # The item is indexed now (or gone): a load must not serve discovery's old copy.
                self._unindexed.get(env, {}).pop(key, None)
                return write.change
            if cancelled.failed(1):  # the flag item changed: answer as if the winner had been read
                build(replace(read, current=self._flag_of(cancelled.image(1))))
            elif not cancelled.failed(0):  # nothing moved, yet a slot it writes is taken
                raise _entries_ahead(env, config_version, cancelled, history=2, change=3, flag_key=key)
            raise _Retry  # configVersion moved, or a write allowed on top

        return await self._with_retries(doing, attempt)

    async def _write_environment(self, env: str, build: BuildEnvironmentWrite, doing: str) -> Change:
        """Put the environment item conditional on the config version read, with its change-log
        entry; after a lost race the builder is given the winner's version, as in `_write_flag`."""

        async def attempt() -> Change:
            item = await self._get(items.env_item_key(env))
            config_version = items.config_version_of(item)
            write = build(items.environment_from_item(env, item), records.now())
            put_env = {
                "Put": {
                    "Item": {
                        **items.environment_to_item(write.environment),
                        items.CHANGED_AT: items.s(records.format_timestamp(write.change.timestamp)),
                    },
                    **self._config_condition(config_version),
                }
            }
            put_change = {
                "Put": {
                    "Item": self._change_item(write.change),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            cancelled = await self._send([put_env, put_change], doing)
            if cancelled is None:
                return write.change
            if cancelled.failed(0):  # another write moved the environment: check against it
                build(items.environment_from_item(env, cancelled.image(0)), write.environment.updated_at)
            else:
                raise _entries_ahead(env, config_version, cancelled, change=1)
            raise _Retry

        return await self._with_retries(doing, attempt)

    # --- write helpers --------------------------------------------------------------------

    @staticmethod
    def _flag_of(item: Item | None) -> Flag | None:
        return items.flag_from_item(item) if item else None

    async def _history_version(
        self, env: str, key: str, item: Item | None
    ) -> tuple[int, FlagRevision | None]:
        """The newest version in the flag's history when the flag item cannot tell it, else 0;
        and for a hand-written item without history, the revision recording its provisioned
        definition (written once, as version 1, so history starts complete and rollback to it
        works).  No item: a create, which continues the history of a deleted flag.  A hand-written
        item can reuse a key whose earlier vexil history exists; its next version then continues
        that history instead of colliding with it.  An item whose `version` no flag has (set by
        hand: 0, -5, 1E+125) is read as hand-written (version 1), and so is treated here too."""
        if item and items.version_of(item) is not None:
            return 0, None
        last = await self._last_history_version(env, key)
        if not item or last:
            return last, None
        current = items.flag_from_item(item)
        imported = FlagRevision(
            flag=current,
            kind=ChangeKind.CREATE,
            actor="",
            timestamp=current.created_at,
            config_version=0,
            reason=items.IMPORT_REASON,
        )
        return 0, imported

    @staticmethod
    def _unchanged_condition(item: Item | None) -> dict[str, Any]:
        """Condition: the flag item is still the one read (still absent, same version, or still
        hand-written); a failure returns the item that is there now."""
        if not item:
            return {
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        common = {
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#v": "version"},
        }
        if items.is_hand_written(item):
            return {"ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(#v)", **common}
        return {
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeValues": {":v": item["version"]},
            **common,
        }

    @staticmethod
    def _config_condition(config_version: int) -> dict[str, Any]:
        common = {
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#c": "configVersion"},
        }
        if config_version == 0:
            return {"ConditionExpression": "attribute_not_exists(#c)", **common}
        return {
            "ConditionExpression": "#c = :c",
            "ExpressionAttributeValues": {":c": items.n(config_version)},
            **common,
        }

    async def _transact(
        self,
        env: str,
        config_version: int,
        flag_action: dict[str, Any],
        write: records.FlagWrite,
        imported: FlagRevision | None = None,
    ) -> _Cancelled | None:
        """Send a flag write: [configVersion bump, flag action, history, change, (import)]."""
        bump = {
            "Update": {
                "Key": items.env_item_key(env),
                "UpdateExpression": "SET #c = :next, itemType = :type, #at = :at",
                **self._config_condition(config_version),
            }
        }
        bump["Update"]["ExpressionAttributeNames"]["#at"] = items.CHANGED_AT
        bump["Update"].setdefault("ExpressionAttributeValues", {}).update(
            {
                ":next": items.n(config_version + 1),
                ":type": items.s(items.TYPE_ENVIRONMENT),
                ":at": items.s(records.format_timestamp(write.change.timestamp)),
            }
        )
        history_item = items.revision_to_item(write.revision)
        change_item = self._change_item(write.change)
        flag_item = flag_action.get("Put", {}).get("Item")
        for item in (flag_item, history_item, change_item):
            if item is not None:
                size = items.item_size(item)
                if size > records.MAX_ITEM_BYTES:
                    raise records.too_large(write.flag, size)
        actions = [
            bump,
            flag_action,
            {"Put": {"Item": history_item, "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"Item": change_item, "ConditionExpression": "attribute_not_exists(PK)"}},
        ]
        if imported is not None:
            actions.append(
                {
                    "Put": {
                        "Item": items.revision_to_item(imported),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        return await self._send(actions, f"writing flag {env}/{write.flag.key}")

    async def _send(self, actions: list[dict[str, Any]], doing: str) -> _Cancelled | None:
        """One TransactWriteItems; None when it committed, the reasons when it was cancelled."""
        for action in actions:
            (body,) = action.values()
            body["TableName"] = self.table
        client = self._require_client()
        sent = _transaction_sent.get()
        if sent is not None:
            sent.append(True)
        reached: list[bool] = []
        watching = _reached.set(reached)
        with translated_errors(doing):
            try:
                await client.transact_write_items(TransactItems=actions)
                return None
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
            except (BotoCoreError, OSError) as exc:
                if not reached:
                    raise  # no attempt got through to DynamoDB: nothing was sent
                # An attempt got through and its answer was lost (the connection dropped, no answer
                # in time; the SDK's later attempts may have failed otherwise): it may have been
                # applied.  Saying "nothing was written" would invite a blind second write.
                raise OutcomeUnknown(
                    f"DynamoDB's answer was lost while {doing} ({type(exc).__name__}); the transaction "
                    "was sent and may have been applied: read the flag before retrying"
                ) from exc
            finally:
                _reached.reset(watching)
        if sent:
            sent.clear()  # cancelled: definitely not applied
        codes = [str(r.get("Code") or "None") for r in reasons]
        if any(code == "ValidationError" for code in codes):
            messages = "; ".join(
                str(r.get("Message", "")) for r in reasons if r.get("Code") == "ValidationError"
            )
            raise InvalidArgument(f"DynamoDB refused the write: {messages}")
        if CONDITION_FAILED not in codes:
            undecided = sorted({c for c in codes if c not in NO_REASON})
            if all(c in RETRYABLE_REASONS for c in undecided):  # none given: nothing decided either
                raise _Retry(f"DynamoDB cancelled it ({', '.join(undecided) or 'no reason given'})")
            raise Unavailable(
                f"DynamoDB cancelled the transaction while {doing} ({', '.join(undecided) or 'no reason'});"
                " nothing was written"
            )
        return _Cancelled(codes=codes, images=[r.get("Item") for r in reasons])

    async def _with_retries(self, doing: str, attempt: Callable[[], Awaitable[Change]]) -> Change:
        """Run `attempt` until it commits or raises a definite answer, within the write deadline;
        `_Retry` means re-read and try again after a jittered backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._write_timeout
        sent: list[bool] = []
        token = _transaction_sent.set(sent)
        why = "other writes to the same environment kept winning"
        try:
            for n in range(self._write_attempts):
                try:
                    async with asyncio.timeout_at(deadline):
                        change = await attempt()
                    self._trim_later(change)
                    return change
                except _Retry as retry:
                    why = str(retry) or why
                    pause = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n))
                    if n + 1 == self._write_attempts or loop.time() + pause >= deadline:
                        break
                    await asyncio.sleep(pause)
                except TimeoutError:
                    raise self._deadline_passed(doing, bool(sent)) from None
        finally:
            _transaction_sent.reset(token)
        raise Unavailable(f"gave up {doing} after {n + 1} attempts: {why}; nothing was written, retry later")

    def _deadline_passed(self, doing: str, sent: bool) -> Unavailable:
        late = f"DynamoDB did not answer within the write deadline ({self._write_timeout:g} s) while {doing}"
        if sent:
            return OutcomeUnknown(
                f"{late}; the transaction was sent and may have been applied: read the flag before retrying"
            )
        return Unavailable(f"{late}; nothing was written")

    # --- read helpers ---------------------------------------------------------------------

    async def _call(
        self, doing: str, operation: str, timeout: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One read, SDK retries included, within the write deadline: the reads a write makes
        first (the current flag, the environment) must not outlast the write they serve.  A
        load's page reads pass `timeout=LOAD_READ_TIMEOUT_S` instead: they serve no write, and
        several run at once (a slow backend answers each of them more slowly)."""
        client = self._require_client()
        bound = self._write_timeout if timeout is None else max(timeout, self._write_timeout)
        try:
            async with asyncio.timeout(bound):
                with translated_errors(doing):
                    return await getattr(client, operation)(TableName=self.table, **kwargs)
        except TimeoutError:
            what = "the write deadline" if timeout is None else "the load's read deadline"
            raise Unavailable(
                f"DynamoDB did not answer within {what} ({bound:g} s) while {doing}"
                " (unreachable or stalled); nothing was written"
            ) from None

    async def _get(self, key: Item) -> Item | None:
        response = await self._call(
            f"reading {key['PK']['S']}/{key['SK']['S']}", "get_item", Key=key, ConsistentRead=True
        )
        return response.get("Item")

    async def _query(self, *, want: int, **kwargs: Any) -> list[Item]:
        """A consistent Query, following pages until `want` items or the end."""
        found: list[Item] = []
        start: Item | None = None
        while len(found) < want:
            page_args = {"ConsistentRead": True, "Limit": want - len(found), **kwargs}
            if start:
                page_args["ExclusiveStartKey"] = start
            response = await self._call("querying the table", "query", **page_args)
            found.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return found

    async def _query_partition(
        self, pk: str, condition: str, values: Mapping[str, str], *, want: int, **kwargs: Any
    ) -> list[Item]:
        """The items of partition `pk` whose sort key meets `condition` (on `SK`, its `:names`
        bound to the strings in `values`), in `SK` order, up to `want` (see `_query`)."""
        return await self._query(
            want=want,
            KeyConditionExpression=f"PK = :pk AND {condition}",
            ExpressionAttributeValues={
                ":pk": items.s(pk),
                **{name: items.s(v) for name, v in values.items()},
            },
            **kwargs,
        )

    async def _last_history_version(self, env: str, key: str) -> int:
        newest = await self._query_partition(
            items.flag_pk(env, key),
            "begins_with(SK, :v)",
            {":v": items.VERSION_PREFIX},
            want=1,
            ScanIndexForward=False,
            ProjectionExpression="SK",
        )
        return int(newest[0]["SK"]["S"].removeprefix(items.VERSION_PREFIX)) if newest else 0

    async def _query_flags(self, env: str) -> list[Flag]:
        """Every indexed flag item of `env` from GSI1 (`_query_open` over every flag key).  Two
        parts share a bound, so a key equal to it comes back twice: the load keeps one by key."""
        prefix = items.gsi1_sk("")
        found = await self._query_open(env, prefix, key_ranges.past_prefix(prefix), None)
        return [items.flag_from_item(item) for item in self._flag_items(env, found, GSI1_NAME)]

    def _flag_items(self, env: str, found: Iterable[Item], where: str) -> list[Item]:
        """The flag items of `env` among `found` (what `where`, an index or a scan, answered): PK
        `FLAG#<env>#<key>` and SK `METADATA`, with a key the admin API accepts (`check_flag_key`).
        An index holds whatever carries its attributes (an item of another environment, a history
        item, the environment item...), and an operator can write any key by hand; each such item
        is skipped, never served nor listed (nor indexed by discovery), with one warning naming
        it."""
        prefix = items.flag_prefix(env)
        kept: list[Item] = []
        for item in found:
            pk, sk = _text_of(item, "PK"), _text_of(item, "SK")
            if not pk.startswith(prefix) or sk != items.METADATA:
                self._skip(
                    pk,
                    sk,
                    f"found in {where} of {env} but not a flag item of {env}"
                    f" (PK {prefix}<key>, SK {items.METADATA}): skipped",
                )
                continue
            key = pk.removeprefix(prefix)
            if not self._valid_identity(env, key) or not key:
                self._skip(
                    pk,
                    sk,
                    f"is a flag item of {env} whose key {shown(key, 150)} is outside vexil's key rule"
                    f" ({FLAG_KEY_PATTERN.pattern}, as the admin API checks it): it cannot be"
                    " addressed, so it is neither served nor listed",
                )
                continue
            kept.append(item)
        return kept

    def _skip(self, pk: str, sk: str, why: str) -> None:
        """Warn about a skipped item once per process (a reload every cache TTL skips it again)."""
        if (pk, sk) not in self._skipped:
            self._skipped.add((pk, sk))
            log.warning("item PK=%s SK=%s %s", shown(pk, 150), shown(sk, 150), why)

    async def _query_open(self, env: str, lo: str, hi: str, start: Item | None) -> list[Item]:
        """Every GSI1 item of `env` from `lo` (after `start` if given) to `hi`, in key order: a
        page, and when there is more, the next `LOAD_PARTS` parts of about a page each
        (`key_ranges`) at once, beside the rest read the same way."""
        found: list[Item] = []
        while True:
            page, start = await self._query_page(env, lo, hi, start, LOAD_PAGE_ITEMS)
            found += page
            if not start:
                return found
            after = start[items.GSI1_SK]["S"]
            keys = [items.gsi1_flag_key(item) for item in key_ranges.sampled([*page, start])]
            bounds = [
                bound
                for bound in map(items.gsi1_sk, key_ranges.bounds_after(keys, LOAD_PARTS))
                if after < bound < hi  # an item the index sorts oddly must not make a range upside down
            ]
            if bounds:
                lows = [after, *bounds[:-1]]
                done = await asyncio.gather(
                    *(
                        self._query_range(env, low, high, start if low == after else None)
                        for low, high in zip(lows, bounds, strict=True)
                    ),
                    self._query_open(env, bounds[-1], hi, None),
                )
                return found + [item for part in done for item in part]
            lo = after  # the page tells no width: on one page at a time

    async def _query_range(self, env: str, lo: str, hi: str, start: Item | None) -> list[Item]:
        """Every GSI1 item of `env` with a `GSI1SK` from `lo` to `hi`, after `start` if given."""
        found: list[Item] = []
        while True:
            page, start = await self._query_page(env, lo, hi, start, None)
            found.extend(page)
            if not start:
                return found

    async def _query_page(
        self, env: str, lo: str, hi: str, start: Item | None, limit: int | None
    ) -> tuple[list[Item], Item | None]:
        args: dict[str, Any] = {
            "IndexName": GSI1_NAME,
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": items.s(items.gsi1_pk(env)),
                ":lo": items.s(lo),
                ":hi": items.s(hi),
            },
        }
        if start:
            args["ExclusiveStartKey"] = start
        if limit:
            args["Limit"] = limit
        response = await self._call(f"loading the flags of {env}", "query", LOAD_READ_TIMEOUT_S, **args)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    async def _discover(self, env: str) -> list[Flag]:
        """Hand-written flag items GSI1 cannot find, by a parallel consistent Scan, at most once
        per `discovery_interval`; each one found gets its GSI attributes (see module docstring).
        Between passes, the items a pass could not index are still served from its answer, so
        a load that only queries never drops a flag a discovery found."""
        now = time.monotonic()
        if self._discovery_interval > 0 and env not in self._discovered:
            # A start reads the index only, so its cost stays flat as history grows; the pass is
            # due at the next load, which the change feed makes one poll after the start.
            self._discovered[env] = now - self._discovery_interval
            return []
        last = self._discovered.get(env)
        if last is not None and now - last < self._discovery_interval:
            return list(self._unindexed.get(env, {}).values())
        self._discovered[env] = now
        segments = await asyncio.gather(*(self._scan_unindexed(env, n) for n in range(SCAN_SEGMENTS)))
        scanned = self._flag_items(env, [item for segment in segments for item in segment], "a scan")
        found = [items.flag_from_item(item) for item in scanned]
        indexed = await asyncio.gather(*(self._index(i, f) for i, f in zip(scanned, found, strict=True)))
        self._unindexed[env] = {flag.key: flag for flag, done in zip(found, indexed, strict=True) if not done}
        return found

    async def _scan_unindexed(self, env: str, segment: int) -> list[Item]:
        found: list[Item] = []
        start: Item | None = None
        while True:
            args: dict[str, Any] = {
                "ConsistentRead": True,
                "Segment": segment,
                "TotalSegments": SCAN_SEGMENTS,
                "FilterExpression": (
                    "SK = :meta AND begins_with(PK, :prefix) AND attribute_not_exists(GSI1PK)"
                ),
                "ExpressionAttributeValues": {
                    ":meta": items.s(items.METADATA),
                    ":prefix": items.s(items.flag_prefix(env)),
                },
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = await self._call(
                f"looking for hand-written flags of {env}", "scan", LOAD_READ_TIMEOUT_S, **args
            )
            found.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return found

    async def _index(self, item: Item, flag: Flag) -> bool:
        """Add the GSI attributes to a flag item the scan found unindexed (`item`, as scanned;
        `flag`, what it serves), and nothing else, whatever else the item holds (a `version`
        written by hand included): only while it is still unindexed and exactly as scanned, so a
        write meanwhile (through vexil, which indexes its items itself, or by hand, say a new
        owner) is never overwritten by this stale one.  False when that failed (logged, not
        raised: the item is served anyway and the next discovery retries)."""
        attributes = items.index_attributes(flag.environment, flag.key, flag.owner)
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        update = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
        stale = [name for name in (items.GSI2_PK, items.GSI2_SK) if name in item and name not in attributes]
        if stale:  # no owner: no GSI2 entry, whatever the item carried
            names.update({f"#r{i}": name for i, name in enumerate(stale)})
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(stale)))
        unindexed = [f"attribute_not_exists(#g{i})" for i in range(2)]
        names.update({"#g0": items.GSI1_PK, "#g1": items.GSI1_SK})
        unchanged: list[str] = []
        for i, (name, value) in enumerate(item.items()):
            if name not in ("PK", "SK"):
                names[f"#u{i}"] = name
                values[f":u{i}"] = value
                unchanged.append(f"#u{i} = :u{i}")
        try:
            await self._call(
                f"indexing the hand-written flag {flag.environment}/{flag.key}",
                "update_item",
                Key={"PK": item["PK"], "SK": item["SK"]},
                UpdateExpression=update,
                ConditionExpression=" AND ".join(["attribute_exists(PK)", *unindexed, *unchanged]),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (InvalidArgument, Unavailable) as exc:
            if "ConditionalCheckFailed" in exc.message:
                return True  # changed meanwhile: a write through vexil indexed it; else the next pass
            log.warning("could not index hand-written flag %s/%s: %s", flag.environment, flag.key, exc)
            return False
        return True

    async def _settle(
        self, env: str, config_version: int, flags: dict[str, Flag], changed_at: float | None
    ) -> None:
        """Lay the newest change-log entries up to `config_version` over `flags` (by flag version),
        back to `index_settle` s before now: what the eventually consistent index may not show yet.
        `changed_at`: when the environment item says its newest change was made (None: it does
        not say); older than that window, the index shows every change and the log is not read."""
        if config_version < 1:
            return
        horizon = time.time() - self._index_settle
        if changed_at is not None and changed_at < horizon:
            return
        recent: list[Change] = []
        start: Item | None = None
        while len(recent) < self.max_changes:
            args: dict[str, Any] = {
                "ConsistentRead": True,
                "Limit": 25 if recent else 1,  # usually the newest entry is old already: one read
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {
                    ":pk": items.s(items.env_pk(env)),
                    ":lo": items.s(items.change_sk(1)),
                    ":hi": items.s(items.change_sk(config_version)),
                },
                "ScanIndexForward": False,
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = await self._call(f"loading the flags of {env}", "query", LOAD_READ_TIMEOUT_S, **args)
            page = [items.change_from_item(env, i) for i in response.get("Items", [])]
            recent.extend(c for c in page if c.timestamp >= horizon)
            start = response.get("LastEvaluatedKey")
            if not start or any(c.timestamp < horizon for c in page):
                break
        for change in reversed(recent):
            overlay(flags, change)

    def _change_item(self, change: Change) -> Item:
        """The change-log item, with its TTL: written + `change_retention`."""
        return items.change_to_item(change, expires_at=int(change.timestamp + self.change_retention) + 1)

    def _trim_later(self, change: Change) -> None:
        """After a write lands `configVersion` N, delete entries at or below N - `max_changes` in the
        background (never delaying the write; a failure leaves them to the next write or the TTL)."""
        through = change.config_version - self.max_changes
        if through < 1:
            return
        task = asyncio.create_task(self.trim_changes(change.environment_name, through_version=through))
        self._trims.add(task)
        task.add_done_callback(self._trim_done)

    def _trim_done(self, task: asyncio.Task[int]) -> None:
        self._trims.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("trimming the change log failed (the next write retries): %s", exc)

    async def trim_changes(self, env: str, *, through_version: int) -> int:
        """Delete up to `TRIM_BATCH` change-log entries of `env` at or below `through_version`
        (oldest first); returns how many.  Readers of a trimmed range get a snapshot instead."""
        if through_version < 1 or not self._valid_identity(env):
            return 0
        old = await self._query_partition(
            items.env_pk(env),
            "SK BETWEEN :lo AND :hi",
            {":lo": items.change_sk(0), ":hi": items.change_sk(through_version)},
            want=TRIM_BATCH,
            ProjectionExpression="PK, SK",
        )
        # One DeleteItem per entry, not a BatchWriteItem: the server's IAM policy already grants
        # DeleteItem, and a batch would need one more action for the same deletes.
        results = await asyncio.gather(
            *(
                self._call(
                    f"trimming the change log of {env}",
                    "delete_item",
                    Key={"PK": item["PK"], "SK": item["SK"]},
                )
                for item in old
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result  # logged by `_trim_done`; the next write's trim retries
        return len(old)

    @staticmethod
    def _valid_identity(env: str, key: str = "") -> bool:
        """Reads of impossible names answer "nothing there" instead of building bad keys."""
        try:
            check_environment_name(env)
            if key:
                check_flag_key(key)
        except InvalidArgument:
            return False
        return True


def _text_of(item: Item, name: str) -> str:
    """A key attribute of an item as text ("" when absent or not a string)."""
    value = item.get(name, {}).get("S")
    return value if isinstance(value, str) else ""
