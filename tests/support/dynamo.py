"""pytest plugin: a DynamoDB emulator (moto_server) for tests that need one.

Use from any test folder with `pytest_plugins = ["tests.support.dynamo"]` in the top-level
conftest (or `config.pluginmanager.import_plugin` in a folder's `pytest_configure`).

- `dynamo_endpoint` (session): the emulator's URL.  `VEXIL_TEST_DYNAMODB_ENDPOINT` points at one
  already running; otherwise a single-threaded moto server (`moto_single.py`: moto's threaded
  `moto_server` loses concurrent transactions, so a lost write would not be vexil's) is started
  on a free loopback port (`tests.support.emulator`) and stopped at the end of the session.
  Both cost nothing until a test asks for them.  One given by the variable must be
  single-threaded too for the race tests.
- `dynamo_table` (function): wipes the emulator (`POST /moto-api/reset`, cheaper than a restart)
  and yields `(endpoint_url, table_name)` with a freshly created vexil table.

Dummy credentials are set in the environment so nothing ever reaches a real AWS account, and only
loopback addresses are used.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.emulator import Emulator, EmulatorError

ENDPOINT_ENV = "VEXIL_TEST_DYNAMODB_ENDPOINT"
REGION = "ap-northeast-1"
TABLE_NAME = "feature-flags-test"

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10.0) as response:
        response.read()


def _check_loopback(endpoint: str) -> None:
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise pytest.UsageError(f"{ENDPOINT_ENV} must be a loopback address, not {endpoint!r}")


@pytest.fixture(scope="session")
def dynamo_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running DynamoDB emulator for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_AWS_ENV.items():
            patch.setenv(name, value)
        given = os.environ.get(ENDPOINT_ENV, "").rstrip("/")
        if given:
            _check_loopback(given)
            yield given
            return
        emulator = Emulator(tmp_path_factory.mktemp("dynamo") / "moto.log")
        try:
            emulator.start()
        except EmulatorError as exc:
            pytest.fail(str(exc))
        try:
            yield emulator.endpoint
        finally:
            emulator.stop()


@pytest.fixture
def dynamo_table(dynamo_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A wiped emulator holding one freshly created vexil table: `(endpoint_url, table_name)`."""
    import boto3  # test-side only; the server uses aioboto3

    from vexil.store.dynamodb_table import table_spec

    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    _reset(dynamo_endpoint)
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint)
    try:
        client.create_table(**table_spec(TABLE_NAME))
        client.get_waiter("table_exists").wait(
            TableName=TABLE_NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    finally:
        client.close()
    yield dynamo_endpoint, TABLE_NAME


def guide_item(
    key: str, env: str, *, default_enabled: bool = True, owner: str = "dev-team", **attributes: Any
) -> dict[str, Any]:
    """The operations guide's `aws dynamodb put-item` example: flag `key` of `env` written by hand
    (DynamoDB's wire form), with `attributes` added or replaced."""
    return {
        "PK": {"S": f"FLAG#{env}#{key}"},
        "SK": {"S": "METADATA"},
        "flagKey": {"S": key},
        "description": {"S": "New development feature"},
        "defaultEnabled": {"BOOL": default_enabled},
        "owner": {"S": owner},
        "createdAt": {"S": "2025-08-16T09:30:00Z"},
        **attributes,
    }
