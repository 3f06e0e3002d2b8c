"""The `vexil` command stays small modules with one way to do each thing: no module under
clients/cli over 400 lines, `serve`'s flags generated from the settings (each flag a setting,
each setting a flag, with the settings' precedence), and one exit-code table the README states."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from vexil import config
from vexil.cli import serve
from vexil.cli.exitcodes import ExitCode
from vexil.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
MOST_LINES = 400
SERVE_OWN = {"help", "config", "worker_child"}
"""`vexil serve` options that are not settings: help, the config file itself, the worker marker."""


def test_no_cli_module_exceeds_400_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "clients" / "cli").glob("*.py")}
    assert len(sizes) > 5
    too_long = {name: n for name, n in sizes.items() if n > MOST_LINES}
    assert not too_long, too_long


def _serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def test_every_serve_option_is_a_setting_and_every_setting_an_option() -> None:
    actions = {a.dest: a for a in _serve_parser()._actions}
    options = set(actions) - SERVE_OWN
    assert options <= set(config.FIELDS), options - set(config.FIELDS)
    public = set(config.FIELDS) - config.SECRET_SETTINGS
    assert public <= options, public - options
    assert not options & config.SECRET_SETTINGS  # secrets never on a command line
    for name in options:
        action = actions[name]
        assert action.option_strings == ["--" + name.replace("_", "-")], action.option_strings
        assert action.default is None, name  # absent: the environment, file and profile decide
        assert action.help and "Configuration reference" not in action.help, f"{name} has no help of its own"


def test_a_new_setting_is_a_serve_flag_without_a_second_list(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = dataclasses.field(default=2.5)
    extra.name, extra.type = "brand_new_seconds", "float"
    monkeypatch.setitem(config.FIELDS, "brand_new_seconds", extra)
    args = build_parser().parse_args(["serve", "--brand-new-seconds", "4"])
    assert args.brand_new_seconds == 4.0


TYPED = [
    # (flag, value, setting, parsed): the types and choices the settings declare
    ("--port", "7001", "port", 7001),
    ("--poll-interval", "0.5", "poll_interval", 0.5),
    ("--environments", "a,b", "environments", ("a", "b")),
    ("--insecure", None, "insecure", True),
    ("--insecure", "false", "insecure", False),
    ("--store", "dynamodb", "store", "dynamodb"),
]


@pytest.mark.parametrize(("flag", "value", "setting", "parsed"), TYPED)
def test_generated_flags_parse_as_their_settings(
    flag: str, value: str | None, setting: str, parsed: object
) -> None:
    argv = ["serve", flag] + ([value] if value is not None else [])
    if setting == "store":
        argv += ["--flags-mode", "seed"]
    settings = serve.settings_from(build_parser().parse_args(argv), environ={})
    assert getattr(settings, setting) == parsed


@pytest.mark.parametrize("argv", [["--store", "files"], ["--port", "many"], ["--insecure", "maybe"]])
def test_a_flag_outside_its_settings_values_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", *argv])
    assert exited.value.code == ExitCode.USAGE


def test_serve_precedence_is_flags_then_environment_then_file_then_profile(tmp_path: Path) -> None:
    toml = tmp_path / "vexil.toml"
    toml.write_text("poll_interval = 3.0\nheartbeat_seconds = 7.0\nwrite_timeout = 9.0\n")
    environ = {"VEXIL_POLL_INTERVAL": "2.0", "VEXIL_HEARTBEAT_SECONDS": "6.0"}
    args = build_parser().parse_args(["serve", "--config", str(toml), "--poll-interval", "1.5"])
    settings = serve.settings_from(args, environ=environ)
    assert settings.poll_interval == 1.5  # flag over environment over file
    assert settings.heartbeat_seconds == 6.0  # environment over file
    assert settings.write_timeout == 9.0  # file over default
    assert settings.drain_seconds == 5.0  # the default
    assert settings.cache_ttl == 0 and settings.profile.ttl_seconds == 60  # the local profile's


README_EXIT_ROW = re.compile(r"^\| (\d+) \| ([^|]+) \|")


def test_the_readme_states_the_one_exit_code_table() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Exit codes") :]
    section = section[: section.index("\n### ", 1)]
    rows = {int(m[1]): m[2].strip() for line in section.splitlines() if (m := README_EXIT_ROW.match(line))}
    assert sorted(rows) == sorted(code.value for code in ExitCode)
    # The meanings a script relies on, written here independently of the enum.
    for code, words in {
        0: "success",
        2: "bad usage",
        3: "not found",
        4: "conflict",
        5: "not allowed",
        6: "unavailable",
        7: "critical",
    }.items():
        assert words in rows[code], (code, rows[code])


def test_serve_start_up_codes_come_from_the_one_table() -> None:
    from vexil.cli.startup import explain
    from vexil.errors import CannotListen, InvalidArgument, Unavailable
    from vexil.store.dynamodb_client import NoCredentials, TableNotFound

    settings = config.load(environ={})
    expected = [
        (InvalidArgument("bad"), 2),
        (TableNotFound("t"), 3),
        (CannotListen("127.0.0.1:1 in use"), 4),
        (NoCredentials("none"), 5),
        (Unavailable("gone"), 6),
        (RuntimeError("?"), 1),
    ]
    for exc, code in expected:
        got, _ = explain(exc, settings)
        assert isinstance(got, ExitCode) and got == code, (exc, got)


def test_table_failures_exit_by_their_cause_from_the_one_table() -> None:
    """The store reports these as UNAVAILABLE (to a server's callers); a command says what to fix,
    with the README's codes: 3 not found, 5 not allowed, 6 unavailable."""
    from botocore.exceptions import ClientError

    from vexil.cli.exitcodes import for_error
    from vexil.store.dynamodb_client import translate

    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "CreateBackup")

    expected = {
        "ResourceNotFoundException": 3,
        "TableNotFoundException": 3,  # how the backup and PITR operations say it
        "UnrecognizedClientException": 5,
        "InvalidSignatureException": 5,
        "ExpiredTokenException": 5,
        "AccessDeniedException": 5,
        "InternalServerError": 6,
    }
    for code, exit_code in expected.items():
        error = translate(refused(code), "testing")
        assert error.code == "UNAVAILABLE", code
        assert for_error(error) == exit_code, code
