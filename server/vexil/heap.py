"""Large snapshots are kept out of the cyclic garbage collector's full passes.

A compiled snapshot is about 37 Python objects a flag, every one tracked by CPython's cyclic
collector, and a full (oldest-generation) collection walks them all while it holds the event
loop: 740 ms for a snapshot of 50,000 flags, 150 ms for 10,000, long enough for a serial client
to see no answer at all.  Snapshots hold no reference cycles (a dropped one is freed by
reference counting alone: `tests/unit/test_heap.py` checks it), so the collector has nothing to
find in them.  After a full reload of a large environment the process's objects are therefore
moved to the collector's permanent generation (`gc.freeze`): later full passes walk only what
was made since, and a replaced snapshot is still freed the moment nothing reads it any more.

Freezing keeps whatever cyclic garbage is uncollected at that moment for good, so a full
collection runs first, before the build, while the previous large snapshot is already frozen and
the pass is short; only garbage made during the build itself could be kept, and the young
generations are collected just before the freeze.
"""

from __future__ import annotations

import gc

LARGE_ENVIRONMENT = 2_000
"""Flags from which a full collection walking the snapshot would hold the loop for tens of
milliseconds (about 15 us a flag): smaller environments are left to the collector as they are."""


def large(flags: int) -> bool:
    return flags >= LARGE_ENVIRONMENT


def before_build() -> None:
    """Collect now, while what is tracked is small, so nothing uncollected is frozen later."""
    gc.collect()


def settle() -> None:
    """Take everything alive now, the newly installed snapshot above all, out of full passes."""
    gc.collect(1)
    gc.freeze()
