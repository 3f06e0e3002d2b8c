"""The HTTP side's authenticator (`HttpServer(authenticate=...)`): OFREP gets the gRPC rules.

The same credentials (`Authorization: Bearer ...`), the same policy entry (`policy.POLICY["OFREP"]`,
the evaluator role) and the same server-wide evaluation bucket as flagd and vexil evaluation
over gRPC.  Errors are `VexilError`s, which the HTTP server answers as 401, 403 and 429 (with
`Retry-After`); environment scope is enforced where OFREP selects its environment.
"""

from __future__ import annotations

from aiohttp import web

from vexil.errors import PermissionDenied
from vexil.identity import Principal
from vexil.security import audit, roles
from vexil.security.authn import Authenticator
from vexil.security.policy import POLICY
from vexil.security.ratelimit import RateLimiter
from vexil.transport.peers import client_address

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
        client, role = f"peer:{client_address(peer)}", ""
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


OPERATIONS_RULE = POLICY["OPERATIONS"]


class OperationsAuthenticator:
    """`/metrics` and the `/readyz` detail: a credential with at least `OPERATIONS_RULE`'s role
    whose scope is every environment (what they show names every environment and flag), e.g. a
    scraper's `vexil keys create --role evaluator -e '*'`. Not rate limited: scrapers are few."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def __call__(self, request: web.Request) -> Principal:
        peer = request.remote or ""
        values = request.headers.getall("Authorization", [])
        identity = await self.authenticator.authenticate(values, peer=peer, method=request.path)
        principal = identity.principal
        assert OPERATIONS_RULE.role is not None
        if not roles.allows(principal.role, OPERATIONS_RULE.role) or principal.environments is not None:
            audit.auth_failed("scope too narrow", peer=peer, method=request.path, key_id=identity.key_id)
            raise PermissionDenied(
                f"{request.path} shows every environment: it needs a credential for every environment ('*')"
            )
        return principal
