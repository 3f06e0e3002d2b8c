"""Who may call what: the one table of every RPC (and the OFREP route) with the role it needs.

Every method vexil serves is listed here, so a reviewer reads the whole access policy in one
place, and a test checks the table against the services actually registered: a new RPC without
an entry is refused (PERMISSION_DENIED) rather than silently open.  Health and reflection stay
open so load balancers and `grpcurl list` work without credentials.

Each entry also says which rate limit applies: `ADMIN_API` calls draw from a bucket per client,
`EVALUATION` calls from one server-wide bucket (see `ratelimit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vexil.security.roles import ADMIN, EDITOR, EVALUATOR

OPEN_API = "open"
ADMIN_API = "admin"
EVALUATION_API = "evaluation"


@dataclass(frozen=True, slots=True)
class Rule:
    role: str | None
    """The least role needed; None: open to anyone, credentials or not."""
    api: str
    """Which rate limit applies: OPEN_API (none), ADMIN_API or EVALUATION_API."""


OPEN = Rule(None, OPEN_API)
EVALUATE = Rule(EVALUATOR, EVALUATION_API)
READ = Rule(EDITOR, ADMIN_API)
WRITE = Rule(EDITOR, ADMIN_API)
MANAGE = Rule(ADMIN, ADMIN_API)
REPLICA = Rule(None, OPEN_API)
"""Internal between replicas: no user credential, the servicer checks the replica secret."""

_FLAGD_RESOLVE = ("ResolveBoolean", "ResolveString", "ResolveFloat", "ResolveInt", "ResolveObject")

POLICY: dict[str, Rule] = {
    # vexil.v1: evaluation
    "/vexil.v1.EvaluationService/Evaluate": EVALUATE,
    "/vexil.v1.EvaluationService/EvaluateAll": EVALUATE,
    "/vexil.v1.EvaluationService/Watch": EVALUATE,
    # vexil.v1: flag management
    "/vexil.v1.AdminService/CreateFlag": WRITE,
    "/vexil.v1.AdminService/UpdateFlag": WRITE,
    "/vexil.v1.AdminService/DeleteFlag": WRITE,
    "/vexil.v1.AdminService/RollbackFlag": WRITE,
    "/vexil.v1.AdminService/GetFlag": READ,
    "/vexil.v1.AdminService/ListFlags": READ,
    "/vexil.v1.AdminService/GetFlagHistory": READ,
    "/vexil.v1.AdminService/ListChanges": READ,
    "/vexil.v1.AdminService/GetEnvironment": READ,
    "/vexil.v1.AdminService/GetStatus": READ,
    "/vexil.v1.AdminService/WaitForPropagation": READ,
    "/vexil.v1.AdminService/SetKillSwitch": MANAGE,
    "/vexil.v1.AdminService/UpdateEnvironment": MANAGE,
    # vexil.v1: between replicas (authenticated by the servicer with the replica secret, and rate
    # limited there per caller: `vexil.api.replica`)
    "/vexil.v1.ReplicaService/Poke": REPLICA,
    # vexil.v1: API keys
    "/vexil.v1.KeyService/CreateKey": MANAGE,
    "/vexil.v1.KeyService/ListKeys": MANAGE,
    "/vexil.v1.KeyService/RotateKey": MANAGE,
    "/vexil.v1.KeyService/RevokeKey": MANAGE,
    # flagd evaluation (RPC-mode providers) and sync (in-process providers)
    **{f"/flagd.evaluation.v1.Service/{m}": EVALUATE for m in (*_FLAGD_RESOLVE, "ResolveAll", "EventStream")},
    **{f"/flagd.evaluation.v2.Service/{m}": EVALUATE for m in (*_FLAGD_RESOLVE, "EventStream")},
    "/flagd.sync.v1.FlagSyncService/SyncFlags": EVALUATE,
    "/flagd.sync.v1.FlagSyncService/FetchAllFlags": EVALUATE,
    "/flagd.sync.v1.FlagSyncService/GetMetadata": EVALUATE,
    # operational
    "/grpc.health.v1.Health/Check": OPEN,
    "/grpc.health.v1.Health/List": OPEN,
    "/grpc.health.v1.Health/Watch": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": OPEN,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": OPEN,
    # HTTP side (checked by `vexil.security.http`, not an RPC)
    "OFREP": EVALUATE,
    # `/metrics` and the `/readyz` detail outside the local profile: they name every environment
    # and flag, so they need a credential valid for every environment (`vexil.security.http`).
    "OPERATIONS": Rule(EVALUATOR, OPEN_API),
}


def rule_for(method: str) -> Rule | None:
    """The rule for a full method name (`/package.Service/Method`); None: not in the table."""
    return POLICY.get(method)
