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
    """Base of every error the service reports to a caller on purpose."""

    code = "UNKNOWN"
    reason: ClassVar[Reason] = Reason.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VexilError):
    """The request is malformed; `field` names what to fix (a dotted path where possible)."""

    code = "INVALID_ARGUMENT"
    reason = Reason.INVALID_ARGUMENT

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.description = message
        """The message without the field prefix (a `BadRequest` violation's description)."""


class NotFound(VexilError):
    code = "NOT_FOUND"
    reason = Reason.NOT_FOUND


class AlreadyExists(VexilError):
    code = "ALREADY_EXISTS"
    reason = Reason.ALREADY_EXISTS


class Conflict(VexilError):
    """An optimistic-concurrency check failed: the caller's expected version is stale."""

    code = "ABORTED"
    reason = Reason.STALE_VERSION

    def __init__(self, message: str, current_version: int = 0) -> None:
        super().__init__(message)
        self.current_version = current_version


class FailedPrecondition(VexilError):
    code = "FAILED_PRECONDITION"
    reason = Reason.FAILED_PRECONDITION


class Unavailable(VexilError):
    """The backing store cannot be reached; nothing was written."""

    code = "UNAVAILABLE"
    reason = Reason.STORE_UNAVAILABLE


class PermissionDenied(VexilError):
    code = "PERMISSION_DENIED"
    reason = Reason.ROLE_TOO_LOW


class Unauthenticated(VexilError):
    code = "UNAUTHENTICATED"
    reason = Reason.CREDENTIALS_INVALID


class ResourceExhausted(VexilError):
    code = "RESOURCE_EXHAUSTED"
    reason = Reason.RATE_LIMITED

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CannotListen(VexilError):
    """A listener could not bind its address (a port in use, an address not of this host)."""

    code = "FAILED_PRECONDITION"
    reason = Reason.LISTEN_FAILED


# -- narrower causes: the same status, a reason of their own ----------------------------------


class FlagNotFound(NotFound):
    reason = Reason.FLAG_NOT_FOUND


class VersionNotFound(NotFound):
    reason = Reason.VERSION_NOT_FOUND


class EnvironmentNotServed(NotFound):
    reason = Reason.ENVIRONMENT_NOT_SERVED


class ApiKeyNotFound(NotFound):
    reason = Reason.API_KEY_NOT_FOUND


class FlagAlreadyExists(AlreadyExists):
    reason = Reason.FLAG_ALREADY_EXISTS


class ApiKeyAlreadyExists(AlreadyExists):
    reason = Reason.API_KEY_ALREADY_EXISTS


class KillSwitchAdminOnly(FailedPrecondition):
    """A definition write would change the flag's state, which only SetKillSwitch may do."""

    reason = Reason.KILL_SWITCH_ADMIN_ONLY


class FlagLimitReached(FailedPrecondition):
    reason = Reason.FLAG_LIMIT_REACHED


class FlagDeleted(FailedPrecondition):
    reason = Reason.FLAG_DELETED


class AuthDisabled(FailedPrecondition):
    reason = Reason.AUTH_DISABLED


class InvalidSelector(FailedPrecondition):
    reason = Reason.INVALID_SELECTOR


class EnvironmentLoading(Unavailable):
    reason = Reason.ENVIRONMENT_LOADING


class EnvironmentNotAllowed(PermissionDenied):
    reason = Reason.ENVIRONMENT_NOT_ALLOWED


class MethodClosed(PermissionDenied):
    reason = Reason.METHOD_CLOSED


class CredentialsMissing(Unauthenticated):
    reason = Reason.CREDENTIALS_MISSING
