"""Security settings: secure by default outside the local profile, checked combinations, and
secrets that never reach an error message, a repr or a worker's command line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.pki import PkiFiles
from tests.support.servers import VEXIL
from vexil import config
from vexil.cli.main import worker_command
from vexil.security import layer

BOOTSTRAP = "vxk_0123456789abcdef_" + "s3cr3t" * 8


def load(**cli: Any) -> config.Settings:
    return config.load(cli=cli, environ={})


def test_auth_defaults_by_profile_and_configuration(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x" * 40)
    assert not load().auth_required and not load().rate_limits_active
    assert load(env="dev").auth_required and load(env="dev").rate_limits_active
    jwt_local = load(jwt_secret_file=str(secret), jwt_issuer="i", jwt_audience="a")
    assert jwt_local.auth_required
    assert config.load(environ={"VEXIL_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP}).auth_required
    assert not load(env="prod", auth_mode="none", insecure=True).auth_required
    assert load(auth_mode="required").auth_required
    assert (
        load(rate_limits="on").rate_limits_active
        and not load(env="prod", rate_limits="off").rate_limits_active
    )
    assert config.load(environ={"VEXIL_INSECURE": "true"}).insecure
    assert load(rate_limit_admin_roles="admin=600, editor=0").admin_rate_limits == {
        "admin": 600.0,
        "editor": 0.0,
    }


def test_profiles_other_than_local_serve_only_with_tls_and_authentication(pki: PkiFiles) -> None:
    with pytest.raises(config.ConfigError, match=r"missing: TLS\. .*--insecure"):
        config.require_secure(load(env="prod"))
    with pytest.raises(config.ConfigError, match="missing: TLS, authentication"):
        config.require_secure(load(env="staging", auth_mode="none"))
    with pytest.raises(config.ConfigError, match="missing: authentication"):
        config.require_secure(
            load(env="dev", auth_mode="none", tls_cert=pki.server_cert, tls_key=pki.server_key)
        )
    config.require_secure(load(env="prod", tls_cert=pki.server_cert, tls_key=pki.server_key))
    config.require_secure(load(env="prod", insecure=True))
    config.require_secure(load())
    with pytest.raises(config.ConfigError, match=r"loopback only, not 0\.0\.0\.0"):
        config.require_secure(load(host="0.0.0.0"))
    config.require_secure(load(host="0.0.0.0", auth_mode="required"))
    # Operator commands load prod settings without serving: that must keep working.
    assert load(env="prod", store="dynamodb").table == "feature-flags-prod"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auth_mode": "maybe"}, "auth_mode (from --auth-mode): 'maybe' is unknown"),
        ({"tls_cert": "CERT"}, "tls_cert and tls_key go together"),
        ({"tls_client_ca": "CA"}, "mutual TLS needs tls_cert"),
        ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "no such file: /nonexistent.pem"),
        ({"jwt_issuer": "i"}, "set a JWT key too"),
        ({"jwt_secret_file": "SECRET"}, "needs jwt_issuer and jwt_audience"),
        (
            {"jwt_secret_file": "SECRET", "jwt_public_key": "CERT", "jwt_issuer": "i", "jwt_audience": "a"},
            "one JWT key source",
        ),
        ({"jwt_clock_skew": 900}, "jwt_clock_skew .* 0 to 300"),
        ({"key_cache_ttl": 61}, "key_cache_ttl .* at most 60"),
        ({"key_cache_ttl": 0}, "key_cache_ttl"),
        ({"key_lifetime_days": 0}, "key_lifetime_days"),
        ({"rate_limit_admin": -1}, "rate_limit_admin .* must not be negative"),
        ({"rate_limit_admin_roles": "owner=5"}, "'owner=5' is not <role>=<calls per minute>"),
        ({"rate_limit_admin_roles": "admin=lots"}, "'admin=lots' is not"),
        ({"rate_limits": "sometimes"}, "rate_limits .* use on or off"),
        ({"insecure": "perhaps"}, "insecure (from --insecure): 'perhaps' is not a valid bool"),
    ],
)
def test_invalid_security_settings_are_named(values: dict[str, Any], message: str, pki: PkiFiles) -> None:
    files = {"CERT": pki.server_cert, "CA": pki.ca, "SECRET": pki.server_key}
    values = {k: files.get(v, v) if isinstance(v, str) else v for k, v in values.items()}
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(**values)


def test_secrets_stay_out_of_messages_reprs_and_worker_command_lines(pki: PkiFiles) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(environ={"VEXIL_BOOTSTRAP_ADMIN_KEY": "vxk_not-a-token-but-maybe-a-secret"})
    assert "not-a-token" not in str(err.value) and "VEXIL_BOOTSTRAP_ADMIN_KEY" in str(err.value)
    with pytest.raises(config.ConfigError, match="'none' ignores the configured credentials"):
        config.load(environ={"VEXIL_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP, "VEXIL_AUTH_MODE": "none"})
    settings = config.load(
        environ={"VEXIL_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP, "VEXIL_STORE": "dynamodb", "VEXIL_WORKERS": "2"},
        cli={"tls_cert": pki.server_cert, "tls_key": pki.server_key, "insecure": False},
    )
    assert BOOTSTRAP not in repr(settings)
    command = worker_command(settings)
    assert BOOTSTRAP not in " ".join(command) and "--tls-cert" in command and "--insecure" in command
    from vexil.cli.main import build_parser

    build_parser().parse_args(command[3:])  # every spelled-out setting is a flag `serve` accepts


def test_key_material_is_checked_before_serving(pki: PkiFiles, tmp_path: Path) -> None:
    mismatched = load(tls_cert=pki.server_cert, tls_key=pki.client_key)
    with pytest.raises(config.ConfigError, match="TLS files"):
        layer.check(mismatched)
    short = tmp_path / "short"
    short.write_text("too short")
    with pytest.raises(config.ConfigError, match="at least 32 bytes"):
        layer.check(load(jwt_secret_file=str(short), jwt_issuer="i", jwt_audience="a"))


def test_vexil_serve_refuses_an_insecure_prod_with_a_clear_message() -> None:
    result = subprocess.run([VEXIL, "serve", "--env", "prod"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "configuration error: env 'prod' serves only with TLS and authentication" in result.stderr
