"""The JavaScript flagd core (`@openfeature/flagd-core`, pinned in tests/js) as a reference.

flagd itself buckets `fractional` by hashing the bucketing string, and so does its JavaScript
core; the Python core hashes CBOR instead.  The tests compare vexil's default (string) hashing
with the JavaScript core, run under Node by `tests/js/evaluate.js`.

`install()` runs `npm ci` into tests/js/node_modules (git-ignored) when the lock file changed
since the last install (its hash is kept beside the packages), so reruns start at once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "js"
LOCK = JS_DIR / "package-lock.json"
STAMP = JS_DIR / "node_modules" / ".installed-lock-sha256"
SCRIPT = JS_DIR / "evaluate.js"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is required by the engine tests (Node 20 or later, with npm)")
    return found


def install() -> None:
    """Install the pinned packages unless the installed ones match the lock file."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    subprocess.run(
        [_tool("npm"), "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=JS_DIR,
        check=True,
        timeout=600,
        capture_output=True,
    )
    STAMP.write_text(digest + "\n")


Evaluation = tuple[str, Mapping[str, Any]]
"""(flag key, context)."""


def resolve(cases: Sequence[tuple[Mapping[str, Any], Sequence[Evaluation]]]) -> list[list[dict[str, Any]]]:
    """For each (flag-set document, evaluations): the JavaScript core's string resolutions,
    `{"value", "variant", "reason", "errorCode"}` each (value null for the caller's default)."""
    payload = {
        "cases": [
            {"flags": flags, "evaluations": [{"key": key, "context": ctx} for key, ctx in evaluations]}
            for flags, evaluations in cases
        ]
    }
    done = subprocess.run(
        [_tool("node"), str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the JavaScript core failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)
