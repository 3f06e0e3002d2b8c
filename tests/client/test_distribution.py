"""The client distribution (`vexil-client`, clients/python/pyproject.toml) installs and works alone.

Built from the repository's sources into a wheel, installed with its dependencies into a fresh
virtualenv from a wheel directory holding only the locked wheels of the dependencies a client may
have (the table below): if the client asked for anything else, or imported a server module, the
install or the evaluation in that virtualenv fails. The virtualenv then evaluates against a real
`vexil serve` in remote and local mode and through the OpenFeature provider. A static walk of
every import statement of the wheel's modules catches what only an import inside a function would
reach.

The dependency wheels are fetched by hash from the dev lock (the pip cache or the index the lock
was made from); the install itself uses no index at all.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

# What a client installation may hold: the client and the runtime dependencies the SDK and the
# provider import (typing-extensions comes with grpcio). Names as their wheels' metadata has them.
CLIENT_DISTRIBUTIONS = {
    "vexil-client",
    "grpcio",
    "protobuf",
    "PyYAML",
    "cbor2",
    "mmh3",
    "openfeature-sdk",
    "typing_extensions",
}
SERVER_ONLY_MODULES = ("aioboto3", "aiohttp", "prometheus_client", "botocore", "jwt", "cryptography")

FLAGS = {
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"in": [{"var": "country"}, ["JP", "DE"]]}, "on", "off"]},
        },
        "banner-text": {
            "state": "ENABLED",
            "variants": {"jp": "ようこそ", "default": "Hello"},
            "defaultVariant": "default",
            "targeting": {"if": [{"==": [{"var": "country"}, "JP"]}, "jp", None]},
        },
        "everyone-in": {
            "state": "ENABLED",
            "variants": {"in": 7, "out": 0},
            "defaultVariant": "out",
            "targeting": {"fractional": [["in", 100], ["out", 0]]},
        },
    }
}

# Run inside the fresh virtualenv (isolated mode: the repository is not on sys.path).
PROBE = textwrap.dedent(
    """
    import importlib.metadata, json, sys
    import vexil, vexil.client, vexil.openfeature
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from vexil.client import Client
    from vexil.openfeature import VexilProvider

    target = sys.argv[1]
    out = {"vexil_file": vexil.__file__}
    for mode in ("remote", "local"):
        with Client(target=target, mode=mode) as client:
            ready = client.wait_for_ready(20)
            out[mode] = {
                "ready": ready,
                "checkout_jp": client.bool_value("new-checkout", False, {"country": "JP"}),
                "checkout_us": client.bool_value("new-checkout", True, {"country": "US"}),
                "banner_jp": client.string_value("banner-text", "?", {"country": "JP"}),
                "banner_fr": client.string_value("banner-text", "?", {"country": "FR"}),
                "everyone_in": client.int_value("everyone-in", -1, {"targetingKey": "user-42"}),
                "missing": client.string_details("no-such-flag", "fallback").error_code,
            }
    api.set_provider_and_wait(VexilProvider(target=target, mode="local"))
    context = EvaluationContext(targeting_key="user-1", attributes={"country": "DE"})
    out["openfeature"] = api.get_client().get_boolean_value("new-checkout", False, context)
    api.shutdown()
    out["server_modules_loaded"] = sorted(
        name for name in sys.modules if name.split(".")[0] in {server_only!r}
    )
    out["distributions"] = sorted(d.metadata["Name"] for d in importlib.metadata.distributions())
    json.dump(out, sys.stdout)
    """
).replace("{server_only!r}", repr(set(SERVER_ONLY_MODULES)))

EXPECTED_EVALUATIONS = {
    "ready": True,
    "checkout_jp": True,
    "checkout_us": False,
    "banner_jp": "ようこそ",
    "banner_fr": "Hello",
    "everyone_in": 7,
    "missing": "FLAG_NOT_FOUND",
}


def _locked_requirements(names: set[str]) -> str:
    """The dev lock's entries (version and hashes) for `names`, as a requirements file."""
    wanted = {re.sub(r"[-_.]+", "-", name).lower() for name in names}
    entries = []
    for block in re.split(r"\n(?=\S)", (ROOT / "requirements" / "dev.lock").read_text()):
        match = re.match(r"([A-Za-z0-9_.-]+)==", block)
        if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() in wanted:
            lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
            entries.append("\n".join(lines))
    found = {re.sub(r"[-_.]+", "-", e.split("==")[0]).lower() for e in entries}
    assert found == wanted, f"not in requirements/dev.lock: {sorted(wanted - found)}"
    return "\n".join(entries) + "\n"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False, env=env)
    assert done.returncode == 0, f"{args[:6]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of a fresh virtualenv holding `vexil-client[openfeature]` and nothing else."""
    tmp = tmp_path_factory.mktemp("client-dist")
    # Build from a copy of the sources, so no build directory lands in the working tree.
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    for part in ("server/vexil", "clients/python", "clients/openfeature"):
        shutil.copytree(ROOT / part, src / part, ignore=ignore)
    wheels = tmp / "wheels"
    _run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src / "clients/python")])
    lock = tmp / "client.lock"
    lock.write_text(_locked_requirements(CLIENT_DISTRIBUTIONS - {"vexil-client"}))
    download = ["download", "--no-deps", "--require-hashes", "--only-binary=:all:", "-d", str(wheels)]
    _run([*PIP, *download, "-r", str(lock)])
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # --isolated: no configured index or extra wheel directory; only `wheels` can satisfy the client.
    install = ["install", "--no-index", "--find-links", str(wheels), "vexil-client[openfeature]"]
    _run([*PIP, "--isolated", "--python", str(python), *install])
    yield python


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("client-dist-server")
    flags = tmp / "flags.json"
    flags.write_text(json.dumps(FLAGS))
    with ServerProcess(tmp, "--store", "memory", "--flags", str(flags)) as server:
        yield server.target


