"""Closing an `AsyncClient` always stops its Watch task, whatever the stream is doing.

`close()` cancels the task and awaits it; a task that swallows its cancellation keeps
reconnecting forever and `close()` never returns.  Python 3.11's `asyncio.wait_for` did exactly
that when the awaited read completed in the same loop iteration as the cancellation: it returned
the read's result instead of raising.  The fake stream below completes a read and cancels the
task in one synchronous step, which is that race made deterministic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from vexil.client import AsyncClient
from vexil.client.watcher import AsyncWatcher


class OneRead:
    """A Watch call whose read is a future the test completes by hand."""

    def __init__(self, reads: list[asyncio.Future[Any]]) -> None:
        self._reads = reads

    def read(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.append(future)
        return future

    def cancel(self) -> bool:
        return True


class StreamChannel:
    """Just enough of `grpc.aio.Channel` for the generated stub: every Watch is a `OneRead`."""

    def __init__(self) -> None:
        self.reads: list[asyncio.Future[Any]] = []

    def __getattr__(self, name: str) -> Any:
        def multicallable(*_args: Any, **_kwargs: Any) -> Any:
            return lambda *_a, **_k: OneRead(self.reads)

        return multicallable


async def test_a_read_that_completes_as_the_task_is_cancelled_does_not_keep_it_running() -> None:
    client = AsyncClient(target="127.0.0.1:1")
    channel = StreamChannel()
    watcher = AsyncWatcher(client._session, channel, ())  # type: ignore[arg-type]
    watcher.start()
    for _ in range(100):  # bounded: the task reaches its first read within a few iterations
        if channel.reads:
            break
        await asyncio.sleep(0)
    assert channel.reads, "the watcher never read from its stream"
    task = watcher._task
    assert task is not None
    channel.reads[0].set_result(grpc.aio.EOF)  # the server ends the stream ...
    task.cancel()  # ... in the same iteration as the client closes
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the cancelled Watch task kept running (its cancellation was swallowed)"
    assert task.cancelled()
    await asyncio.wait_for(watcher.close(), 2)
