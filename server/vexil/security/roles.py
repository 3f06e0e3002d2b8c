"""The three roles and their order: each role can do everything the ones below it can.

`evaluator` evaluates and watches flags; `editor` also reads and writes flag definitions;
`admin` also manages keys, kill switches and environment settings.  A credential carries one
role (a JWT listing several gets the highest), and an RPC names the least role it needs.
"""

from __future__ import annotations

EVALUATOR = "evaluator"
EDITOR = "editor"
ADMIN = "admin"

ROLES = (EVALUATOR, EDITOR, ADMIN)
"""Lowest first."""

RANK = {role: rank for rank, role in enumerate(ROLES)}


def allows(held: str, needed: str) -> bool:
    """Whether a credential with role `held` may call something that needs `needed`.

    An unknown or empty role allows nothing (fail closed)."""
    return RANK.get(held, -1) >= RANK[needed]


def highest(roles: object) -> str:
    """The highest known role among `roles` (a string or a list of strings), "" if none."""
    candidates = [roles] if isinstance(roles, str) else roles if isinstance(roles, list) else []
    known = [r for r in candidates if isinstance(r, str) and r in RANK]
    return max(known, key=RANK.__getitem__) if known else ""
