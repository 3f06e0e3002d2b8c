"""The `flags_mode` setting: required with a flags file on the shared DynamoDB store, `sync` by
default on the memory store (so `make run` keeps working), and validated like every setting."""

from __future__ import annotations

import pytest

from vexil import config


@pytest.fixture
def flags_file(tmp_path) -> str:
    path = tmp_path / "flags.yaml"
    path.write_text("flags: {}\n")
    return str(path)


def test_a_flags_file_on_dynamodb_needs_a_mode(flags_file: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.load(cli={"store": "dynamodb", "flags": flags_file}, environ={})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("flags (from --flags): ")
    assert "--flags-mode seed" in message and "--flags-mode sync" in message


@pytest.mark.parametrize("mode", ["seed", "sync"])
def test_either_mode_is_accepted_from_any_source(flags_file: str, mode: str) -> None:
    from_cli = config.load(cli={"store": "dynamodb", "flags": flags_file, "flags_mode": mode}, environ={})
    from_env = config.load(
        environ={"VEXIL_STORE": "dynamodb", "VEXIL_FLAGS": flags_file, "VEXIL_FLAGS_MODE": mode}
    )
    assert from_cli.file_mode == from_env.file_mode == mode


def test_memory_store_defaults_to_sync(flags_file: str) -> None:
    settings = config.load(cli={"flags": flags_file}, environ={})
    assert settings.flags_mode == "" and settings.file_mode == "sync"
    assert config.load(cli={"flags": flags_file, "flags_mode": "seed"}, environ={}).file_mode == "seed"


def test_an_unknown_mode_is_refused(flags_file: str) -> None:
    with pytest.raises(config.ConfigError, match=r"flags_mode \(from VEXIL_FLAGS_MODE\): 'merge' is unknown"):
        config.load(environ={"VEXIL_FLAGS": flags_file, "VEXIL_FLAGS_MODE": "merge"})
