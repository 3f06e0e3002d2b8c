"""`vexil.background.cancel_and_wait`: how every component stops the loop it started."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

from vexil.background import BackgroundTask, cancel_and_wait
from vexil.cache import SnapshotCache
from vexil.hub import Hub
from vexil.store.memory import MemoryStore


async def test_returns_only_after_the_task_has_ended_and_cleaned_up() -> None:
    cleaned = asyncio.Event()

    async def loop() -> None:
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # a cleanup step that itself yields
            cleaned.set()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # let it start
    await cancel_and_wait(task)
    assert task.cancelled()
    assert cleaned.is_set()


async def test_none_and_a_finished_task_are_nothing_to_stop() -> None:
    await cancel_and_wait(None)

    async def done() -> int:
        return 1

    task = asyncio.create_task(done())
    await task
    await cancel_and_wait(task)
    assert task.result() == 1


def _stop_directly(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    return lambda: cancel_and_wait(task)


def _stop_the_cache_feed(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    cache = SnapshotCache(MemoryStore(), Hub(), ["local"])
    cache._tasks.append(task)  # the feed task of an environment, slow to wind down
    return cache.stop_feed


@pytest.mark.parametrize("how", [_stop_directly, _stop_the_cache_feed], ids=["cancel_and_wait", "cache_feed"])
async def test_a_stop_that_is_itself_cancelled_stays_cancelled(
    how: Callable[[asyncio.Task[None]], Callable[[], Awaitable[None]]],
) -> None:
    """Shutting down must not swallow the cancellation of whoever is stopping (a shutdown that
    was itself cancelled, e.g. by a second Ctrl-C or a timeout): it is raised to the caller."""
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(3600)  # slow to wind down: the stopper is still waiting for it

    task = asyncio.create_task(stubborn())
    await started.wait()
    stop = how(task)
    after_stop: list[str] = []

    async def stopper() -> None:
        await stop()
        after_stop.append("ran on after being cancelled")

    stopping = asyncio.create_task(stopper())
    for _ in range(1000):  # until the stopper has asked the task to stop, and waits for it
        if task.cancelling():
            break
        await asyncio.sleep(0.001)
    assert task.cancelling() and not stopping.done()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, timeout=10)
    assert after_stop == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_background_task_runs_once_however_often_started_and_stops() -> None:
    runs: list[str] = []
    stopped = asyncio.Event()

    async def loop() -> None:
        runs.append(asyncio.current_task().get_name())  # type: ignore[union-attr]
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()

    background = BackgroundTask("vexil-test-loop")
    assert not background.running
    background.start(loop)
    background.start(loop)  # a second start while it runs changes nothing
    assert background.running
    for _ in range(100):  # let the loop start (bounded)
        if runs:
            break
        await asyncio.sleep(0.001)
    await background.stop()
    assert stopped.is_set() and not background.running
    assert runs == ["vexil-test-loop"]
    await background.stop()  # stopping again is harmless

    background.start(loop)  # and it can be started again after a stop
    for _ in range(100):
        if len(runs) == 2:
            break
        await asyncio.sleep(0.001)
    await background.stop()
    assert runs == ["vexil-test-loop", "vexil-test-loop"]


async def test_a_periodic_task_waits_then_steps_survives_a_failed_step_and_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps: list[float] = []
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def step() -> None:
        steps.append(loop.time() - started)
        if len(steps) == 2:
            raise RuntimeError("the store is down")

    background = BackgroundTask("vexil-test-every")
    background.every(0.05, step)
    assert background.running
    for _ in range(500):  # until a step after the failed one has run (bounded: 5 s)
        if len(steps) >= 3:
            break
        await asyncio.sleep(0.01)
    await background.stop()
    assert len(steps) >= 3, "a failed step does not end the loop"
    assert steps[0] >= 0.049, "the first step waits one interval"
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(steps)), steps
    assert "vexil-test-every" in caplog.text and "the store is down" in caplog.text
    ran = len(steps)
    await asyncio.sleep(0.15)
    assert len(steps) == ran, "no step runs after stop"
