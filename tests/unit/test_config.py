"""Configuration: precedence (file < environment < flags), profiles and validation messages."""

from __future__ import annotations

import pytest

from vexil import config


def test_precedence_file_then_environment_then_flags(tmp_path) -> None:
    path = tmp_path / "vexil.toml"
    path.write_text('port = 6000\nenv = "dev"\nstore = "memory"\npoll-interval = 3\n')
    settings = config.load(environ={"VEXIL_PORT": "7000"}, config_file=str(path))
    assert (settings.port, settings.env, settings.poll_interval) == (7000, "dev", 3.0)
    settings = config.load(cli={"port": 8000}, environ={"VEXIL_PORT": "7000", "VEXIL_CONFIG": str(path)})
    assert settings.port == 8000 and settings.env == "dev"


def test_profiles_from_the_operations_guide() -> None:
    assert config.load(environ={}).profile == config.CacheProfile(60, 100)
    assert config.load(environ={"VEXIL_ENV": "dev"}).profile == config.CacheProfile(300, 1000)
    prod = config.load(environ={"VEXIL_ENV": "prod"})
    assert prod.profile == config.CacheProfile(600, 10000)
    assert prod.table == "feature-flags-prod"
    tuned = config.load(environ={"VEXIL_ENV": "prod", "VEXIL_CACHE_TTL": "30"})
    assert tuned.profile == config.CacheProfile(30, 10000)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VEXIL_PORT": "http"}, "port (from VEXIL_PORT): 'http' is not a valid int"),
        ({"VEXIL_PORT": "70000"}, "port (from VEXIL_PORT): 70000 is not a TCP port"),
        ({"VEXIL_ENV": "moon"}, "'moon' is not a profile"),
        ({"VEXIL_STORE": "redis"}, "store (from VEXIL_STORE): 'redis' is unknown"),
        ({"VEXIL_FLAGS": "/nonexistent.yaml"}, "no such file"),
        ({"VEXIL_POLL_INTERVAL": "0"}, "poll_interval (from VEXIL_POLL_INTERVAL): must be greater than 0"),
        ({"VEXIL_WRITE_TIMEOUT": "-1"}, "write_timeout (from VEXIL_WRITE_TIMEOUT): must be greater than 0"),
        ({"VEXIL_ENVIRONMENTS": "local,Bad Env"}, "'Bad Env' is not a valid name"),
        ({"VEXIL_DRAIN_SECONDS": "-1"}, "drain_seconds (from VEXIL_DRAIN_SECONDS): must not be negative"),
        # Python reads these as floats, and nan passes every bound (nan <= 0 is false).
        (
            {"VEXIL_HEARTBEAT_SECONDS": "inf"},
            "heartbeat_seconds (from VEXIL_HEARTBEAT_SECONDS): must be a finite number, not inf",
        ),
        (
            {"VEXIL_HEARTBEAT_SECONDS": "nan"},
            "heartbeat_seconds (from VEXIL_HEARTBEAT_SECONDS): must be a finite number, not nan",
        ),
        ({"VEXIL_CACHE_TTL": "nan"}, "cache_ttl (from VEXIL_CACHE_TTL): must be a finite number, not nan"),
        ({"VEXIL_DRAIN_SECONDS": "Infinity"}, "drain_seconds (from VEXIL_DRAIN_SECONDS): must be a finite"),
        # DynamoDB's table names: 3 to 255 of A-Z a-z 0-9 _ . - (the AWS naming rules).
        ({"VEXIL_DYNAMODB_TABLE": "ab"}, "dynamodb_table (from VEXIL_DYNAMODB_TABLE): 'ab' is not a"),
        ({"VEXIL_DYNAMODB_TABLE": "flags prod"}, "'flags prod' is not a table name"),
        ({"VEXIL_DYNAMODB_TABLE": "flags/prod"}, "'flags/prod' is not a table name"),
        ({"VEXIL_DYNAMODB_TABLE": "x" * 256}, "is not a table name; use 3 to 255 characters"),
    ],
)
def test_invalid_settings_name_the_setting_and_source(environ: dict, message: str) -> None:
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load(environ=environ)


@pytest.mark.parametrize("table", ["abc", "x" * 255, "Feature_Flags-prod.v2"])
def test_every_name_dynamodb_takes_is_a_table_name(table: str) -> None:
    assert config.load(environ={"VEXIL_DYNAMODB_TABLE": table}).table == table


def test_unknown_key_in_config_file(tmp_path) -> None:
    path = tmp_path / "vexil.toml"
    path.write_text("prot = 1\n")
    with pytest.raises(config.ConfigError, match="unknown setting 'prot'"):
        config.load(environ={}, config_file=str(path))


def test_drain_defaults_to_five_seconds_and_zero_turns_it_off() -> None:
    assert config.load(environ={}).drain_seconds == 5.0
    assert config.load(environ={"VEXIL_DRAIN_SECONDS": "0"}).drain_seconds == 0.0
