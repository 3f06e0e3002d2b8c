"""Fixtures for the flagd / OpenFeature compatibility tests.

The OpenFeature API is a process-wide singleton and its providers block (they wait for readiness
and make synchronous gRPC and HTTP calls), while the vexil server under test runs on the test's
event loop: every provider call therefore goes through `asyncio.to_thread`, and the API is shut
down after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from openfeature import api

from tests.support.flagset import install
from tests.support.openfeature import OpenFeature
from tests.support.servers import Connected, connected, running_app, server_settings


@pytest.fixture
async def flagd_server() -> AsyncIterator[Connected]:
    """An in-process vexil server (memory store) holding the sample flag set; a fast heartbeat."""
    async with running_app(server_settings(heartbeat_seconds=0.5)) as app, connected(app) as conn:
        await install(conn)
        yield conn


@pytest.fixture
async def openfeature() -> AsyncIterator[OpenFeature]:
    yield OpenFeature()
    await asyncio.to_thread(api.shutdown)
    api.clear_providers()
    api.clear_hooks()
