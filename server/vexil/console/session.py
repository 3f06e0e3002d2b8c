"""Console sessions: a random id in a cookie standing for a credential the server already checked.

Signing in hands the server an API key or a JWT once; the browser then holds only an opaque
session id in an HttpOnly, Secure, SameSite=Strict cookie, so page scripts never see the
credential.  The server keeps the credential in memory and authenticates it again on every request
with the same `Authenticator` the API uses: a key revoked or rotated out, or a JWT past its expiry,
ends the session at once, and the caller's role is always the credential's current one.

A session lasts at most `MAX_LIFETIME` and never past its credential's own expiry.  Each carries
a synchronizer CSRF token that every write must send back in the `X-CSRF-Token` header (a forged
cross-site request can carry the cookie, never the header).

Sessions live in this process's memory: a restart signs everyone out, and replicas behind a load
balancer need sticky sessions (or a sign-in per replica).  The table is bounded, and so is each
caller's share of it: a caller signing in again and again (the lowest role can) closes its own
oldest sessions, never another caller's.  Only a full table (`MAX_SESSIONS`, which takes that many
callers' shares) drops expired sessions first, then the oldest.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from vexil.errors import PermissionDenied
from vexil.identity import Principal
from vexil.reasons import Reason

COOKIE = "vexil_console"
CSRF_HEADER = "X-CSRF-Token"
MAX_LIFETIME = 3600.0
"""At most one hour, whatever the credential allows."""
MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_CALLER = 20
"""Sessions one caller (one subject: a key id, a JWT's `sub`; all anonymous ones together) holds."""


class CsrfTokenInvalid(PermissionDenied, reason=Reason.CSRF_TOKEN_INVALID):
    """A write without the session's CSRF token, or with another: the page is stale or the request
    forged.  Not ROLE_TOO_LOW: the credentials' role may well call the method."""

    def __init__(self) -> None:
        super().__init__(f"missing or wrong {CSRF_HEADER} header: reload the page")


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    expires_at: float
    credential: str = ""
    """The API key or JWT signed in with; "" for the open local profile (no credentials exist)."""
    principal: Principal | None = None
    """Who signed in, as last authenticated (None: anonymous, the open local profile)."""

    def csrf_matches(self, sent: str) -> bool:
        """Whether `sent` (a request header) is this session's token.  A header whose bytes are not
        ASCII (aiohttp hands bytes that are not UTF-8 over as surrogate escapes, which do not
        encode) is no token: tokens are ASCII, so it is refused before the comparison."""
        return bool(sent) and sent.isascii() and hmac.compare_digest(sent.encode(), self.csrf.encode())


class Sessions:
    """The session table of one process (see the module docstring)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, limit: int = MAX_SESSIONS) -> None:
        self.clock = clock
        self.limit = limit
        self._by_id: dict[str, Session] = {}

    def open(self, *, credential: str, principal: Principal | None, expires_at: float) -> Session:
        """A new session that ends at `expires_at` or after `MAX_LIFETIME`, whichever is first."""
        now = self.clock()
        ends = min(now + MAX_LIFETIME, expires_at) if expires_at else now + MAX_LIFETIME
        self._make_room(now, principal.subject if principal is not None else "")
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires_at=ends,
            credential=credential,
            principal=principal,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown or expired: then forgotten)."""
        session = self._by_id.get(session_id) if session_id else None
        if session is None:
            return None
        if session.expires_at <= self.clock():
            del self._by_id[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def remaining(self, session: Session) -> float:
        return max(0.0, session.expires_at - self.clock())

    def __len__(self) -> int:
        return len(self._by_id)

    def _make_room(self, now: float, subject: str) -> None:
        held = [sid for sid, s in self._by_id.items() if _subject(s) == subject]
        for sid in held[: max(0, len(held) - MAX_SESSIONS_PER_CALLER + 1)]:  # its oldest first
            del self._by_id[sid]
        if len(self._by_id) < self.limit:
            return
        for sid in [sid for sid, s in self._by_id.items() if s.expires_at <= now]:
            del self._by_id[sid]
        while len(self._by_id) >= self.limit:  # the oldest first (dicts keep insertion order)
            del self._by_id[next(iter(self._by_id))]


def _subject(session: Session) -> str:
    return session.principal.subject if session.principal is not None else ""
