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

Reads.  Point reads and queries (`get_flag`, history, change log) are strongly consistent.
Listing (`load_environment`, `list_flags`) is a consistent, paginated Scan for the flag items of
the environment.  Why not GSI1: a GSI cannot be read consistently, so a snapshot could claim a
`configVersion` whose flags it has not seen yet and a replica would then miss that flag until its
next reload; and flag items provisioned by hand as in the operations guide carry no GSI
attributes at all, so no index finds them.  The price is that a listing reads the whole table
(history and change log included); at the expected scale (thousands of flags, reloads every
60-600 s per replica) that is cheap, and the GSI attributes are still written so a cheaper path
(or the guide's own owner query) can use them.  `load_environment` reads the environment item
first, so the flags it returns are at least as new as its `config_version`; replaying the change
log from there is idempotent when applied by flag version.

Errors.  Connection, timeout and throttling problems are `Unavailable`; nothing from botocore
escapes (see `dynamodb_client`).  A flag whose item would exceed `records.MAX_ITEM_BYTES` is
refused with `InvalidArgument` before any request is sent.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from vexil.errors import InvalidArgument, Unavailable
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision, Page
from vexil.store import dynamodb_items as items
from vexil.store import paging, records
from vexil.store.base import FlagStore
from vexil.store.dynamodb_client import (
    DEFAULT_REGION,
    ClientSettings,
    Credentials,
    OwnsClient,
    error_code,
    translated_errors,
)
from vexil.store.writes import BuildEnvironmentWrite, BuildFlagWrite

Item = items.Item

DEFAULT_WRITE_ATTEMPTS = 20
DEFAULT_WRITE_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 0.005
BACKOFF_CAP_S = 0.25

CONDITION_FAILED = "ConditionalCheckFailed"
RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
"""Cancellation reasons that decide nothing: the same transaction, re-read, may well commit."""
NO_REASON = ("", "None")

_transaction_sent: ContextVar[list[bool] | None] = ContextVar("_transaction_sent", default=None)
"""Set per write by `_with_retries`: whether a transaction was sent (its outcome may be unknown)."""


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


class DynamoStore(OwnsClient, FlagStore):
    """A `FlagStore` on one DynamoDB table; see the module docstring for the design."""

    name = "dynamodb"

    def __init__(
        self,
        table: str,
        *,
        region: str = DEFAULT_REGION,
        endpoint_url: str | None = None,
        credentials: Credentials | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 2.0,
        read_timeout: float | None = None,
        max_pool_connections: int = 10,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        """`max_attempts` is the SDK's own retry budget per request (connection errors,
        throttling); `write_attempts` bounds vexil's re-read-and-retry loop for lost races;
        `write_timeout` bounds a whole write, retries included.  `read_timeout` (per request)
        defaults to `write_timeout`: a request that waits longer cannot be part of a write that
        succeeds, and a shorter wait lets the change feed notice a stalled table sooner."""
        if not table:
            raise ValueError("table name is required")
        if write_attempts < 1:
            raise ValueError("write_attempts must be at least 1")
        if write_timeout <= 0:
            raise ValueError("write_timeout must be greater than 0")
        self.table = table
        self._settings = ClientSettings(
            region=region,
            endpoint_url=endpoint_url,
            credentials=credentials,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=write_timeout if read_timeout is None else read_timeout,
            max_pool_connections=max_pool_connections,
        )
        self._write_attempts = write_attempts
        self._write_timeout = write_timeout

    def instrument(self, on_open: Callable[[Any], None]) -> None:
        """Have `on_open` called with the client when `start` opens it (metrics hooks)."""
        self._settings = replace(self._settings, on_open=on_open)

    def __repr__(self) -> str:
        return (
            f"DynamoStore(table={self.table!r}, region={self._settings.region!r},"
            f" endpoint_url={self._settings.endpoint_url!r})"
        )

    # --- lifecycle ------------------------------------------------------------------------

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
        records.check_environment_name(env)
        environment = items.environment_from_item(env, await self._get(items.env_item_key(env)))
        return environment, await self._scan_flags(env)

    async def get_flag(self, env: str, key: str) -> Flag | None:
        if not self._valid_identity(env, key):
            return None
        item = await self._get(items.flag_item_key(env, key))
        return items.flag_from_item(item) if item else None

    async def list_flags(
        self,
        env: str,
        *,
        owner: str = "",
        tag: str = "",
        page_size: int = 100,
        page_token: str = "",
    ) -> Page[Flag]:
        """Key order and filters are applied after the consistent scan (see module docstring);
        the token is the last key returned, so each page is independent of the previous scan."""
        records.check_environment_name(env)
        size = paging.clamp_page_size(page_size, 100)
        after = paging.decode_token(page_token, "k")
        selected = [
            flag
            for flag in await self._scan_flags(env)
            if flag.key > after and (not owner or flag.owner == owner) and (not tag or tag in flag.tags)
        ]
        if len(selected) > size:
            token = paging.encode_token("k", selected[size - 1].key)
            return Page(items=selected[:size], next_token=token)
        return Page(items=selected)

    async def get_history(
        self, env: str, key: str, *, page_size: int = 50, page_token: str = ""
    ) -> Page[FlagRevision]:
        size = paging.clamp_page_size(page_size, 50)
        before = paging.decode_version_token(page_token)
        if not self._valid_identity(env, key):
            return Page(items=[])
        pk = items.flag_pk(env, key)
        upper = items.version_sk(before - 1) if before is not None else items.VERSION_PREFIX + "~"
        found = await self._query(
            want=size + 1,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": items.s(pk),
                ":lo": items.s(items.version_sk(0)),
                ":hi": items.s(upper),
            },
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
        if limit <= 0 or not self._valid_identity(env):
            return []
        found = await self._query(
            want=limit,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": items.s(items.env_pk(env)),
                ":lo": items.s(items.change_sk(max(since_version, 0) + 1)),
                ":hi": items.s(items.LAST_CHANGE_SK),
            },
            ScanIndexForward=True,
        )
        return [items.change_from_item(env, i) for i in found]

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
        records.check_environment_name(env)
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
                action = {"Put": {"Item": items.flag_to_item(write.flag), **condition}}
            cancelled = await self._transact(env, config_version, action, write, imported)
            if cancelled is None:
                return write.change
            if cancelled.failed(1):  # the flag item changed: answer as if the winner had been read
                build(replace(read, current=self._flag_of(cancelled.image(1))))
            raise _Retry  # configVersion moved, history slot taken, or a write allowed on top

        return await self._with_retries(doing, attempt)

    async def _write_environment(self, env: str, build: BuildEnvironmentWrite, doing: str) -> Change:
        """Put the environment item conditional on the config version read, with its change-log
        entry; after a lost race the builder is given the winner's version, as in `_write_flag`."""

        async def attempt() -> Change:
            config_version = items.config_version_of(await self._get(items.env_item_key(env)))
            write = build(config_version, records.now())
            put_env = {
                "Put": {
                    "Item": items.environment_to_item(write.environment),
                    **self._config_condition(config_version),
                }
            }
            put_change = {
                "Put": {
                    "Item": items.change_to_item(write.change),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            cancelled = await self._send([put_env, put_change], doing)
            if cancelled is None:
                return write.change
            if cancelled.failed(0):  # another write moved the environment: check against it
                build(items.config_version_of(cancelled.image(0)), write.environment.updated_at)
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
        that history instead of colliding with it."""
        if item and not items.is_hand_written(item):
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
                "UpdateExpression": "SET #c = :next, itemType = :type",
                **self._config_condition(config_version),
            }
        }
        bump["Update"].setdefault("ExpressionAttributeValues", {}).update(
            {":next": items.n(config_version + 1), ":type": items.s(items.TYPE_ENVIRONMENT)}
        )
        history_item = items.revision_to_item(write.revision)
        change_item = items.change_to_item(write.change)
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
        with translated_errors(doing):
            try:
                await client.transact_write_items(TransactItems=actions)
                return None
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
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
                        return await attempt()
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
        outcome = (
            "the transaction was sent and may still have been applied: read the flag before retrying"
            if sent
            else "nothing was written"
        )
        return Unavailable(
            f"DynamoDB did not answer within the write deadline ({self._write_timeout:g} s) while"
            f" {doing}; {outcome}"
        )

    # --- read helpers ---------------------------------------------------------------------

    async def _call(self, doing: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One read, SDK retries included, within the write deadline: the reads a write makes
        first (the current flag, the environment) must not outlast the write they serve."""
        client = self._require_client()
        try:
            async with asyncio.timeout(self._write_timeout):
                with translated_errors(doing):
                    return await getattr(client, operation)(TableName=self.table, **kwargs)
        except TimeoutError:
            raise Unavailable(
                f"DynamoDB did not answer within the write deadline ({self._write_timeout:g} s) while"
                f" {doing} (unreachable or stalled); nothing was written"
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

    async def _last_history_version(self, env: str, key: str) -> int:
        newest = await self._query(
            want=1,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :v)",
            ExpressionAttributeValues={
                ":pk": items.s(items.flag_pk(env, key)),
                ":v": items.s(items.VERSION_PREFIX),
            },
            ScanIndexForward=False,
            ProjectionExpression="SK",
        )
        return int(newest[0]["SK"]["S"].removeprefix(items.VERSION_PREFIX)) if newest else 0

    async def _scan_flags(self, env: str) -> list[Flag]:
        """Every flag item of `env`, by consistent Scan, in key order (module docstring: why)."""
        flags: list[Flag] = []
        start: Item | None = None
        while True:
            args: dict[str, Any] = {
                "ConsistentRead": True,
                "FilterExpression": "SK = :meta AND begins_with(PK, :prefix)",
                "ExpressionAttributeValues": {
                    ":meta": items.s(items.METADATA),
                    ":prefix": items.s(items.flag_prefix(env)),
                },
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = await self._call(f"listing flags of {env}", "scan", **args)
            flags.extend(items.flag_from_item(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        flags.sort(key=lambda f: f.key)
        return flags

    @staticmethod
    def _valid_identity(env: str, key: str = "") -> bool:
        """Reads of impossible names answer "nothing there" instead of building bad keys."""
        try:
            records.check_environment_name(env)
            if key:
                records.check_flag_key(key)
        except InvalidArgument:
            return False
        return True
