"""Fixtures for the store tests: one `store` fixture parametrised over every backend, and for the
DynamoDB store's own tests `dstore` (a started store on a fresh table) and `raw` (a plain boto3
client on the same table: the operator's view, for items written by hand).

The DynamoDB emulator fixtures live in `tests/support/dynamo.py` so other test folders can reuse
them; it is registered here as a plugin unless a higher conftest already did (`pytest_plugins`
there), so the emulator is started at most once per session either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest

from tests.support.dynamo import REGION
from vexil.store.base import FlagStore
from vexil.store.memory import MemoryStore

DYNAMO_PLUGIN = "tests.support.dynamo"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(DYNAMO_PLUGIN):
        config.pluginmanager.import_plugin(DYNAMO_PLUGIN)


@pytest.fixture(params=["memory", "dynamodb"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[FlagStore]:
    """A started, empty store of each backend; closed after the test."""
    if request.param == "memory":
        backend: FlagStore = MemoryStore()
    else:
        from vexil.store.dynamodb import DynamoStore

        endpoint_url, table = request.getfixturevalue("dynamo_table")
        backend = DynamoStore(table, endpoint_url=endpoint_url)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def raw(dynamo_table: tuple[str, str]) -> Iterator[Any]:
    """A plain boto3 client on the emulator (the operator's view of the table)."""
    endpoint_url, _ = dynamo_table
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
    yield client
    client.close()


@pytest.fixture
async def dstore(dynamo_table: tuple[str, str]) -> AsyncIterator[Any]:
    """A started DynamoDB store on a fresh table; closed after the test."""
    from vexil.store.dynamodb import DynamoStore

    endpoint_url, table = dynamo_table
    store = DynamoStore(table, endpoint_url=endpoint_url)
    await store.start()
    yield store
    await store.close()
