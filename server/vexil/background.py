"""Stopping a component's background task: the one way every start/stop pair in the server ends
the loop it started (the insecure notice, the stream sweeper, the key-usage flusher, ...).

`stop()` must not return while the loop can still run a step (a last warning after shutdown, a
sweep against a closed store), so the task is cancelled and then awaited to its end.  The
task's own cancellation is expected and not an error; a cancellation of the caller itself (a
shutdown that is cancelled, or timed out, while it waits) is passed on, never swallowed.
"""

from __future__ import annotations

import asyncio
from typing import Any


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
