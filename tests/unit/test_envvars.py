"""One `VEXIL_*` vocabulary: the CLI and the client SDK read the same names (aliases included) from
one module, the README's table is that module, and no server setting's `VEXIL_<NAME>` means
something else."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import VEXIL
from vexil import config
from vexil.cli.main import build_parser
from vexil.client import config as sdk_config
from vexil.client import envvars, load_config

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(VEXIL_[A-Z_<>]+)` \| ([^|]+) \| (.+) \|$")
READERS = {"CLI": "cli", "SDK": "sdk", "server": "server"}


def readme_rows() -> dict[str, tuple[tuple[str, ...], str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Environment variables") :]
    section = section[: section.index("\n### ", 1)]
    rows = {}
    for line in section.splitlines():
        if m := ROW.match(line):
            readers = tuple(READERS[r.strip()] for r in m[2].split(","))
            rows[m[1]] = (readers, m[3].strip())
    return rows


def test_the_readme_table_is_the_vocabulary() -> None:
    rows = readme_rows()
    expected = {v.name: (v.readers, v.meaning) for v in envvars.VARIABLES}
    for alias, name in envvars.ALIASES.items():
        expected[alias] = (
            envvars.BY_NAME[name].readers,
            f"accepted alias of `{name}` (the name wins when both are set)",
        )
    settings_row = rows.pop("VEXIL_<SETTING>")
    assert "server" in settings_row[0]
    assert rows == expected


def test_the_two_old_spellings_are_aliases_of_one_name() -> None:
    assert envvars.ALIASES == {"VEXIL_API_KEY": "VEXIL_TOKEN", "VEXIL_TLS_ROOT_CERTS": "VEXIL_CA_CERT"}


def test_no_server_setting_variable_names_a_caller_variable() -> None:
    server = {f"VEXIL_{name.upper()}" for name in config.FIELDS}
    callers = set(envvars.BY_NAME) | set(envvars.ALIASES)
    assert not server & callers, server & callers


def test_the_sdk_reads_exactly_the_vocabularys_sdk_names() -> None:
    read = set(sdk_config.ENVIRONMENT) | set(sdk_config.RETRY_ENVIRONMENT)
    assert read == {v.name for v in envvars.VARIABLES if envvars.SDK in v.readers}


# (variables, what the SDK's config holds, what the CLI's parsed connection holds)
SPELLINGS = [
    ({"VEXIL_TOKEN": "t-1"}, ("api_key", "t-1"), ("token", "t-1")),
    ({"VEXIL_API_KEY": "t-2"}, ("api_key", "t-2"), ("token", "t-2")),
    ({"VEXIL_TOKEN": "t-3", "VEXIL_API_KEY": "old"}, ("api_key", "t-3"), ("token", "t-3")),
    ({"VEXIL_CA_CERT": "{ca}"}, ("root_certificates", "{ca}"), ("ca_cert", "{ca}")),
    ({"VEXIL_TLS_ROOT_CERTS": "{ca}"}, ("root_certificates", "{ca}"), ("ca_cert", "{ca}")),
    ({"VEXIL_TLS": "no"}, ("tls", False), ("tls", False)),
    ({"VEXIL_TLS": "on"}, ("tls", True), ("tls", True)),
    ({"VEXIL_TARGET": "h:1"}, ("target", "h:1"), ("target", "h:1")),
    ({"VEXIL_ENVIRONMENT": "beta"}, ("environment", "beta"), ("environment", "beta")),
    ({"VEXIL_TLS_SERVER_NAME": "n"}, ("tls_server_name", "n"), ("server_name", "n")),
]


@pytest.mark.parametrize(("variables", "sdk", "cli"), SPELLINGS)
def test_the_cli_and_the_sdk_read_a_variable_alike(
    variables: dict[str, str],
    sdk: tuple[str, object],
    cli: tuple[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vexil.cli import credentials

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")  # markers only
    environ = {k: v.format(ca=ca) for k, v in variables.items()}
    field, value = sdk
    value = value.format(ca=ca) if isinstance(value, str) else value
    assert getattr(load_config(environ=environ), field) == value
    for name in list(envvars.BY_NAME) + list(envvars.ALIASES):
        monkeypatch.delenv(name, raising=False)
    for name, raw in environ.items():
        monkeypatch.setenv(name, raw)
    connection = credentials.connection(build_parser().parse_args(["flags", "list"]))
    attribute, expected = cli
    if attribute == "environment":
        assert build_parser().parse_args(["flags", "list"]).environment == expected
    else:
        expected = expected.format(ca=ca) if isinstance(expected, str) else expected
        assert getattr(connection, attribute) == expected


def test_a_tls_value_that_is_neither_true_nor_false_is_refused_by_both(tmp_path: Path) -> None:
    with pytest.raises(sdk_config.ConfigError, match="VEXIL_TLS"):
        load_config(environ={"VEXIL_TLS": "maybe"})
    done = subprocess.run(
        [VEXIL, "flags", "list", "--target", "127.0.0.1:1", "--timeout", "1"],
        env={"PATH": "/usr/bin:/bin", "VEXIL_TLS": "maybe", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "VEXIL_TLS" in done.stderr and "Traceback" not in done.stderr, done.stderr
