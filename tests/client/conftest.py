"""Fixtures for the client SDK tests: real servers on a loop thread of their own, admin stubs,
and client settings that make reconnects fast enough for a test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import Admin, LoopThread, Replica
from vexil.store.memory import MemoryStore


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
