"""The error hierarchy of the service core.

Core code raises these; each adapter at the edge (gRPC, HTTP, CLI) maps them to its own status
once, in one place, so the mapping is consistent and the messages reach the caller unchanged.
Messages say what to fix and never carry secrets.
"""

from __future__ import annotations


class VexilError(Exception):
    """Base of every error the service reports to a caller on purpose."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VexilError):
    """The request is malformed; `field` names what to fix (a dotted path where possible)."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(VexilError):
    code = "NOT_FOUND"


class AlreadyExists(VexilError):
    code = "ALREADY_EXISTS"


class Conflict(VexilError):
    """An optimistic-concurrency check failed: the caller's expected version is stale."""

    code = "ABORTED"

    def __init__(self, message: str, current_version: int = 0) -> None:
        super().__init__(message)
        self.current_version = current_version


class FailedPrecondition(VexilError):
    code = "FAILED_PRECONDITION"


class Unavailable(VexilError):
    """The backing store cannot be reached; nothing was written."""

    code = "UNAVAILABLE"


class PermissionDenied(VexilError):
    code = "PERMISSION_DENIED"


class Unauthenticated(VexilError):
    code = "UNAUTHENTICATED"


class ResourceExhausted(VexilError):
    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CannotListen(VexilError):
    """A listener could not bind its address (a port in use, an address not of this host)."""

    code = "FAILED_PRECONDITION"
