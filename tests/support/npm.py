"""Node packages pinned by a committed package-lock.json, installed with `npm ci` when needed.

The one way the suite gets JavaScript tools (the flagd core in tests/js, the buf CLI in
tools/buf, the Node client example in clients/node): `npm_ci(directory)` installs exactly what
the directory's lock file names into its node_modules (git-ignored), and only when the lock
changed since the last install (its hash is kept beside the packages), so reruns start at once.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

STAMP_NAME = ".installed-lock-sha256"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is required by the tests (Node 20 or later, with npm)")
    return found


def npm_ci(directory: Path) -> None:
    """Install `directory`'s pinned packages unless the installed ones match its lock file."""
    lock = directory / "package-lock.json"
    stamp = directory / "node_modules" / STAMP_NAME
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    subprocess.run(
        [tool("npm"), "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=directory,
        check=True,
        timeout=600,
        capture_output=True,
    )
    stamp.write_text(digest + "\n")
