"""The HTTP side's authenticator (`HttpServer(authenticate=...)`): OFREP gets the gRPC rules.

The same credentials (`Authorization: Bearer ...`), the same policy entry (`policy.POLICY["OFREP"]`,
the evaluator role) and the same server-wide evaluation bucket as flagd and vexil evaluation
over gRPC.  Errors are `VexilError`s, which the HTTP server answers as 401, 403 and 429 (with
`Retry-After`); environment scope is enforced where OFREP selects its environment.
"""

from __future__ import annotations

from aiohttp import web

from vexil.api.caller import Principal
from vexil.errors import PermissionDenied
from vexil.security import audit, roles
from vexil.security.authn import Authenticator
from vexil.security.policy import POLICY
from vexil.security.ratelimit import RateLimiter

RULE = POLICY["OFREP"]
METHOD = "OFREP"


class HttpAuthenticator:
    """`authenticator` None: open (anonymous) but still rate limited when `limiter` is given."""

    def __init__(self, authenticator: Authenticator | None, limiter: RateLimiter | None) -> None:
        self.authenticator = authenticator
        self.limiter = limiter

    async def __call__(self, request: web.Request) -> Principal | None:
        peer = request.remote or ""
        principal: Principal | None = None
        client, role = f"peer:{peer}", ""
        if self.authenticator is not None:
            values = request.headers.getall("Authorization", [])
            identity = await self.authenticator.authenticate(values, peer=peer, method=METHOD)
            principal = identity.principal
            assert RULE.role is not None
            if not roles.allows(principal.role, RULE.role):
                audit.auth_failed("role too low", peer=peer, method=METHOD, key_id=identity.key_id)
                raise PermissionDenied(f"OFREP needs the {RULE.role} role")
            client, role = identity.client_id, principal.role
        if self.limiter is not None:
            self.limiter.check(RULE.api, client, role)
        return principal
