"""`vexil flags export` / `vexil flags import` against a `vexil serve` subprocess: round trip,
idempotence, all-or-nothing (checked before writing, undone when the server refuses a write)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.flags import definition_fields, flag_pb
from tests.support.flagset import ENV_METADATA, EVALUATORS, FLAGS
from tests.support.servers import VEXIL, ServerProcess
from vexil.v1 import admin_pb2, admin_pb2_grpc
from vexil.wire import dict_to_struct

LIMIT = 10  # --cache-maxsize: the most flags one environment may hold


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("flagfiles")
    args = ("--environments", "local,copy,scratch", "--cache-maxsize", str(LIMIT))
    with ServerProcess(tmp, *args) as process, grpc.insecure_channel(process.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.UpdateEnvironmentRequest(environment="local")
        dict_to_struct(EVALUATORS, request.evaluators)
        dict_to_struct(ENV_METADATA, request.metadata)
        admin.UpdateEnvironment(request)
        for key, body in FLAGS.items():
            admin.CreateFlag(
                admin_pb2.CreateFlagRequest(flag=flag_pb(key, **definition_fields(body), environment="local"))
            )
        documented = flag_pb("documented", {"on": True, "off": False}, default="off", environment="local")
        documented.description, documented.owner = "for people", "web-team"
        documented.tags.extend(["ui", "beta"])
        dict_to_struct({"ticket": "X-1", "weight": 0.5}, documented.metadata)
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=documented))
        yield process


def vexil(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [VEXIL, "flags", *args, "--target", server.target], capture_output=True, text=True, timeout=60
    )


def environment(server: ServerProcess, name: str) -> tuple[int, list[str]]:
    """(config_version, flag keys) of an environment."""
    with grpc.insecure_channel(server.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        env = admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment=name))
        flags = admin.ListFlags(admin_pb2.ListFlagsRequest(environment=name, page_size=100)).flags
        return env.config_version, sorted(f.key for f in flags)


def write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_export_import_export_is_identical(server: ServerProcess, tmp_path: Path) -> None:
    first, second = tmp_path / "local.json", tmp_path / "copy.json"
    exported = vexil(server, "export", str(first), "-e", "local")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"exported {len(FLAGS) + 1} flags to {first}"

    imported = vexil(server, "import", str(first), "-e", "copy", "--json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary["created"] == sorted([*FLAGS, "documented"]) and summary["updated"] == []
    assert summary["environment_updated"] is True

    assert vexil(server, "export", str(second), "-e", "copy").returncode == 0
    assert second.read_bytes() == first.read_bytes()
    to_stdout = vexil(server, "export", "-e", "copy")
    assert to_stdout.returncode == 0 and to_stdout.stdout == first.read_text()

    document = json.loads(first.read_text())
    assert document["$evaluators"] == EVALUATORS and document["metadata"] == ENV_METADATA
    assert document["flags"]["documented"] == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "description": "for people",
        "owner": "web-team",
        "tags": ["ui", "beta"],
        "metadata": {"ticket": "X-1", "weight": 0.5},
    }

    # Importing the same file again changes nothing, not even the config_version.
    before = environment(server, "copy")
    again = vexil(server, "import", str(first), "-e", "copy")
    assert again.returncode == 0, again.stderr
    assert f"unchanged  {len(FLAGS) + 1:>4}" in again.stdout
    assert environment(server, "copy") == before


def test_import_updates_what_differs_and_merges(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "local.json"
    assert vexil(server, "export", str(source), "-e", "local").returncode == 0
    document = json.loads(source.read_text())
    document["flags"] = {"color": {**document["flags"]["color"], "defaultVariant": "red"}}
    document["$evaluators"] = {"is-staff": {"ends_with": [{"var": "email"}, "@example.com"]}}
    path = write(tmp_path / "one.json", document)

    dry = vexil(server, "import", path, "-e", "local", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would import")
    assert "updated       1  color" in dry.stdout

    version, keys = environment(server, "local")
    done = vexil(server, "import", path, "-e", "local", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["updated"] == ["color"]
    after_version, after_keys = environment(server, "local")
    assert after_keys == keys and after_version == version + 2  # environment, then the flag
    merged = json.loads(vexil(server, "export", "-e", "local").stdout)
    assert set(merged["$evaluators"]) == {"is-beta", "is-staff"}  # merged, not replaced
    assert merged["flags"]["color"]["defaultVariant"] == "red"


def test_nothing_is_written_when_any_definition_is_invalid(server: ServerProcess, tmp_path: Path) -> None:
    document = {
        "flags": {
            "fine": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"},
            "dangling": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {"if": [{"$ref": "no-such-evaluator"}, "on", None]},
            },
            "bad key!": {"variants": {"on": True}},
        }
    }
    before = environment(server, "scratch")
    result = vexil(server, "import", write(tmp_path / "bad.json", document), "-e", "scratch")
    assert result.returncode == 2
    assert "nothing was imported" in result.stderr
    assert "flags.dangling" in result.stderr and "flags.bad key!" in result.stderr
    assert environment(server, "scratch") == before

    broken = tmp_path / "broken.json"
    broken.write_text("{ not json nor: [yaml")
    result = vexil(server, "import", str(broken), "-e", "scratch")
    assert result.returncode == 2 and "neither JSON nor YAML" in result.stderr


def test_a_refused_write_undoes_the_import(server: ServerProcess, tmp_path: Path) -> None:
    """The environment's flag limit refuses the 11th create: the 10 made before are deleted again."""
    flags = {f"bulk-{i:02d}": {"variants": {"on": True}, "defaultVariant": "on"} for i in range(LIMIT + 1)}
    path = write(tmp_path / "bulk.json", {"flags": flags, "metadata": {"owner": "bulk"}})
    result = vexil(server, "import", path, "-e", "scratch")
    assert result.returncode == 4, result.stderr  # FAILED_PRECONDITION
    assert f"undid {LIMIT + 1} write(s)" in result.stderr  # the environment's metadata and 10 flags
    assert environment(server, "scratch")[1] == []
    exported = json.loads(vexil(server, "export", "-e", "scratch").stdout)
    assert exported == {"flags": {}}


def test_serve_http_port(server: ServerProcess) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/readyz", timeout=10) as response:
        body = json.load(response)
    assert response.status == 200
    assert [env["environment"] for env in body["environments"]] == ["local", "copy", "scratch"]
