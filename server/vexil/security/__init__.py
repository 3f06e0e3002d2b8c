"""vexil's security layer: who may call what, how often, over what channel.

- `authn`: `Authorization: Bearer` credentials -> `Identity` (API keys via `keys`, JWTs via
  `jwt_verifier`);
- `policy` and `roles`: the one table of every RPC and the role it needs;
- `ratelimit`: token buckets per client (admin API) and per server (evaluation);
- `streams`: ending open streams whose credentials were revoked or expired;
- `interceptors` (gRPC) and `http` (OFREP): where those checks run;
- `tls`: server and client TLS material; `audit`: security event records;
- `layer`: all of it built from `Settings`, for `vexil.app`.

The names below are imported on first use, so the CLI (which needs only `tls` and `apikeys`)
does not load the JWT and server machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vexil.security.authn import Authenticator, Identity
    from vexil.security.keys import IssuedKey, KeyManager
    from vexil.security.layer import SecurityLayer
    from vexil.security.policy import POLICY, Rule, rule_for
    from vexil.security.ratelimit import RateLimiter

_EXPORTS = {
    "Authenticator": "authn",
    "Identity": "authn",
    "IssuedKey": "keys",
    "KeyManager": "keys",
    "SecurityLayer": "layer",
    "POLICY": "policy",
    "Rule": "policy",
    "rule_for": "policy",
    "RateLimiter": "ratelimit",
}

__all__ = [
    "POLICY",
    "Authenticator",
    "Identity",
    "IssuedKey",
    "KeyManager",
    "RateLimiter",
    "Rule",
    "SecurityLayer",
    "rule_for",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
