"""The closed set of error reasons vexil gives a caller, whatever the status code.

A gRPC status code says what kind of failure happened; a reason says which one, in a word a
program can branch on (`STALE_VERSION`: re-read and retry; `FLAG_NOT_FOUND`: create it first).
Each gRPC error carries one in an `ErrorInfo` detail (AIP-193) with `DOMAIN`, so clients in any
language can tell the cases apart without parsing English messages.

The set is closed and part of the API: a reason is never renamed or reused for another meaning,
only added.  The README lists every member (a test keeps the two in step).  Every `VexilError`
subclass names one (`vexil.errors`); refusals made outside the core (an undecodable request, a
server shutting down, revoked stream credentials) name theirs where they are made.
"""

from __future__ import annotations

from enum import StrEnum, unique

DOMAIN = "vexil.dev"
"""`ErrorInfo.domain` of every vexil error: the namespace the reasons are unique in."""


@unique
class Reason(StrEnum):
    """One member per distinct cause a caller may want to act on; the value is the wire name."""

    # INVALID_ARGUMENT
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    """A request field is missing or wrong; `BadRequest` names the field."""
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    """The request bytes do not decode as the method's message (or nest too deeply), or the call
    brought no request message (`vexil.transport.arrival`)."""
    # NOT_FOUND
    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    """No flag with that key in the environment."""
    VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
    """The flag has no such version (or no history at all)."""
    ENVIRONMENT_NOT_SERVED = "ENVIRONMENT_NOT_SERVED"
    """This server does not serve the environment named."""
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"
    """No API key with that id (or none the caller may manage)."""
    NOT_FOUND = "NOT_FOUND"
    """Something else named by the request does not exist (a backup, a table)."""
    # ALREADY_EXISTS
    FLAG_ALREADY_EXISTS = "FLAG_ALREADY_EXISTS"
    """A flag with that key already exists in the environment."""
    API_KEY_ALREADY_EXISTS = "API_KEY_ALREADY_EXISTS"
    """An API key with that id already exists."""
    ALREADY_EXISTS = "ALREADY_EXISTS"
    """Something else the request would create already exists."""
    # ABORTED
    STALE_VERSION = "STALE_VERSION"
    """The expected version is not the stored one; metadata `current_version` says which is."""
    # FAILED_PRECONDITION
    KILL_SWITCH_ADMIN_ONLY = "KILL_SWITCH_ADMIN_ONLY"
    """The write would change a flag's state: only SetKillSwitch kills or revives."""
    FLAG_LIMIT_REACHED = "FLAG_LIMIT_REACHED"
    """The environment holds as many flags as the server's cache profile allows."""
    FLAG_DELETED = "FLAG_DELETED"
    """A rollback to (or of) a deleted flag: create it again instead."""
    AUTH_DISABLED = "AUTH_DISABLED"
    """The call manages API keys but the server runs without authentication."""
    INVALID_SELECTOR = "INVALID_SELECTOR"
    """A flagd selector that is not understood or names an environment not served."""
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    """Another state of the system prevents the operation (the message says which)."""
    LISTEN_FAILED = "LISTEN_FAILED"
    """A listener could not bind its address (start-up only, never an RPC answer)."""
    # UNAVAILABLE
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    """The backing store cannot be reached; nothing was written. Retry later."""
    WRITE_OUTCOME_UNKNOWN = "WRITE_OUTCOME_UNKNOWN"
    """The write reached the store but its answer did not come back: it may have been applied.
    Read before retrying."""
    ENVIRONMENT_LOADING = "ENVIRONMENT_LOADING"
    """The environment's first snapshot is still loading. Retry shortly."""
    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"
    """This replica is stopping; retry, on another replica."""
    # PERMISSION_DENIED
    ROLE_TOO_LOW = "ROLE_TOO_LOW"
    """The credentials' role may not call this method."""
    ENVIRONMENT_NOT_ALLOWED = "ENVIRONMENT_NOT_ALLOWED"
    """The credentials may not act in (or manage keys of) that environment."""
    METHOD_CLOSED = "METHOD_CLOSED"
    """The method has no access rule: it is closed to everyone."""
    CSRF_TOKEN_INVALID = "CSRF_TOKEN_INVALID"
    """A console write without its session's `X-CSRF-Token` header, or with another token."""
    # UNAUTHENTICATED
    CREDENTIALS_MISSING = "CREDENTIALS_MISSING"
    """No `authorization` header."""
    CREDENTIALS_INVALID = "CREDENTIALS_INVALID"
    """The credentials are malformed, unknown, expired or revoked."""
    CREDENTIALS_CLOSED = "CREDENTIALS_CLOSED"
    """An open stream's credentials stopped being valid (revoked, rotated, expired)."""
    # RESOURCE_EXHAUSTED
    RATE_LIMITED = "RATE_LIMITED"
    """A rate limit (per client or the server's capacity) is exceeded; `RetryInfo` says when."""
    EVALUATION_QUOTA_EXCEEDED = "EVALUATION_QUOTA_EXCEEDED"
    """This client's evaluation quota is exceeded; `RetryInfo` says when."""
    # flagd evaluation (the flagd-compatible services only)
    TYPE_MISMATCH = "TYPE_MISMATCH"
    """The flag's value is not of the type the caller resolved it as."""
    PARSE_ERROR = "PARSE_ERROR"
    """The flag's definition could not be evaluated as stored."""
    EVALUATION_FAILED = "EVALUATION_FAILED"
    """The evaluation failed for another reason (the message says which)."""
    # INTERNAL
    INTERNAL = "INTERNAL"
    """A bug: the server log has the traceback."""
