"""Generated protobuf code must be exactly what `make proto` produces (no hand edits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_stubs_match_make_proto() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_detects_a_hand_edit(tmp_path, monkeypatch) -> None:
    """The check itself can fail: an edited copy of the generated tree is reported stale."""
    sys.path.insert(0, str(ROOT / "proto"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "proto"))
    out = tmp_path / "server"
    generate.generate(out)
    edited = out / "vexil" / "v1" / "flag_pb2.py"
    edited.write_text(edited.read_text() + "\n# hand edit\n")
    monkeypatch.setattr(generate, "OUT_DIR", out)
    assert generate.stale_files() == ["vexil/v1/flag_pb2.py"]
