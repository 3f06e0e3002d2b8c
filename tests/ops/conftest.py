"""Fixtures for the operations tests: promtool (installed by `.ci/run`) and the DynamoDB emulator."""

from __future__ import annotations

import shutil

import pytest

DYNAMO_PLUGIN = "tests.support.dynamo"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(DYNAMO_PLUGIN):
        config.pluginmanager.import_plugin(DYNAMO_PLUGIN)


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed: `apt-get install prometheus` (Debian) provides it; .ci/run"
            " installs it, so CI runs these tests"
        )
    return found
