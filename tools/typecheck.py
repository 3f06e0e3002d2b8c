"""Type-check the `vexil` namespace with mypy (`make lint` runs it).

The distribution maps one import namespace onto three source folders (pyproject.toml:
`vexil` = server/vexil, `vexil.cli` = clients/cli, `vexil.client` = clients/python,
`vexil.openfeature` = clients/openfeature). mypy resolves modules from folders, so this builds
that namespace as a tree of links under build/, checks it as the package `vexil`, and prints each
finding with the path of the real source file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
MOUNTS = {"cli": "clients/cli", "client": "clients/python", "openfeature": "clients/openfeature"}


def build_tree() -> dict[str, str]:
    """The link tree, and how to map its paths back to the sources (link prefix -> real prefix)."""
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "vexil"
    package.mkdir(parents=True)
    back: dict[str, str] = {}
    for entry in sorted((ROOT / "server" / "vexil").iterdir()):
        if entry.name == "__pycache__":
            continue
        (package / entry.name).symlink_to(entry)
        back[f"vexil/{entry.name}"] = f"server/vexil/{entry.name}"
    for name, folder in MOUNTS.items():
        (package / name).symlink_to(ROOT / folder)
        back[f"vexil/{name}"] = folder
    return back


def main() -> int:
    back = build_tree()
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "vexil"],
        cwd=TREE,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(TREE)},
    )
    prefixes = sorted(back, key=len, reverse=True)
    for line in (result.stdout + result.stderr).splitlines():
        for prefix in prefixes:
            if line.startswith(prefix + "/") or line.startswith(prefix + ":"):
                line = back[prefix] + line[len(prefix) :]
                break
        print(line)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
