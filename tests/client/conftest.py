"""Fixtures for the client SDK tests: real servers on a loop thread of their own, admin stubs,
and client settings that make reconnects fast enough for a test suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.client.support import Admin, LoopThread, Replica
from vexil.client import RetryPolicy
from vexil.store.memory import MemoryStore

# Reconnect within tens of milliseconds, and allow loaded CI machines a generous deadline (the
# deadline itself is tested against a server that answers late on purpose).
FAST: dict[str, Any] = {
    "retry": RetryPolicy(initial_backoff=0.02, max_backoff=0.2),
    "deadline": 5.0,
}


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture
def server(loop_thread: LoopThread) -> Iterator[Replica]:
    """A fresh in-process vexil server (memory store) on its own loop."""
    replica = Replica(loop_thread, MemoryStore()).start()
    yield replica
    replica.stop()


@pytest.fixture
def admin(server: Replica) -> Iterator[Admin]:
    stub = Admin(server.target)
    yield stub
    stub.close()
