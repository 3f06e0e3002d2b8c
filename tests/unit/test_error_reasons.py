"""The error reasons are a closed, documented set, and every core error names one.

The tables below are the contract written down by hand: a new `VexilError` subclass fails here
until someone decides its reason (and status), and the README's table must list exactly the
reasons the code has, with the status each is sent with.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import vexil
from vexil.errors import VexilError
from vexil.reasons import DOMAIN, Reason
from vexil.transport.status import STATUS

README = Path(__file__).resolve().parents[2] / "README.md"

ERRORS: dict[str, tuple[str, str]] = {
    # class (module.qualname): (gRPC status, reason)
    "vexil.errors.InvalidArgument": ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "vexil.errors.NotFound": ("NOT_FOUND", "NOT_FOUND"),
    "vexil.errors.AlreadyExists": ("ALREADY_EXISTS", "ALREADY_EXISTS"),
    "vexil.errors.Conflict": ("ABORTED", "STALE_VERSION"),
    "vexil.errors.FailedPrecondition": ("FAILED_PRECONDITION", "FAILED_PRECONDITION"),
    "vexil.errors.Unavailable": ("UNAVAILABLE", "STORE_UNAVAILABLE"),
    "vexil.errors.OutcomeUnknown": ("UNAVAILABLE", "WRITE_OUTCOME_UNKNOWN"),
    "vexil.errors.ShuttingDown": ("UNAVAILABLE", "SERVER_SHUTTING_DOWN"),
    "vexil.errors.PermissionDenied": ("PERMISSION_DENIED", "ROLE_TOO_LOW"),
    "vexil.errors.Unauthenticated": ("UNAUTHENTICATED", "CREDENTIALS_INVALID"),
    "vexil.errors.ResourceExhausted": ("RESOURCE_EXHAUSTED", "RATE_LIMITED"),
    "vexil.errors.CannotListen": ("FAILED_PRECONDITION", "LISTEN_FAILED"),
    "vexil.errors.FlagNotFound": ("NOT_FOUND", "FLAG_NOT_FOUND"),
    "vexil.errors.VersionNotFound": ("NOT_FOUND", "VERSION_NOT_FOUND"),
    "vexil.errors.EnvironmentNotServed": ("NOT_FOUND", "ENVIRONMENT_NOT_SERVED"),
    "vexil.errors.ApiKeyNotFound": ("NOT_FOUND", "API_KEY_NOT_FOUND"),
    "vexil.errors.FlagAlreadyExists": ("ALREADY_EXISTS", "FLAG_ALREADY_EXISTS"),
    "vexil.errors.ApiKeyAlreadyExists": ("ALREADY_EXISTS", "API_KEY_ALREADY_EXISTS"),
    "vexil.errors.KillSwitchAdminOnly": ("FAILED_PRECONDITION", "KILL_SWITCH_ADMIN_ONLY"),
    "vexil.errors.FlagLimitReached": ("FAILED_PRECONDITION", "FLAG_LIMIT_REACHED"),
    "vexil.errors.FlagDeleted": ("FAILED_PRECONDITION", "FLAG_DELETED"),
    "vexil.errors.AuthDisabled": ("FAILED_PRECONDITION", "AUTH_DISABLED"),
    "vexil.errors.InvalidSelector": ("FAILED_PRECONDITION", "INVALID_SELECTOR"),
    "vexil.errors.EnvironmentLoading": ("UNAVAILABLE", "ENVIRONMENT_LOADING"),
    "vexil.errors.EnvironmentNotAllowed": ("PERMISSION_DENIED", "ENVIRONMENT_NOT_ALLOWED"),
    "vexil.errors.MethodClosed": ("PERMISSION_DENIED", "METHOD_CLOSED"),
    "vexil.errors.CredentialsMissing": ("UNAUTHENTICATED", "CREDENTIALS_MISSING"),
    "vexil.console.session.CsrfTokenInvalid": ("PERMISSION_DENIED", "CSRF_TOKEN_INVALID"),
    "vexil.security.ratelimit.QuotaExceeded": ("RESOURCE_EXHAUSTED", "EVALUATION_QUOTA_EXCEEDED"),
    "vexil.store.dynamodb_client.TableNotFound": ("UNAVAILABLE", "STORE_UNAVAILABLE"),
    "vexil.store.dynamodb_client.NoCredentials": ("UNAVAILABLE", "STORE_UNAVAILABLE"),
    "vexil.store.dynamodb_client.CredentialsRefused": ("UNAVAILABLE", "STORE_UNAVAILABLE"),
    "vexil.ops.connection.HandshakeRefused": ("UNAUTHENTICATED", "CREDENTIALS_INVALID"),
    "vexil.http.context.InvalidContext": ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "vexil.ops.exportfile.ExportError": ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "vexil.ops.outfile.Unwritable": ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
}

REASONS_SENT_OUTSIDE_THE_CORE = {
    # refusals that are no VexilError, made where they happen: reason -> status
    "MALFORMED_REQUEST": "INVALID_ARGUMENT",
    "SERVER_SHUTTING_DOWN": "UNAVAILABLE",
    "CREDENTIALS_CLOSED": "UNAUTHENTICATED",
    "TYPE_MISMATCH": "INVALID_ARGUMENT",
    "PARSE_ERROR": "DATA_LOSS",
    "EVALUATION_FAILED": "UNKNOWN",
    "INTERNAL": "INTERNAL",
}


def all_error_classes() -> dict[str, type[VexilError]]:
    """Every VexilError subclass in the `vexil` package (generated code aside)."""
    for module in pkgutil.walk_packages(vexil.__path__, "vexil."):
        if not module.name.startswith(("vexil.v1", "vexil.flagd.")):
            importlib.import_module(module.name)
    found: dict[str, type[VexilError]] = {}
    pending = list(VexilError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("vexil."):  # not a class a test made (it lives until collected)
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        pending += cls.__subclasses__()
    return found


def readme_table() -> list[tuple[str, str]]:
    """(reason, status) rows of the README's table of reasons."""
    text = README.read_text()
    section = text[text.index("### Errors") :]
    section = section[: section.index("\n## ")]
    return re.findall(r"^\| `([A-Z_]+)` \| `([A-Z_]+)` \|", section, re.M)


def test_every_error_class_names_its_reason_and_status() -> None:
    classes = all_error_classes()
    assert sorted(classes) == sorted(ERRORS), "a VexilError subclass without a row here, or a stale row"
    for name, cls in classes.items():
        status, reason = ERRORS[name]
        assert (STATUS[cls.code].name, cls.reason.value) == (status, reason), name


def test_the_reasons_are_a_closed_set_listed_in_the_readme() -> None:
    rows = readme_table()
    names = [reason for reason, _ in rows]
    assert len(names) == len(set(names)), "a reason listed twice"
    assert sorted(names) == sorted(member.value for member in Reason)
    expected = {reason: status for status, reason in ERRORS.values()} | REASONS_SENT_OUTSIDE_THE_CORE
    assert dict(rows) == expected
    assert DOMAIN == "vexil.dev"


def test_reason_values_are_their_names() -> None:
    for member in Reason:
        assert member.value == member.name and re.fullmatch(r"[A-Z][A-Z0-9_]{0,62}[A-Z0-9]", member.value)
