"""The `vexil` CLI against a real server subprocess: tables, --json, and exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.servers import VEXIL, ServerProcess


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> str:
    with ServerProcess(tmp_path_factory.mktemp("cli")) as server:
        yield server.target


def vexil(target: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VEXIL, *args, "--target", target], capture_output=True, text=True, timeout=60)


def test_flag_lifecycle_through_the_cli(target: str) -> None:
    created = vexil(
        target,
        "flags",
        "create",
        "cli-flag",
        "--owner",
        "ops",
        "--tag",
        "demo",
        "--description",
        "made by the CLI",
        "--default",
        "on",
        "--reason",
        "test",
    )
    assert created.returncode == 0, created.stderr
    assert "cli-flag" in created.stdout

    listed = vexil(target, "flags", "list")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["KEY", "STATE", "DEFAULT"]
    assert any(row.split()[0] == "cli-flag" for row in rows)

    as_json = json.loads(vexil(target, "flags", "get", "cli-flag", "--json").stdout)
    assert as_json["owner"] == "ops" and as_json["tags"] == ["demo"] and as_json["version"] == "1"

    evaluated = json.loads(
        vexil(target, "evaluate", "cli-flag", "--context", '{"targetingKey": "u"}', "--json").stdout
    )
    assert evaluated["bool_value"] is True and evaluated["reason"] == "STATIC"

    updated = vexil(target, "flags", "update", "cli-flag", "--default", "off", "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["version"] == "2"

    stale = vexil(target, "flags", "update", "cli-flag", "--default", "on", "--expected-version", "1")
    assert stale.returncode == 4 and "ABORTED" in stale.stderr

    killed = vexil(target, "flags", "kill", "cli-flag", "--reason", "incident")
    assert killed.returncode == 0 and "killed" in killed.stdout
    evaluated = json.loads(vexil(target, "evaluate", "cli-flag", "--json").stdout)
    assert evaluated["reason"] == "DISABLED"

    history = vexil(target, "flags", "history", "cli-flag")
    assert [line.split()[0] for line in history.stdout.splitlines()[1:]] == ["3", "2", "1"]

    rolled = vexil(target, "flags", "rollback", "cli-flag", "--to", "1", "--json")
    assert rolled.returncode == 0 and json.loads(rolled.stdout)["version"] == "4"

    changes = json.loads(vexil(target, "flags", "changes", "--key", "cli-flag", "--json").stdout)
    assert [c["kind"] for c in changes] == [
        "CREATE",
        "UPDATE",
        "KILL",
        "ROLLBACK",
    ]

    watched = vexil(target, "watch", "--count", "1", "--json")
    assert json.loads(watched.stdout.splitlines()[0])["type"] == "SNAPSHOT"

    deleted = vexil(target, "flags", "delete", "cli-flag", "--reason", "done")
    assert deleted.returncode == 0


def test_exit_codes(target: str) -> None:
    assert vexil(target, "flags", "get", "missing").returncode == 3
    bad = vexil(target, "flags", "create", "bad key!")
    assert bad.returncode == 2 and "INVALID_ARGUMENT" in bad.stderr and "flag.key" in bad.stderr
    assert vexil(target, "evaluate", "x", "--context", "[1]").returncode == 2
    assert vexil(target, "evaluate", "x", "--context", "{nope").returncode == 2
    assert vexil(target, "flags", "kill").returncode == 2
    down = subprocess.run(
        [VEXIL, "flags", "list", "--target", "127.0.0.1:1", "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 6


def test_serve_rejects_bad_configuration(tmp_path) -> None:
    result = subprocess.run([VEXIL, "serve", "--env", "moon"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "env" in result.stderr and "local, dev, staging, prod" in result.stderr


def test_import_keeps_a_killed_flag_killed(target: str, tmp_path) -> None:
    """A file that says ENABLED imports its definition but never revives a killed flag."""
    assert vexil(target, "flags", "create", "imp-kill", "--default", "on", "--reason", "t").returncode == 0
    killed = vexil(target, "flags", "kill", "imp-kill", "--reason", "incident")
    assert killed.returncode == 0, killed.stderr
    doc = {
        "flags": {
            "imp-kill": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
            }
        }
    }
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(doc))
    imported = vexil(target, "flags", "import", str(path), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["state_kept"] == ["imp-kill"]
    flag = json.loads(vexil(target, "flags", "get", "imp-kill", "--json").stdout)
    assert flag["state"] == "DISABLED"
    assert flag["default_variant"] == "off"  # the rest of the definition was imported

    # Deleted while killed, then imported again: created anew, still killed, and reported.
    assert vexil(target, "flags", "delete", "imp-kill", "--reason", "t").returncode == 0
    again = vexil(target, "flags", "import", str(path), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state_kept"] == ["imp-kill"]
    flag = json.loads(vexil(target, "flags", "get", "imp-kill", "--json").stdout)
    assert flag["state"] == "DISABLED"


@pytest.mark.parametrize("command", [["flags", "export"], ["backup", "export", "--from", "server"]])
def test_an_export_to_a_path_it_cannot_write_is_bad_input(target: str, tmp_path, command: list[str]) -> None:
    """README, exit codes: bad input is 2, one line, found before anything is sent.  A directory,
    and a file under a directory that cannot be made (a plain file stands in its way), are refused
    naming the path; against a server that is not there, so the check comes before any read."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for path in (tmp_path, blocker / "export.json"):
        for where in (target, "127.0.0.1:1"):
            result = vexil(where, *command[:2], str(path), *command[2:])
            assert result.returncode == 2, (path, where, result.stderr)
            assert result.stderr.count("\n") == 1 and str(path) in result.stderr
            assert "Traceback" not in result.stderr
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# The README's limits of a definition (The API): what a write is refused for, field by field.
OVER_THE_LIMITS = [
    ("big", {"variants": {"on": "x" * (300 * 1024), "off": ""}}, "flags.big:"),
    ("described", {"description": "d" * 4097}, "flags.described.description:"),
    ("owned", {"owner": "o" * 257}, "flags.owned.owner:"),
    ("tagged", {"tags": ["ok", "t" * 129]}, "flags.tagged.tags[1]:"),
]


@pytest.mark.parametrize(("key", "fields", "named"), OVER_THE_LIMITS, ids=[c[0] for c in OVER_THE_LIMITS])
def test_a_dry_run_refuses_what_the_import_is_refused(
    target: str, tmp_path, key: str, fields: dict, named: str
) -> None:
    flag = {"state": "ENABLED", "defaultVariant": "on", "variants": {"on": True, "off": False}, **fields}
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {key: flag}}))
    for run in (["--dry-run"], []):
        result = vexil(target, "flags", "import", str(path), *run)
        assert result.returncode == 2, (run, result.stdout, result.stderr)
        assert named in result.stderr and "nothing was imported" in result.stderr
    assert vexil(target, "flags", "get", key).returncode == 3


def test_a_dry_run_accepts_a_definition_at_the_limits(target: str, tmp_path) -> None:
    flag = {
        "state": "ENABLED",
        "defaultVariant": "on",
        "variants": {"on": True, "off": False},
        "description": "d" * 4096,
        "owner": "o" * 256,
        "tags": ["t" * 128],
    }
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"at-limits": flag}}))
    dry = vexil(target, "flags", "import", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    done = vexil(target, "flags", "import", str(path))
    assert done.returncode == 0, done.stderr
