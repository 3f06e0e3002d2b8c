"""Who is calling: the principal a request acts as, for the audit trail and environment choice.

The security layer authenticates a call and stores its principal in `current_principal` (a
context variable, so it follows the call through every await); without it (the local profile
runs open on loopback) callers are recorded as anonymous with their peer address.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

import grpc


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str = "admin"
    environments: frozenset[str] | None = None
    """Environments the credential may touch; None means any."""


current_principal: ContextVar[Principal | None] = ContextVar("vexil_principal", default=None)


def actor(context: grpc.aio.ServicerContext) -> str:
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
