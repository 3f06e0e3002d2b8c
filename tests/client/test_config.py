"""Client settings: arguments over VEXIL_* variables over defaults, and loud failures at
construction for values that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from vexil.client import Client, ClientConfig, ConfigError, Mode, RetryPolicy, load_config
from vexil.client.channel import call_metadata


def test_defaults() -> None:
    config = load_config(environ={})
    assert config.target == "127.0.0.1:50051"
    assert config.mode is Mode.REMOTE
    assert config.deadline == 0.2
    assert not config.uses_tls and config.api_key == "" and config.environment == ""
    assert config.retry == RetryPolicy()
    assert call_metadata(config) == ()


def test_environment_variables(tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    config = load_config(
        environ={
            "VEXIL_TARGET": "vexil.internal:443",
            "VEXIL_API_KEY": "k-123",
            "VEXIL_ENVIRONMENT": "prod",
            "VEXIL_MODE": "LOCAL",
            "VEXIL_TLS_ROOT_CERTS": str(roots),
            "VEXIL_DEADLINE_MS": "75",
            "VEXIL_STALE_GRACE_MS": "2500",
            "VEXIL_RETRY_MAX_ATTEMPTS": "1",
            "VEXIL_RETRY_INITIAL_BACKOFF_MS": "100",
            "VEXIL_RETRY_MAX_BACKOFF_MS": "5000",
            "VEXIL_SNAPSHOT_FILE": str(tmp_path / "snap.json"),
        }
    )
    assert (config.target, config.environment, config.mode) == ("vexil.internal:443", "prod", Mode.LOCAL)
    assert config.uses_tls and config.root_certificates == str(roots)
    assert config.deadline == pytest.approx(0.075) and config.stale_grace == 2.5
    assert config.retry == RetryPolicy(max_attempts=1, initial_backoff=0.1, max_backoff=5.0)
    assert call_metadata(config) == (("authorization", "Bearer k-123"),)
    assert "k-123" not in repr(config)


def test_arguments_win_over_the_environment() -> None:
    config = load_config(
        environ={"VEXIL_TARGET": "env:1", "VEXIL_MODE": "local"}, target="arg:2", mode=Mode.REMOTE
    )
    assert (config.target, config.mode) == ("arg:2", Mode.REMOTE)
    explicit = ClientConfig(target="cfg:3")
    assert load_config(explicit, environ={"VEXIL_TARGET": "env:1"}) is explicit
    assert load_config(explicit, deadline=1.0).deadline == 1.0


def test_client_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEXIL_TARGET", "127.0.0.1:1")
    monkeypatch.setenv("VEXIL_MODE", "local")
    with Client(start=False) as client:
        assert client.config.target == "127.0.0.1:1" and client.config.mode is Mode.LOCAL


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({"VEXIL_MODE": "hybrid"}, {}, "mode"),
        ({"VEXIL_DEADLINE_MS": "soon"}, {}, "VEXIL_DEADLINE_MS"),
        ({"VEXIL_TLS": "maybe"}, {}, "VEXIL_TLS"),
        ({}, {"deadline": 0}, "deadline"),
        ({}, {"target": ""}, "target"),
        ({}, {"retry": RetryPolicy(initial_backoff=5, max_backoff=1)}, "backoff"),
        ({}, {"retry": RetryPolicy(max_attempts=0)}, "max_attempts"),
        ({}, {"flags_file": "/no/such/file.yaml"}, "flags_file"),
        ({}, {"root_certificates": "/no/such/ca.pem"}, "root_certificates"),
        ({}, {"deadlne": 1}, "deadlne"),
        # What gRPC would only report at the first call, as an internal error or as "unavailable".
        ({"VEXIL_TOKEN": "vxk_0123456789abcdef_abc\r"}, {}, r"a trailing carriage return \(\\r\)"),
        ({}, {"api_key": "vxk_0123456789abcdef_äbc"}, "non-ASCII character U\\+00E4 at position 22"),
    ],
)
def test_bad_settings_fail_at_construction(environ: dict, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ, **options)


def test_tls_files_that_are_not_pem_fail_at_construction(tmp_path: Path) -> None:
    yaml_file = tmp_path / "flags.yaml"
    yaml_file.write_text("flags: {}\n")
    certificate = tmp_path / "ca.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=f"root_certificates: not a PEM certificate: {yaml_file}"):
        load_config(environ={}, root_certificates=str(yaml_file))
    with pytest.raises(ConfigError, match="client_key: not a PEM private key"):
        load_config(environ={}, client_certificate=str(certificate), client_key=str(certificate))
    assert load_config(environ={}, root_certificates=str(certificate)).root_certificates == str(certificate)


def test_backoff_caps_grow_exponentially_to_the_maximum() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4.0, multiplier=2.0)
    assert [policy.cap(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.cap(10_000) == 4.0
