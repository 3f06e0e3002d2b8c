"""Hub unit tests: bounded queues, resync on overflow, filters, close."""

from __future__ import annotations

import asyncio

import pytest

from vexil.errors import Unavailable
from vexil.hub import RESYNC, Hub
from vexil.model import Change, ChangeKind


def change(version: int, key: str = "k", env: str = "local") -> Change:
    return Change(env, version, ChangeKind.UPDATE, actor="t", timestamp=0.0, flag_key=key)


async def test_slow_subscriber_is_bounded_and_told_to_resync() -> None:
    hub = Hub(queue_size=4)
    slow = hub.subscribe("local")
    fast = hub.subscribe("local")
    received = []
    for v in range(1, 10_001):
        hub.publish(change(v))
        item = await fast.next(0)
        received.append(item.config_version)
    assert received == list(range(1, 10_001))
    assert slow.pending <= 4
    assert await slow.next(0) is RESYNC
    hub.publish(change(10_001))
    assert (await slow.next(0)).config_version == 10_001


async def test_filters_environments_and_close() -> None:
    hub = Hub()
    sub = hub.subscribe("local", ["a"])
    hub.publish(change(1, "b"))
    hub.publish(change(2, "a", env="prod"))
    env_change = Change("local", 3, ChangeKind.ENVIRONMENT, actor="t", timestamp=0.0)
    hub.publish(env_change)
    hub.publish(change(4, "a"))
    assert (await sub.next(0)).config_version == 3
    assert (await sub.next(0)).config_version == 4
    assert await sub.next(0.01) is None and not sub.closed_reason

    waiter = asyncio.create_task(sub.next(5))
    await asyncio.sleep(0)
    hub.close_all("bye")
    # Shutdown ends streams with UNAVAILABLE, so that clients reconnect (to another replica).
    with pytest.raises(Unavailable, match="bye"):
        await waiter
    assert sub.closed_reason == "bye"
    hub.unsubscribe(sub)
    assert hub.count() == 0

    # A close without an error (a revoked credential) leaves the status to the security layer.
    other = hub.subscribe("local")
    other.close("key revoked")
    assert await other.next(5) is None and other.closed_reason == "key revoked"
