"""`vexil.pacing`: long work yields a slice at a time, and several long pieces take turns, so a turn
of the event loop runs at most one slice of them however many are in flight (counted in turns of
the loop, not timed)."""

from __future__ import annotations

import asyncio

import pytest

from vexil.pacing import Pacer


class Turns:
    """Counts the slices of long work run between two turns of the loop, as seen by a task that
    does nothing but come back every turn (what a health check's callbacks see)."""

    def __init__(self) -> None:
        self.since_last_turn = 0
        self.most = 0
        self.turns = 0

    def slice_ran(self) -> None:
        self.since_last_turn += 1
        self.most = max(self.most, self.since_last_turn)

    async def watch(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.turns += 1
            self.since_last_turn = 0
            await asyncio.sleep(0)


async def long_work(turns: Turns, items: int, log: list[str], name: str) -> None:
    async with Pacer(slice_seconds=0.0) as pacer:  # every item is a slice of its own
        for _ in range(items):
            await pacer.tick()
            turns.slice_ran()
            log.append(name)


@pytest.mark.parametrize("pieces", [1, 3, 8])
async def test_one_slice_of_long_work_per_turn_of_the_loop(pieces: int) -> None:
    turns, log, done = Turns(), [], asyncio.Event()
    watcher = asyncio.create_task(turns.watch(done))
    await asyncio.gather(*(long_work(turns, 20, log, f"w{i}") for i in range(pieces)))
    done.set()
    await watcher
    assert turns.most == 1, f"{turns.most} slices ran in one turn of the loop"
    assert turns.turns >= 20 * pieces
    # They take turns: while all run, any `pieces` slices in a row are one of each.
    middle = log[pieces : pieces * 15]
    for at in range(len(middle) - pieces + 1):
        assert sorted(middle[at : at + pieces]) == sorted(f"w{i}" for i in range(pieces)), middle


async def test_short_work_takes_the_free_gate_without_yielding() -> None:
    """An EvaluateAll of 100 flags takes well under a slice: it must not wait a turn."""
    ran: list[str] = []

    async def short() -> None:
        async with Pacer() as pacer:
            await pacer.tick()
            ran.append("short")

    task = asyncio.ensure_future(short())
    ran.append("before")
    await asyncio.sleep(0)  # one turn: the task runs start to end within it
    assert ran == ["before", "short"] and task.done()


async def test_the_gate_is_let_go_on_errors_and_cancellation() -> None:
    turns, log = Turns(), []

    async def failing() -> None:
        async with Pacer(slice_seconds=0.0) as pacer:
            await pacer.tick()
            raise RuntimeError("rule failed")

    with pytest.raises(RuntimeError):
        await failing()
    blocker = asyncio.create_task(long_work(turns, 50, log, "long"))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(long_work(turns, 5, log, "cancelled"))
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while it waits for the gate, or between slices
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await blocker
    await asyncio.wait_for(long_work(turns, 3, log, "after"), 5)  # the gate is free again
    assert log[-3:] == ["after"] * 3


async def test_a_piece_cancelled_as_the_gate_is_handed_to_it_passes_it_on() -> None:
    from vexil.pacing import _gate

    gate = _gate()
    await gate.take()
    handed = asyncio.create_task(gate.take())
    next_in_line = asyncio.create_task(gate.take())
    await asyncio.sleep(0)  # both wait
    gate.hand_over()  # to `handed`, which is cancelled before it runs
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(next_in_line, 5)  # passed on, not lost
    gate.hand_over()
    assert not gate.taken and not gate.wanted
