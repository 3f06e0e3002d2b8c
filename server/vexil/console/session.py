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
least recently used sessions, never another caller's.  A caller is the principal's subject; an
anonymous session (the open local profile, where nobody signs in) is a caller of its own, since
nothing tells two anonymous visitors apart: a script or a second browser opening sessions must not
close the operator's page.  Only a full table (`MAX_SESSIONS`) drops expired sessions first, then
the least recently used, so a page in use (its requests and its event stream's heartbeats touch
its session) outlives a flood of sessions opened and never used again.
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
"""Sessions one caller (one subject: a key id, a JWT's `sub`; each anonymous session alone) holds."""


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
        session_id = secrets.token_urlsafe(32)
        self._make_room(now, principal.subject if principal is not None else caller_of_anonymous(session_id))
        session = Session(
            id=session_id,
            csrf=secrets.token_urlsafe(32),
            expires_at=ends,
            credential=credential,
            principal=principal,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown or expired: then forgotten).  Finding it
        makes it the most recently used (the table keeps that order: see `_make_room`)."""
        session = self._by_id.pop(session_id, None) if session_id else None
        if session is None:
            return None
        if session.expires_at <= self.clock():
            return None
        self._by_id[session_id] = session
        return session

    def close(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def remaining(self, session: Session) -> float:
        return max(0.0, session.expires_at - self.clock())

    def __len__(self) -> int:
        return len(self._by_id)

    def _make_room(self, now: float, caller: str) -> None:
        """Room for one more session of `caller`.  The dict is in order of last use (`get` moves
        a session to its end), so "first" is "least recently used"."""
        held = [sid for sid, s in self._by_id.items() if caller_of(s) == caller]
        for sid in held[: max(0, len(held) - MAX_SESSIONS_PER_CALLER + 1)]:
            del self._by_id[sid]
        if len(self._by_id) < self.limit:
            return
        for sid in [sid for sid, s in self._by_id.items() if s.expires_at <= now]:
            del self._by_id[sid]
        while len(self._by_id) >= self.limit:
            del self._by_id[next(iter(self._by_id))]


def caller_of(session: Session) -> str:
    """Whose share of the server's session table and event streams a session draws from: the
    principal's subject, or, for an anonymous session, the session itself."""
    if session.principal is not None:
        return session.principal.subject
    return caller_of_anonymous(session.id)


def caller_of_anonymous(session_id: str) -> str:
    # A subject is "key:..." or "jwt:...": this prefix names no principal.
    return f"session:{session_id}"
