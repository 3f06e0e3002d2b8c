"""`make lint` in the suite: ruff and the type checker run on every CI run, not only by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACES = ["server", "clients", "tests", "bench", "scripts", "tools"]
RUFF = str(Path(sys.executable).with_name("ruff"))


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    checked = _run(RUFF, "check", *PLACES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = _run(RUFF, "format", "--check", *PLACES)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_the_type_checker_is_clean() -> None:
    result = _run(sys.executable, "tools/typecheck.py")
    assert result.returncode == 0, result.stdout + result.stderr
