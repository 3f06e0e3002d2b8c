"""The DynamoDB emulator (moto) as a process on a loopback port: the one launcher the test suite
(`tests.support.dynamo`), the benchmark (`bench.servers`) and `make run-dynamodb`
(`scripts/run_dynamodb.py`) start it with.

Two servers can be started.  The single-threaded one (`moto_single.py`) serves one request at a
time, so every transaction is atomic: the tests race writers against it.  moto's own
`moto_server` serves each request on a thread: what a developer runs by hand, and what the
benchmark loads.  Either way the request log goes to a file, never a pipe (moto logs every
request, and an unread pipe fills up and freezes it), every wait is bounded, and a process that
does not answer in time is stopped before the error is raised.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.support.processes import terminate

START_TIMEOUT_S = 20.0
SINGLE_THREADED_SERVER = Path(__file__).with_name("moto_single.py")


class EmulatorError(RuntimeError):
    """The emulator did not start: it exited, or gave no answer in time (the message says which,
    with the end of its log)."""


def answers(endpoint: str) -> bool:
    """Whether a moto server answers at `endpoint` (its state API, a cheap GET)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1.0):
            return True
    except (urllib.error.URLError, OSError):
        return False


def moto_server() -> str:
    """The `moto_server` of this virtualenv (else the one on PATH)."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise EmulatorError(
            "moto_server is not installed: it comes with the dev tools (make .venv/.installed)"
        )
    return found


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """One emulator process on `127.0.0.1:port` (a free port when 0), logging to `log`: `start()`
    returns once it answers, `stop()` ends it (SIGTERM, then SIGKILL after `grace` seconds); also
    a context manager."""

    def __init__(
        self, log: Path, *, port: int = 0, threaded: bool = False, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = port or _free_loopback_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.threaded = threaded
        self.env = {**(os.environ if env is None else env), "MOTO_PORT": str(self.port)}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        host_port = ["127.0.0.1", str(self.port)]
        if self.threaded:
            return [moto_server(), "-H", host_port[0], "-p", host_port[1]]
        return [sys.executable, str(SINGLE_THREADED_SERVER), *host_port]

    def start(self, timeout: float = START_TIMEOUT_S) -> Emulator:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout
        while not answers(self.endpoint):
            code = self.proc.poll()
            if code is not None:
                raise EmulatorError(f"the DynamoDB emulator exited with {code}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(
                    f"the DynamoDB emulator gave no answer on {self.endpoint} in {timeout:.0f} s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.1)
        return self

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is not None:
            terminate(self.proc, grace)

    def _log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
