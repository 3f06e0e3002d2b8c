"""Progress of long operations (scans, batch writes, waiting for a backup or a restore).

Written to standard error so that `--json` output on standard output stays machine-readable: on
a terminal one line is rewritten in place, otherwise a line at most every `interval` seconds (CI
logs stay short).  `Progress.quiet()` reports nothing, for library callers and tests.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, interval: float = 2.0, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.tty = enabled and self.stream.isatty()
        self._last = 0.0
        self._open_line = False
        self._started = time.monotonic()

    @classmethod
    def quiet(cls) -> Progress:
        return cls(enabled=False)

    def start(self, what: str) -> None:
        """A new phase: resets the clock the updates report."""
        self._started = time.monotonic()
        self._last = 0.0
        self._write(f"{what} ...", force=True)

    def update(self, message: str) -> None:
        """A running update ("scanned 1200 items"); throttled when not on a terminal."""
        elapsed = time.monotonic() - self._started
        self._write(f"{message} ({elapsed:.1f} s)")

    def done(self, message: str) -> None:
        elapsed = time.monotonic() - self._started
        self._write(f"{message} ({elapsed:.1f} s)", force=True)
        self._end_line()

    def _write(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._open_line = True
        elif force or now - self._last >= self.interval:
            self.stream.write(text + "\n")
        else:
            return
        self._last = now
        self.stream.flush()

    def _end_line(self) -> None:
        if self.tty and self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
