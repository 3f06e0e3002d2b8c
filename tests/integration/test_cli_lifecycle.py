"""What a newcomer meets first in the `vexil` command: `--version`, and `vexil watch` telling a
script when its stream ended because the server went away (exit 6), not success."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from tests.support.servers import VEXIL, ServerProcess

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_distribution_version() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([VEXIL, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"vexil {expected}"), done.stderr


def test_watch_exits_6_when_the_server_goes_away(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--shutdown-grace", "1") as server:
        watch = subprocess.Popen(
            [VEXIL, "watch", "--target", server.target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert watch.stdout is not None
            first = watch.stdout.readline()  # the snapshot: the stream is open
            assert "SNAPSHOT" in first, first
            server.stop()
            code = watch.wait(timeout=30)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait(5)
    assert code == 6, watch.stderr.read() if watch.stderr else ""
    assert watch.stderr is not None and "stream" in watch.stderr.read()


def test_watch_with_count_ends_normally(tmp_path: Path) -> None:
    with ServerProcess(tmp_path) as server:
        done = subprocess.run(
            [VEXIL, "watch", "--target", server.target, "--count", "1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
