"""Long work gives the event loop back, a slice at a time and one slice at a time.

One evaluation is bounded by the engine's budget (about 10 ms at most), but a bulk answer
(EvaluateAll, flagd's ResolveAll, OFREP's bulk evaluation) evaluates up to every flag of an
environment, and a set of expensive rules could then hold the loop for seconds while health
checks and every other call wait.  A `Pacer` is ticked once per item and yields to the loop
whenever a slice of work (default 5 ms) has passed since it last did; the snapshot being
evaluated is immutable, so yielding in the middle never mixes two versions of the flags.

Yielding alone bounds one piece of work, not several: with three long bulk requests in flight,
each turn of the loop ran a slice of each, and every other call waited 15 ms a turn (a health
check that takes a few turns, 100 ms and more).  So the pieces share one gate per event loop:
a pacer holds it while it works and hands it to the next piece queued at every pause, and the
pieces take turns in the order they asked.  A short piece (an EvaluateAll of 100 flags takes
well under a slice) takes the free gate and lets it go before anything else runs, so it never
waits unless long work is queued, and then it waits its turn like the rest.

A pacer is used as `async with Pacer() as pacer:`, which takes the gate and always lets it go.
Work inside one must not wait for other paced work (the gate is not reentrant): get what it
needs first (`answers.bulk_answer` builds its plan before pacing).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from types import TracebackType

SLICE_SECONDS = 0.005


class _Gate:
    """Whose turn it is to run a slice of long work, handed over in the order asked.

    Handing over keeps the gate taken until the next piece runs, so no piece that paused in the
    same turn of the loop can slip in before it (with a plain lock, three pieces that paused in
    one turn each found it free in the next, and ran three slices in it)."""

    __slots__ = ("queue", "taken")

    def __init__(self) -> None:
        self.taken = False
        self.queue: deque[asyncio.Future[None]] = deque()

    @property
    def wanted(self) -> bool:
        return any(not waiter.done() for waiter in self.queue)

    async def take(self) -> None:
        if not self.taken and not self.wanted:
            self.taken = True
            return
        waiter = asyncio.get_running_loop().create_future()
        self.queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.hand_over()  # handed to this piece as it was cancelled: pass it on
            else:
                self.queue.remove(waiter)
            raise

    def hand_over(self) -> None:
        """To the next piece still waiting (it stays taken), or free when none is."""
        while self.queue:
            waiter = self.queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.taken = False


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gate] = weakref.WeakKeyDictionary()


def _gate() -> _Gate:
    """The running loop's gate (its waiters are futures of that loop)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = _Gate()
    return gate


class Pacer:
    """`await pacer.tick()` between items of long work, inside `async with Pacer() as pacer:`
    (see the module docstring)."""

    __slots__ = ("_gate", "_held", "deadline", "slice")

    def __init__(self, slice_seconds: float = SLICE_SECONDS) -> None:
        self.slice = slice_seconds
        self.deadline = time.perf_counter() + slice_seconds
        """When `time.perf_counter()` passes it, a slice of work has passed: `await pause()`.  A
        hot loop compares the clock with it itself, where awaiting `tick` (a coroutine per item)
        would cost more than the check."""
        self._gate = _gate()
        self._held = False

    async def __aenter__(self) -> Pacer:
        gate = self._gate
        if gate.taken or gate.queue:
            await gate.take()
        else:
            gate.taken = True  # `take` without a coroutine: most bulk work is short
        self._held = True
        self.deadline = time.perf_counter() + self.slice
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._held:
            self._held = False
            self._gate.hand_over()

    async def tick(self) -> None:
        if time.perf_counter() >= self.deadline:
            await self.pause()

    async def pause(self) -> None:
        """Give the loop back (and the gate, to the next piece of work queued for it); the next
        slice starts when it is this piece's turn again."""
        gate = self._gate
        if gate.wanted:
            self._held = False
            gate.hand_over()
            await gate.take()
            self._held = True
        else:
            await asyncio.sleep(0)
        self.deadline = time.perf_counter() + self.slice
