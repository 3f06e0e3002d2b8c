"""Bulk evaluations give the event loop back: no request holds it for long.

One evaluation is bounded by the engine's budget (about 10 ms at most), but a bulk answer
(EvaluateAll, flagd's ResolveAll, OFREP's bulk evaluation) evaluates up to every flag of an
environment, and a set of expensive rules could then hold the loop for seconds while health
checks and every other call wait.  A `Pacer` is ticked once per flag and yields to the loop
whenever a slice of work (default 5 ms) has passed since it last did; the snapshot being
evaluated is immutable, so yielding in the middle never mixes two versions of the flags.
"""

from __future__ import annotations

import asyncio
import time

SLICE_SECONDS = 0.005


class Pacer:
    """`await pacer.tick()` between items of a bulk evaluation (see the module docstring)."""

    __slots__ = ("deadline", "slice")

    def __init__(self, slice_seconds: float = SLICE_SECONDS) -> None:
        self.slice = slice_seconds
        self.deadline = time.perf_counter() + slice_seconds
        """When `time.perf_counter()` passes it, a slice of work has passed: `await pause()`.  A
        hot loop compares the clock with it itself, where awaiting `tick` (a coroutine per item)
        would cost more than the check."""

    async def tick(self) -> None:
        if time.perf_counter() >= self.deadline:
            await self.pause()

    async def pause(self) -> None:
        """Give the loop back, and start the next slice."""
        await asyncio.sleep(0)
        self.deadline = time.perf_counter() + self.slice
