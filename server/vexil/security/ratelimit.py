"""Token-bucket rate limits: per client on the admin API; per client and server-wide for evaluation.

Admin API: each client (its key id or JWT subject; its peer address when anonymous) has a bucket
holding up to a minute's allowance (default 100 calls), refilled continuously, configurable per
role.  Evaluation: each client has a quota (calls per second, a second's worth of burst;
configurable per role and per key), and one bucket for the whole server (default 10,000 calls
per second) protects the process as a whole.  The client's quota is checked first, so calls it
refuses never take from the server-wide bucket: one client hammering cannot make another's calls
fail while the server-wide cap has room.  A stream counts once, when it opens.  Over a limit, a
call is refused with `ResourceExhausted` carrying how many seconds until one call would be
allowed again (sent as `retry-after`); over a client's evaluation quota, with `QuotaExceeded`,
which names the client's role for the metrics (never the client: bounded label values).

Cost and memory.  Everything runs on the event loop with no `await` inside, so no lock is needed;
every check is O(1): float arithmetic on one bucket, plus for per-client buckets an ordered-dict
lookup and move-to-end.  Buckets are kept in least-recently-used order, so the idle ones (a full
refill period without a call: such a bucket is full again, exactly like a new one) sit at the
front; each check evicts up to two of them, and a hard cap (`max_clients`) evicts the least
recently used bucket beyond it.  Memory therefore stays bounded with millions of distinct
clients, and forgetting an idle bucket never changes an answer.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from vexil.errors import ResourceExhausted
from vexil.reasons import Reason
from vexil.security.policy import ADMIN_API, EVALUATION_API

DEFAULT_MAX_CLIENTS = 100_000
ANONYMOUS = "anonymous"
"""The role name evaluation quotas use for callers without credentials."""


class QuotaExceeded(ResourceExhausted, reason=Reason.EVALUATION_QUOTA_EXCEEDED):
    """A client went over its evaluation quota; `role` is its role (`anonymous` without one)."""

    def __init__(self, message: str, retry_after: float, role: str) -> None:
        super().__init__(message, retry_after=retry_after)
        self.role = role


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 if granted, else the seconds until one will be there."""
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class BucketTable:
    """Per-client buckets of one size, with idle eviction and a hard cap (module docstring)."""

    def __init__(self, capacity: float, rate: float, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.capacity = capacity
        self.rate = rate
        self.idle_after = capacity / rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now: float) -> float:
        buckets = self._buckets
        bucket = buckets.get(client)
        if bucket is None:
            bucket = buckets[client] = TokenBucket(self.capacity, self.rate, now)
            if len(buckets) > self.max_clients:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(client)
        wait = bucket.take(now)
        for _ in range(2):
            oldest = next(iter(buckets.values()))
            if oldest is bucket or now - oldest.stamp < self.idle_after:
                break
            buckets.popitem(last=False)
        return wait


def per_minute(limit: float, max_clients: int) -> BucketTable:
    return BucketTable(capacity=limit, rate=limit / 60.0, max_clients=max_clients)


def per_second(limit: float, max_clients: int) -> BucketTable | None:
    """A second's worth of burst; None for 0 (unlimited)."""
    return BucketTable(capacity=limit, rate=limit, max_clients=max_clients) if limit > 0 else None


class RateLimiter:
    """The limits of one server (see the module docstring); a limit of 0 means none."""

    def __init__(
        self,
        *,
        admin_per_minute: float = 100.0,
        admin_per_minute_by_role: Mapping[str, float] | None = None,
        evaluation_per_second: float = 10000.0,
        evaluation_per_client: float = 0.0,
        evaluation_per_client_by_role: Mapping[str, float] | None = None,
        evaluation_per_client_by_key: Mapping[str, float] | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Limits of 0 mean none.  `evaluation_per_client*` are calls per second per client:
        the default, by role (`anonymous` for callers without credentials) and by API key id."""
        self.clock = clock
        self._admin_default = per_minute(admin_per_minute, max_clients) if admin_per_minute > 0 else None
        self._admin_roles: dict[str, BucketTable | None] = {
            role: per_minute(limit, max_clients) if limit > 0 else None
            for role, limit in (admin_per_minute_by_role or {}).items()
        }
        self._evaluation = (
            TokenBucket(evaluation_per_second, evaluation_per_second, clock())
            if evaluation_per_second > 0
            else None
        )
        self._quota_default = per_second(evaluation_per_client, max_clients)
        by_role = evaluation_per_client_by_role or {}
        self._quota_roles = {role: per_second(limit, max_clients) for role, limit in by_role.items()}
        # One small table per configured key: its client is always `key:<id>`.
        by_key = evaluation_per_client_by_key or {}
        self._quota_keys = {f"key:{key_id}": per_second(limit, 1) for key_id, limit in by_key.items()}

    def _quota(self, client: str, role: str) -> BucketTable | None:
        if client in self._quota_keys:
            return self._quota_keys[client]
        return self._quota_roles.get(role or ANONYMOUS, self._quota_default)

    def limits(self, api: str) -> bool:
        """Whether calls of `api` are limited at all (an interceptor can skip the others)."""
        if api == EVALUATION_API:
            return (
                self._evaluation is not None
                or self._quota_default is not None
                or any(self._quota_roles.values())
                or any(self._quota_keys.values())
            )
        if api == ADMIN_API:
            return self._admin_default is not None or any(self._admin_roles.values())
        return False

    def check(self, api: str, client: str, role: str) -> None:
        """Count one call; `ResourceExhausted` (with `retry_after`) when over the limit."""
        if api == EVALUATION_API:
            now = self.clock()
            quota = self._quota(client, role)
            if quota is not None:
                wait = quota.take(client, now)
                if wait:
                    seconds = max(1, math.ceil(wait))
                    raise QuotaExceeded(
                        f"evaluation quota of this client ({quota.capacity:g} calls per second) exceeded; "
                        f"retry in {seconds} s",
                        seconds,
                        role or ANONYMOUS,
                    )
            if self._evaluation is None:
                return
            wait = self._evaluation.take(now)
            what = "the server's evaluation capacity is exhausted"
        elif api == ADMIN_API:
            table = self._admin_roles.get(role, self._admin_default)
            if table is None:
                return
            wait = table.take(client, self.clock())
            what = f"admin API rate limit ({table.capacity:g} calls per minute) exceeded"
        else:
            return
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ResourceExhausted(f"{what}; retry in {seconds} s", retry_after=seconds)
