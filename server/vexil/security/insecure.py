"""Running insecure is loud: a WARNING at start and again every few minutes, for as long as the
server serves without TLS or authentication where that matters (`config.insecure_reasons`).

A development loop (`--insecure`) is fine; one left running in production by mistake must not
look like a healthy server in its logs. The `vexil_insecure` gauge and GetStatus say it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from vexil.background import BackgroundTask

log = logging.getLogger("vexil.security")

REPEAT_SECONDS = 300.0
"""How often the warning is repeated while the server runs insecure."""


class InsecureNotice:
    """Logs `reasons` at start and every `REPEAT_SECONDS` until stopped; silent when empty."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        self._task = BackgroundTask("vexil-insecure-notice")

    def warn(self) -> None:
        log.warning(
            "INSECURE: %s. Anyone who reaches this server can read or change flags and see "
            "credentials in transit; set tls_cert/tls_key and auth_mode required (and drop --insecure)",
            "; ".join(self.reasons),
        )

    def start(self) -> None:
        if not self.reasons or self._task.running:
            return
        self.warn()
        self._task.every(REPEAT_SECONDS, self._warn_again)

    async def stop(self) -> None:
        await self._task.stop()

    async def _warn_again(self) -> None:
        self.warn()
