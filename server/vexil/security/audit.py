"""Audit records of security events: key created, rotated, revoked; authentication failures.

They are log records on the `vexil.security.audit` logger, so they go wherever the server's
logs go, with the event's fields both in the message and as attributes (`record.audit`) for
structured handlers.  They name the key by id and the caller by peer address, never the secret
or the token: callers only ever pass ids, roles and reasons here.

Flag changes are audited elsewhere (the change log).  Authentication failures are the one event
an attacker controls the rate of, so they are sampled: at most `FAILURES_PER_SECOND` are
written, and the next record says how many were left out.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("vexil.security.audit")

FAILURES_PER_SECOND = 20


def _shown(value: Any) -> str:
    """A field's value as the one-line record writes it: quoted (`repr`) unless it is plain
    printable text without spaces, so no value (an actor is a JWT subject, chosen by whoever
    named the user) can end the line and write a record of its own, or pass for another field."""
    text = str(value)
    if text.isprintable() and not any(c.isspace() or c in "'\"=" for c in text):
        return text
    return repr(text)


def _emit(level: int, event: str, **fields: Any) -> None:
    text = " ".join(f"{name}={_shown(value)}" for name, value in fields.items() if value not in (None, ""))
    log.log(level, "%s %s", event, text, extra={"audit": {"event": event, **fields}})


def key_created(key_id: str, *, environment: str, role: str, actor: str, peer: str) -> None:
    _emit(
        logging.INFO, "key.created", key_id=key_id, environment=environment, role=role, actor=actor, peer=peer
    )


def key_rotated(key_id: str, *, overlap_seconds: float, actor: str, peer: str) -> None:
    _emit(
        logging.INFO,
        "key.rotated",
        key_id=key_id,
        overlap_seconds=f"{overlap_seconds:.0f}",
        actor=actor,
        peer=peer,
    )


def key_revoked(key_id: str, *, reason: str, actor: str, peer: str) -> None:
    _emit(logging.INFO, "key.revoked", key_id=key_id, reason=reason, actor=actor, peer=peer)


class _Sampler:
    """A one-second window counter: how many failure records may still be written."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.window = 0
        self.written = 0
        self.suppressed = 0

    def admit(self) -> tuple[bool, int]:
        """(write this one?, how many were suppressed before it)."""
        second = int(time.monotonic())
        if second != self.window:
            self.window, self.written = second, 0
        if self.written >= self.per_second:
            self.suppressed += 1
            return False, 0
        self.written += 1
        suppressed, self.suppressed = self.suppressed, 0
        return True, suppressed


_failures = _Sampler(FAILURES_PER_SECOND)


def auth_failed(reason: str, *, peer: str, method: str, key_id: str = "", subject: str = "") -> None:
    """`reason` is vexil's own message (never text taken from the request)."""
    write, suppressed = _failures.admit()
    if write:
        _emit(
            logging.WARNING,
            "auth.failed",
            reason=reason,
            key_id=key_id,
            subject=subject,
            peer=peer,
            method=method,
            suppressed_before=suppressed or None,
        )
