"""Fixtures for the AWS deployment tests: the emulator (CloudFormation, DynamoDB, CloudWatch and
SNS are all served by the same moto)."""

from __future__ import annotations

import pytest

DYNAMO_PLUGIN = "tests.support.dynamo"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(DYNAMO_PLUGIN):
        config.pluginmanager.import_plugin(DYNAMO_PLUGIN)


@pytest.fixture
def aws_endpoint(dynamo_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator, wiped, with dummy credentials in the environment (never a real account)."""
    import urllib.request

    from tests.support.dynamo import DUMMY_AWS_ENV

    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    request = urllib.request.Request(f"{dynamo_endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10.0) as response:
        response.read()
    return dynamo_endpoint
