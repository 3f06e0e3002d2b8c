"""Who is calling: the principal a request acts as, for the audit trail and environment choice.

The security layer authenticates a call and stores its principal in `current_principal` (a
context variable, so it follows the call through every await); without it (the local profile
runs open on loopback) callers are recorded as anonymous with their peer address.

The core owns this module and it knows no transport: the service core enforces the environment
scope with it on every request, whichever door (gRPC, HTTP, CLI) the request came in by.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from vexil.errors import EnvironmentNotAllowed


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str = "admin"
    environments: frozenset[str] | None = None
    """Environments the credential may touch; None means any."""


current_principal: ContextVar[Principal | None] = ContextVar("vexil_principal", default=None)


class Peer(Protocol):
    """What `actor` needs of a call: its peer address (a gRPC `ServicerContext` has it)."""

    def peer(self) -> str: ...


def actor(context: Peer) -> str:
    """The name recorded as `actor` / `updated_by` for a write made by this call."""
    principal = current_principal.get()
    if principal is not None:
        return principal.subject
    peer = context.peer() or "unknown"
    return f"anonymous@{peer}"


def default_environment() -> str:
    """The credentials' environment when they are scoped to exactly one, else ""."""
    principal = current_principal.get()
    if principal is not None and principal.environments and len(principal.environments) == 1:
        return next(iter(principal.environments))
    return ""


def require_environment(environment: str) -> None:
    """PERMISSION_DENIED unless the call's credentials may act in `environment`.

    `FlagService.environment` calls this for every request that names (or defaults to) an
    environment, so the scope is enforced once for every adapter instead of per RPC."""
    principal = current_principal.get()
    if (
        principal is not None
        and principal.environments is not None
        and environment not in principal.environments
    ):
        raise EnvironmentNotAllowed(f"these credentials may not act in environment '{environment[:70]}'")


def visible(environments: Iterable[str]) -> list[str]:
    """The environments the call's credentials may see: status and listings name no others."""
    principal = current_principal.get()
    if principal is None or principal.environments is None:
        return list(environments)
    return [env for env in environments if env in principal.environments]
