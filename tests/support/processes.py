"""Ending a child process the one way the suite, the benchmark and the dev scripts do: SIGTERM
(so it can shut down cleanly), and SIGKILL only when it has not ended after `grace` seconds.
Every wait is bounded."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def terminate(proc: subprocess.Popen[Any], grace: float = 15.0) -> int:
    """End `proc` (nothing if it already has) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
