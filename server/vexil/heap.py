"""Large snapshots are kept out of the cyclic garbage collector's full passes.

A compiled snapshot is some 26 Python objects a flag (36 before a type's answers were built on
first use), every one tracked by CPython's cyclic collector, and a full (oldest-generation)
collection walks them all while it holds the event loop: 740 ms for a snapshot of 50,000 flags,
150 ms for 10,000 (measured at 36), long enough for a serial client to see no answer at all.
Snapshots hold no reference cycles (a dropped one is freed by reference counting alone:
`tests/unit/test_heap.py` checks it), so the collector has nothing to find in them.

So while a large environment's snapshot is built, at every pause of the build (every 5 ms) and at
its end, the young generations are collected and everything alive is moved to the collector's
permanent generation (`gc.freeze`): the snapshot being replaced, then the new one as it grows.
Full passes then walk only what was made since the last freeze, and a replaced snapshot is still
freed the moment nothing reads it any more.  Freezing only at the end was not enough: the build
itself makes a million objects, and the full passes it set off walked the old and the half-built
snapshot (1.5 s pauses for 50,000 flags).  Freezing keeps for good whatever cyclic garbage sits
uncollected in the oldest generation at that moment; collecting the young generations first, and
freezing every few milliseconds, leaves little there (calls make cyclic garbage, about five
objects each, which the young collections free).

Letting go of a replaced snapshot of 50,000 flags at once frees its million objects in one step
(about 0.25 s): `release` drops its compiled flags a few hundred at a time between turns of the
loop instead.
"""

from __future__ import annotations

import asyncio
import gc

LARGE_ENVIRONMENT = 2_000
"""Flags from which a full collection walking the snapshot would hold the loop for tens of
milliseconds (about 15 us a flag): smaller environments are left to the collector as they are."""


def large(flags: int) -> bool:
    return flags >= LARGE_ENVIRONMENT


def settle() -> None:
    """Take everything alive now (the snapshots above all) out of full passes."""
    gc.collect(1)
    gc.freeze()


def settle_startup() -> None:
    """Once a server has loaded and is about to say SERVING: everything made while starting (the
    libraries' modules, the server's own objects, the first snapshots) is left out of full passes.

    A started server holds some 67,000 tracked objects even with 100 flags (gRPC, aiohttp,
    aioboto3, prometheus-client, protobuf), and a full collection walked them in 30-38 ms on a
    2-core machine, holding every call that arrived meanwhile (one came in a 6 s run of
    saturating Evaluate load: a 30 ms stall in the tail of any latency measured across it).
    The no-op floor server's full pass takes 2.5 ms (24,000 objects).  After this a full pass
    walks only what was made since, well under a millisecond.  The full collection first frees
    startup's cyclic garbage, which freezing would otherwise keep for good."""
    gc.collect()
    gc.freeze()


RELEASE_CHUNK = 500
"""Compiled flags freed per turn of the loop (about 18,000 objects, a few milliseconds)."""


async def release(entries: list[object]) -> None:
    """Free a replaced snapshot's compiled flags (`entries`, the only other reference once the
    snapshot itself is dropped) a chunk at a time, giving the loop back between chunks."""
    while entries:
        del entries[-RELEASE_CHUNK:]
        await asyncio.sleep(0)
