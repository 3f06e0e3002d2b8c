"""The error hierarchy of the service core.

Core code raises these; each adapter at the edge (gRPC, HTTP, CLI) maps them to its own status
once, in one place, so the mapping is consistent and the messages reach the caller unchanged.
Messages say what to fix and never carry secrets.

Each class names a `Reason` (`vexil.reasons`), the stable word a program branches on; a subclass
narrows it where callers act differently (a missing flag vs. a missing API key), so the raise site
picks the cause and the adapters only translate.
"""

from __future__ import annotations

from typing import ClassVar

from vexil.reasons import Reason


class VexilError(Exception):
    """Base of every error the service reports to a caller on purpose.

    A subclass declares its status (`code`) and reason as class keywords, e.g.
    `class NotFound(VexilError, code="NOT_FOUND", reason=Reason.NOT_FOUND)`, so each class is one
    statement that reads like a row of the status table; what it leaves out it inherits, so a
    narrower cause names only the reason that sets it apart."""

    code: ClassVar[str] = "UNKNOWN"
    reason: ClassVar[Reason] = Reason.INTERNAL

    def __init_subclass__(cls, *, code: str | None = None, reason: Reason | None = None) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if reason is not None:
            cls.reason = reason

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VexilError, code="INVALID_ARGUMENT", reason=Reason.INVALID_ARGUMENT):
    """The request is malformed; `field` names what to fix (a dotted path where possible)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.description = message
        """The message without the field prefix (a `BadRequest` violation's description)."""


class NotFound(VexilError, code="NOT_FOUND", reason=Reason.NOT_FOUND):
    """What the request names does not exist."""


class AlreadyExists(VexilError, code="ALREADY_EXISTS", reason=Reason.ALREADY_EXISTS):
    """A create names something that exists already."""


class Conflict(VexilError, code="ABORTED", reason=Reason.STALE_VERSION):
    """An optimistic-concurrency check failed: the caller's expected version is stale."""

    def __init__(self, message: str, current_version: int = 0) -> None:
        super().__init__(message)
        self.current_version = current_version


class FailedPrecondition(VexilError, code="FAILED_PRECONDITION", reason=Reason.FAILED_PRECONDITION):
    """The request is well formed but the system is not in a state that allows it."""


class Unavailable(VexilError, code="UNAVAILABLE", reason=Reason.STORE_UNAVAILABLE):
    """The backing store cannot be reached; nothing was written."""


class OutcomeUnknown(Unavailable, reason=Reason.WRITE_OUTCOME_UNKNOWN):
    """A write was sent to the store and its answer was lost (a dropped connection, the write
    deadline): it may have been applied, so a blind retry could apply it twice."""


class ShuttingDown(Unavailable, reason=Reason.SERVER_SHUTTING_DOWN):
    """This replica is stopping: retry, on another one (what ends its streams at shutdown)."""


class PermissionDenied(VexilError, code="PERMISSION_DENIED", reason=Reason.ROLE_TOO_LOW):
    """The caller's credentials are valid but their role may not call this method."""


class Unauthenticated(VexilError, code="UNAUTHENTICATED", reason=Reason.CREDENTIALS_INVALID):
    """The caller's credentials are not valid."""


class ResourceExhausted(VexilError, code="RESOURCE_EXHAUSTED", reason=Reason.RATE_LIMITED):
    """A rate limit (per client or the server's capacity) is exceeded; `retry_after`: seconds to wait."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CannotListen(VexilError, code="FAILED_PRECONDITION", reason=Reason.LISTEN_FAILED):
    """A listener could not bind its address (a port in use, an address not of this host)."""


# -- narrower causes: the same status, a reason of their own ----------------------------------


class FlagNotFound(NotFound, reason=Reason.FLAG_NOT_FOUND):
    """The flag does not exist in the environment."""


class VersionNotFound(NotFound, reason=Reason.VERSION_NOT_FOUND):
    """The flag has no such version (or no history at all)."""


class EnvironmentNotServed(NotFound, reason=Reason.ENVIRONMENT_NOT_SERVED):
    """This server does not serve the environment."""


class ApiKeyNotFound(NotFound, reason=Reason.API_KEY_NOT_FOUND):
    """The API key does not exist (or is outside the caller's scope)."""


class FlagAlreadyExists(AlreadyExists, reason=Reason.FLAG_ALREADY_EXISTS):
    """A flag with this key exists in the environment."""


class ApiKeyAlreadyExists(AlreadyExists, reason=Reason.API_KEY_ALREADY_EXISTS):
    """An API key with this id exists."""


class KillSwitchAdminOnly(FailedPrecondition, reason=Reason.KILL_SWITCH_ADMIN_ONLY):
    """A definition write would change the flag's state, which only SetKillSwitch may do."""


class FlagLimitReached(FailedPrecondition, reason=Reason.FLAG_LIMIT_REACHED):
    """The environment holds as many flags as the cache profile allows."""


class FlagDeleted(FailedPrecondition, reason=Reason.FLAG_DELETED):
    """A rollback to (or of) a deleted flag: create it again instead."""


class AuthDisabled(FailedPrecondition, reason=Reason.AUTH_DISABLED):
    """The call manages API keys but the server runs without authentication."""


class InvalidSelector(FailedPrecondition, reason=Reason.INVALID_SELECTOR):
    """A flagd selector that is not understood or names an environment not served."""


class EnvironmentLoading(Unavailable, reason=Reason.ENVIRONMENT_LOADING):
    """The environment's first snapshot is not loaded yet."""


class EnvironmentNotAllowed(PermissionDenied, reason=Reason.ENVIRONMENT_NOT_ALLOWED):
    """The credentials may not act in (or manage keys of) that environment."""


class MethodClosed(PermissionDenied, reason=Reason.METHOD_CLOSED):
    """The method has no access rule: it is closed to everyone."""


class CredentialsMissing(Unauthenticated, reason=Reason.CREDENTIALS_MISSING):
    """The call carries no credentials where they are required."""
