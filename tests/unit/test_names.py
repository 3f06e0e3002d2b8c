"""Flag keys and environment names are checked one way, with one message, wherever they arrive.

The API, the stores and the console used to check the same patterns with different messages (one
echoed a hostile key whole).  The expected messages are written here, from the patterns the
README documents; the same bad name must get the same answer from the service and from a store.
"""

from __future__ import annotations

import pytest

from vexil.cache import SnapshotCache
from vexil.errors import InvalidArgument
from vexil.hub import Hub
from vexil.model import Environment, Flag, check_environment_name, check_flag_key
from vexil.service import FlagService
from vexil.store.memory import MemoryStore

KEY_RULE = "is not a valid flag key: use 1-128 characters from A-Z a-z 0-9 _ . -"
ENV_RULE = (
    "is not a valid environment name: use 1-63 characters from a-z 0-9 _ -, starting with a letter or digit"
)

GOOD_KEYS = ["a", "new-checkout", "Team.Feature_2", "x" * 128]
BAD_KEYS = [
    ("has space", f"'has space' {KEY_RULE}"),
    ("a#b", f"'a#b' {KEY_RULE}"),
    ("x" * 129, f"{'x' * 129!r} {KEY_RULE}"),
    ("y" * 300, f"{('y' * 300)!r:.137}... {KEY_RULE}"),  # quoted in 140 characters
    ("ключ", f"'ключ' {KEY_RULE}"),
    ("", "a flag key is required"),
]
GOOD_ENVS = ["local", "prod", "eu-west_1", "0", "a" * 63]
BAD_ENVS = [
    ("Prod", f"'Prod' {ENV_RULE}"),
    ("-dev", f"'-dev' {ENV_RULE}"),
    ("", f"'' {ENV_RULE}"),
    ("a" * 64, f"{'a' * 64!r} {ENV_RULE}"),
    ("b" * 100, f"{('b' * 100)!r:.67}... {ENV_RULE}"),  # quoted in 70 characters
    ("dev#1", f"'dev#1' {ENV_RULE}"),
]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_valid_flag_keys_pass(key: str) -> None:
    assert check_flag_key(key) == key


@pytest.mark.parametrize(("key", "message"), BAD_KEYS)
def test_invalid_flag_keys_say_what_to_use(key: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_flag_key(key, "flag.key")
    assert caught.value.description == message
    assert caught.value.field == "flag.key"


@pytest.mark.parametrize("name", GOOD_ENVS)
def test_valid_environment_names_pass(name: str) -> None:
    assert check_environment_name(name) == name


@pytest.mark.parametrize(("name", "message"), BAD_ENVS)
def test_invalid_environment_names_say_what_to_use(name: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_environment_name(name)
    assert caught.value.description == message
    assert caught.value.field == "environment"


def test_a_megabyte_key_is_not_echoed() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_flag_key("#" * 1_000_000)
    assert len(caught.value.description) < 300


@pytest.mark.parametrize(("key", "message"), BAD_KEYS[:4])
async def test_the_service_and_the_store_answer_a_bad_key_alike(key: str, message: str) -> None:
    store = MemoryStore()
    cache = SnapshotCache(store, Hub(), ["local"], poll_interval=3600)
    await cache.load()
    service = FlagService(store, cache, "local")
    flag = Flag(key=key, environment="local", variants={"on": True}, default_variant="on")
    with pytest.raises(InvalidArgument) as by_service:
        await service.create_flag(flag, actor="t")
    with pytest.raises(InvalidArgument) as by_store:
        await store.create_flag(flag, actor="t")
    assert by_service.value.description == by_store.value.description == message


async def test_the_store_refuses_a_bad_environment_with_the_same_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await MemoryStore().update_environment(
            Environment(name="Prod"), expected_config_version=None, actor="t"
        )
    assert caught.value.description == f"'Prod' {ENV_RULE}"