def test_client_distribution_has_no_server_dependencies(client_python: Path) -> None:
    for module in (*SERVER_ONLY_MODULES, "vexil.app", "vexil.store", "vexil.http"):
        done = subprocess.run(
            [str(client_python), "-I", "-c", f"import {module}"], capture_output=True, text=True, timeout=60
        )
        assert f"ModuleNotFoundError: No module named '{module}'" in done.stderr, f"{module}: {done.stderr}"


def test_client_distribution_evaluates_remote_and_local(client_python: Path, target: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VEXIL_"))}
    done = _run([str(client_python), "-I", "-c", PROBE, target], env=env)
    out = json.loads(done.stdout)
    assert Path(out["vexil_file"]).is_relative_to(client_python.parents[1]), out["vexil_file"]
    assert out["remote"] == EXPECTED_EVALUATIONS
    assert out["local"] == EXPECTED_EVALUATIONS
    assert out["openfeature"] is True
    assert out["server_modules_loaded"] == []
    assert set(out["distributions"]) == CLIENT_DISTRIBUTIONS


# The top-level import names of the client's dependencies (as their projects document them).
IMPORT_NAMES = {
    "grpc": "grpcio",
    "google": "protobuf",
    "yaml": "PyYAML",
    "cbor2": "cbor2",
    "mmh3": "mmh3",
    "openfeature": "openfeature-sdk",
}


def _sources(project: Path) -> dict[str, Path]:
    """Module name -> source file of everything `project`'s pyproject.toml puts in its wheel."""
    setup = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {name: (project / folder).resolve() for name, folder in setup["package-dir"].items()}

    def folder(package: str) -> Path:
        for prefix in sorted(dirs, key=len, reverse=True):
            if package == prefix or package.startswith(prefix + "."):
                return dirs[prefix].joinpath(*package[len(prefix) :].split(".")[1:])
        raise AssertionError(f"no package-dir for {package}")

    sources = {}
    for package in setup["packages"]:
        for path in sorted(folder(package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            sources[name] = path
    for module in setup.get("py-modules", []):
        package, _, stem = module.rpartition(".")
        sources[module] = folder(package) / f"{stem}.py"
        sources.setdefault(package, folder(package) / "__init__.py")
    return sources


def test_every_import_of_the_client_stays_inside_its_distribution() -> None:
    """Statically, so imports inside functions count too (the install test sees only those that
    run): each `vexil` module the client's modules import is in its wheel, and each other
    import is the standard library or a declared dependency."""
    sources = _sources(ROOT / "clients" / "python")
    every_module = set(_sources(ROOT))  # the server's distribution: the whole namespace
    assert {"vexil.client.local", "vexil.engine.fractional", "vexil.wire", "vexil"} <= set(sources)
    assert {"vexil.config", "vexil.store.memory", "vexil.http.ofrep"} <= every_module - set(sources)
    project = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["openfeature"]]
    declared = {re.split(r"[<>=\[ ]", requirement)[0].lower() for requirement in requirements}
    outside = []
    for path in sources.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # (name, whether it is certainly a module): `from x import y` names x, and y, which is
            # a module when the namespace has one of that name, else a name inside x.
            if isinstance(node, ast.Import):
                names = [(alias.name, True) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [(node.module, True)] + [(f"{node.module}.{a.name}", False) for a in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for name, is_module in names:
                top = name.split(".")[0]
                if top == "vexil":
                    if (is_module or name in every_module) and name not in sources:
                        outside.append(f"{where}: {name} is not in vexil-client")
                elif (
                    top not in sys.stdlib_module_names and IMPORT_NAMES.get(top, top).lower() not in declared
                ):
                    outside.append(f"{where}: {name} is not a dependency of vexil-client")
    assert outside == [], "\n".join(outside)
