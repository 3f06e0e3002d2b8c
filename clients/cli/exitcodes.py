"""The `vexil` command's one exit-code table, and the one place errors become messages and codes.

Every command (remote ones, operations, `dynamodb`, `keys`, and `serve` when it cannot start)
exits with a code from `ExitCode`, so a script can rely on one meaning per number.  The README's
exit-code table says the same; a test holds the two together.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from vexil.errors import VexilError


class ExitCode(IntEnum):
    """What a `vexil` command's exit status means (the README's table lists these)."""

    OK = 0
    """Success (warnings allowed)."""
    FAILURE = 1
    """Unexpected failure, or `vexil dynamodb describe` found problems with the table."""
    USAGE = 2
    """Bad usage, invalid argument or input, bad configuration."""
    NOT_FOUND = 3
    """Not found (a flag, a backup, the DynamoDB table)."""
    CONFLICT = 4
    """Conflict: stale version, already exists, failed precondition, an address in use."""
    NOT_ALLOWED = 5
    """Not allowed: no or refused credentials, a quota."""
    UNAVAILABLE = 6
    """Server or DynamoDB unavailable (also: the server ended a `vexil watch`)."""
    CRITICAL = 7
    """A health indicator is critical, a check FAILed, `verify` found differences, a drill failed."""


BY_STATUS = {
    "INVALID_ARGUMENT": ExitCode.USAGE,
    "OUT_OF_RANGE": ExitCode.USAGE,
    "NOT_FOUND": ExitCode.NOT_FOUND,
    "ABORTED": ExitCode.CONFLICT,
    "ALREADY_EXISTS": ExitCode.CONFLICT,
    "FAILED_PRECONDITION": ExitCode.CONFLICT,
    "PERMISSION_DENIED": ExitCode.NOT_ALLOWED,
    "UNAUTHENTICATED": ExitCode.NOT_ALLOWED,
    "RESOURCE_EXHAUSTED": ExitCode.NOT_ALLOWED,
    "UNAVAILABLE": ExitCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ExitCode.UNAVAILABLE,
}
"""A gRPC status (or a `VexilError` code, which uses the same names) as an exit code."""


def for_status(name: str) -> ExitCode:
    """The exit code of a failure with this gRPC status name (anything else: FAILURE)."""
    return BY_STATUS.get(name, ExitCode.FAILURE)


def for_error(exc: VexilError) -> ExitCode:
    """The exit code of a vexil error: by its status, except where the table's own setup is what
    failed.  The store reports a missing table and missing or refused AWS credentials as
    UNAVAILABLE (to a server's callers the store is unavailable, whatever the cause), but an
    operator's command says what to fix: NOT_FOUND (create the table) and NOT_ALLOWED
    (credentials), as the README's table says and `vexil serve` exits at start."""
    if exc.code == "UNAVAILABLE":
        # Only then: the AWS SDK loads with this module (half a second), and all three are UNAVAILABLE.
        from vexil.store.dynamodb_client import CredentialsRefused, NoCredentials, TableNotFound

        if isinstance(exc, TableNotFound):
            return ExitCode.NOT_FOUND
        if isinstance(exc, NoCredentials | CredentialsRefused):
            return ExitCode.NOT_ALLOWED
    return for_status(exc.code)


class UsageError(Exception):
    """Bad command-line input: exit code USAGE with the message."""


class ServerGone(Exception):
    """The server ended a stream the command meant to keep open: exit code UNAVAILABLE."""


def fail(message: str, code: ExitCode) -> int:
    """Print the one-line message on standard error and return its exit code."""
    print(f"vexil: {message}", file=sys.stderr)
    return code


def guarded(command: Callable[..., int], *args: Any) -> int:
    """Run a command; its failures become one line on standard error and their exit code."""
    from vexil.errors import VexilError
    from vexil.ops.connection import ConnectionOptionsError, TlsMismatch

    try:
        return command(*args)
    except (UsageError, ConnectionOptionsError) as exc:
        return fail(str(exc), ExitCode.USAGE)
    except (ServerGone, TlsMismatch) as exc:
        return fail(f"UNAVAILABLE: {exc}", ExitCode.UNAVAILABLE)
    except VexilError as exc:
        code = for_error(exc)
        # A cause the status does not name (a missing table is UNAVAILABLE to gRPC): its message alone.
        return fail(f"{exc.code}: {exc.message}" if code == for_status(exc.code) else exc.message, code)
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        return fail(f"{code.name}: {exc.details()}", for_status(code.name))  # type: ignore[attr-defined]
