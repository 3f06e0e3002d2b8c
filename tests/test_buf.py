"""The gRPC contracts under buf: `buf lint` on vexil's protos, `buf breaking` against the release.

`proto/baseline.binpb` is the image of the protos as released (`buf build --exclude-source-info`);
every later change must stay wire- and source-compatible with it (buf's FILE rules), flagd's
copies included.  The buf CLI is the one pinned in tools/buf, installed with `npm ci`.
Deliberately broken copies of the protos show that each check can fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.npm import npm_ci

ROOT = Path(__file__).resolve().parents[1]
BUF_DIR = ROOT / "tools" / "buf"
BASELINE = ROOT / "proto" / "baseline.binpb"
FLAG_PROTO = Path("proto/vexil/v1/flag.proto")
FLAGD_PROTO = Path("proto/openfeature/schemas/protobuf/flagd/evaluation/v1/evaluation.proto")

Buf = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def buf() -> Buf:
    npm_ci(BUF_DIR)
    binary = BUF_DIR / "node_modules" / ".bin" / "buf"

    def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=120)

    return run


def copy_of_protos(tmp: Path) -> Path:
    """The workspace (buf.yaml and proto/) in `tmp`, to change without touching the real one."""
    shutil.copy(ROOT / "buf.yaml", tmp / "buf.yaml")
    shutil.copytree(ROOT / "proto", tmp / "proto", ignore=shutil.ignore_patterns("*.py", "*.binpb"))
    return tmp


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def test_buf_is_the_pinned_cli(buf: Buf) -> None:
    pinned = json.loads((BUF_DIR / "package.json").read_text())["dependencies"]["@bufbuild/buf"]
    assert buf("--version").stdout.strip() == pinned


def test_lint_passes(buf: Buf) -> None:
    done = buf("lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_protos_are_compatible_with_the_release(buf: Buf) -> None:
    done = buf("breaking", "--against", str(BASELINE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_renumbered_field_breaks(buf: Buf, tmp_path: Path) -> None:
    work = copy_of_protos(tmp_path)
    edit(work / FLAG_PROTO, "  string key = 1;", "  string key = 99;")
    done = buf("breaking", "--against", str(BASELINE), cwd=work)
    assert done.returncode != 0
    assert 'field "1" with name "key" on message "Flag" was deleted' in done.stdout, done.stdout


def test_a_renumbered_flagd_field_breaks(buf: Buf, tmp_path: Path) -> None:
    """flagd's copies are outside lint, not outside breaking: providers depend on them."""
    work = copy_of_protos(tmp_path)
    edit(work / FLAGD_PROTO, "  map<string, AnyFlag> flags = 1;", "  map<string, AnyFlag> flags = 7;")
    done = buf("breaking", "--against", str(BASELINE), cwd=work)
    assert done.returncode != 0
    assert "flagd" in done.stdout and '"flags"' in done.stdout, done.stdout


def test_lint_fails_on_a_badly_named_message_but_not_in_flagd(buf: Buf, tmp_path: Path) -> None:
    work = copy_of_protos(tmp_path)
    original = (work / FLAG_PROTO).read_text()
    (work / FLAG_PROTO).write_text(original + "\nmessage badly_named {}\n")
    done = buf("lint", cwd=work)
    assert done.returncode != 0
    assert 'Message name "badly_named" should be PascalCase' in done.stdout, done.stdout

    (work / FLAG_PROTO).write_text(original)
    flagd = work / FLAGD_PROTO
    flagd.write_text(flagd.read_text() + "\nmessage badly_named {}\n")
    done = buf("lint", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
