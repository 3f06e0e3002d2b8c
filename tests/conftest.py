"""Shared fixtures: a real vexil server on a loopback port and stubs connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.servers import Connected, connected, running_app, server_settings

pytest_plugins = ["tests.support.dynamo"]


@pytest.fixture
async def server() -> AsyncIterator[Connected]:
    """An in-process vexil server (memory store) with aio stubs on a loopback channel."""
    async with running_app(server_settings()) as app, connected(app) as conn:
        yield conn
