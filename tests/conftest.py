"""Shared fixtures: a real vexil server on a loopback port and stubs connected to it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.servers import Connected, connected, running_app, server_settings
from vexil.connections import raise_open_file_limit

pytest_plugins = ["tests.support.dynamo", "tests.support.no_skips", "tests.support.browser"]

# In-process servers share this process's open-file limit, and take their connection limits
# from it, as `vexil serve` does after raising it: raise it the same way.
raise_open_file_limit()


@pytest.fixture(autouse=True, scope="module")
def settled_heap() -> Iterator[None]:
    """What the run made before each module, out of the garbage collector's full passes.

    In-process servers share this process's heap with the whole run: by its end some 700,000
    tracked objects, and a full pass over them held the loop the servers run on for 0.2-0.4 s
    (150 passes of over 20 ms, 29 s in all, in one run), where a served process freezes what
    starting made (`vexil.heap.settle_startup`).  Freezing after a collection keeps only what is
    alive; it is never unfrozen, so the next module's collection walks only what this one made."""
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture(params=["memory", "dynamodb"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Connected]:
    """An in-process vexil server with aio stubs on a loopback channel, once per store: the
    embedded memory store and DynamoDB (on the emulator) must behave the same."""
    if request.param == "memory":
        settings = server_settings()
    else:
        endpoint, table = request.getfixturevalue("dynamo_table")
        settings = server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
    async with running_app(settings) as app, connected(app) as conn:
        yield conn
