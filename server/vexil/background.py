"""A component's background task: the one way every start/stop pair in the server runs and ends
the loop it owns (the insecure notice, the stream sweeper, the key-usage flusher, ...).

`stop()` must not return while the loop can still run a step (a last warning after shutdown, a
sweep against a closed store), so the task is cancelled and then awaited to its end.  The
task's own cancellation is expected and not an error; a cancellation of the caller itself (a
shutdown that is cancelled, or timed out, while it waits) is passed on, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (nothing when None) and return once it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        caller = asyncio.current_task()
        if caller is not None and caller.cancelling():
            raise


class BackgroundTask:
    """One named task a component starts once and stops on shutdown (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Started and not stopped (the loop itself may have ended on an error)."""
        return self._task is not None

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `loop()` as the task; nothing when it already runs (`start` twice is harmless)."""
        if self._task is None:
            self._task = asyncio.create_task(loop(), name=self.name)

    def every(self, seconds: float, step: Callable[[], Awaitable[object]]) -> None:
        """`start` a loop that waits `seconds`, runs `step`, and again, until `stop`: the loop of
        every periodic component (a sweep, a flush, a reload, a repeated warning).  A step that
        raises is logged and the next one runs on time: one failed pass (a store that is down)
        must not end the component's work for the rest of the process."""
        self.start(partial(_every, self.name, seconds, step))

    async def stop(self) -> None:
        """Cancel the task and return once it has ended; nothing when it does not run."""
        task, self._task = self._task, None
        await cancel_and_wait(task)


async def _every(name: str, seconds: float, step: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except Exception:
            log.exception("%s: a periodic step failed; the next one runs in %g s", name, seconds)
