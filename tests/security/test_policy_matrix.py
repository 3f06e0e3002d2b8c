"""Over a real TLS loopback server: every RPC x every kind of caller does exactly what the policy
table says - allowed, PERMISSION_DENIED or UNAUTHENTICATED - and environment scope holds."""

from __future__ import annotations

import grpc

from tests.security.conftest import Secure
from tests.security.rpcs import RPCS, SERVICES, call
from vexil.security import policy, roles

CALLERS = ("anonymous", "garbage", "evaluator", "editor", "admin", "root")
ROLE_OF = {"evaluator": "evaluator", "editor": "editor", "admin": "admin", "root": "admin"}
AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def expected(rule: policy.Rule, caller: str) -> grpc.StatusCode | None:
    """What the policy says `caller` gets: a denial code, or None when the call is allowed."""
    if rule.role is None:
        return None
    if caller not in ROLE_OF:
        return grpc.StatusCode.UNAUTHENTICATED
    if not roles.allows(ROLE_OF[caller], rule.role):
        return grpc.StatusCode.PERMISSION_DENIED
    return None


def test_the_policy_table_covers_exactly_the_served_rpcs() -> None:
    served = {rpc.path for rpc in RPCS} | {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"}
    assert served == set(policy.POLICY) - {"OFREP"}
    assert {s.full_name for s in SERVICES} >= {"vexil.v1.KeyService", "flagd.sync.v1.FlagSyncService"}


async def test_every_rpc_and_every_role(secure: Secure) -> None:
    secure.tokens["garbage"] = "vxk_0123456789abcdef_" + "x" * 43
    wrong: list[str] = []
    checked = 0
    for rpc in RPCS:
        rule = policy.rule_for(rpc.path)
        assert rule is not None, rpc
        for caller in CALLERS:
            error = await call(secure.channel, rpc, secure.md(caller))
            code = error.code() if error is not None else grpc.StatusCode.OK
            want = expected(rule, caller)
            checked += 1
            if want is None and code in AUTH_CODES:
                wrong.append(f"{rpc} as {caller}: {code.name} {error.details() if error else ''}")
            elif want is not None and code != want:
                wrong.append(f"{rpc} as {caller}: {code.name}, expected {want.name}")
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                wrong.append(f"{rpc} as {caller}: {code.name} {error.details() if error else ''}")
    assert checked == len(RPCS) * len(CALLERS) >= 200
    assert not wrong, "\n".join(wrong)


ENVIRONMENT_RPCS = {
    # rpc path -> request naming an environment (the flagd ones use the selector header)
    "/vexil.v1.EvaluationService/Evaluate": {"flag_key": "f", "environment": "local"},
    "/vexil.v1.EvaluationService/EvaluateAll": {"environment": "local"},
    "/vexil.v1.EvaluationService/Watch": {"environment": "local"},
    "/vexil.v1.AdminService/GetFlag": {"environment": "local", "key": "f"},
    "/vexil.v1.AdminService/ListFlags": {"environment": "local"},
    "/vexil.v1.AdminService/DeleteFlag": {"environment": "local", "key": "f"},
    "/vexil.v1.AdminService/ListChanges": {"environment": "local"},
    "/vexil.v1.AdminService/GetEnvironment": {"environment": "local"},
    "/vexil.v1.AdminService/SetKillSwitch": {"environment": "local", "killed": False},
    "/vexil.v1.AdminService/UpdateEnvironment": {"environment": "local"},
    "/vexil.v1.KeyService/CreateKey": {"environment": "local", "role": 1},
    "/vexil.v1.KeyService/ListKeys": {},
}
FLAGD_SELECTED = {
    "/flagd.evaluation.v2.Service/ResolveBoolean": {"flag_key": "f"},
    "/flagd.evaluation.v1.Service/EventStream": {},
    "/flagd.sync.v1.FlagSyncService/SyncFlags": {},
}


async def test_credentials_of_another_environment_are_refused(secure: Secure) -> None:
    by_path = {rpc.path: rpc for rpc in RPCS}
    wrong: list[str] = []
    for path, fields in ENVIRONMENT_RPCS.items():
        rpc = by_path[path]
        error = await call(secure.channel, rpc, secure.md("beta-admin"), rpc.request(**fields))
        code = error.code() if error is not None else grpc.StatusCode.OK
        if path.endswith("ListKeys"):  # not an environment-scoped call: lists only beta's keys
            listed = await secure.key_service.ListKeys(rpc.request(), metadata=secure.md("beta-admin"))
            if {k.environment for k in listed.keys} != {"beta"}:
                wrong.append(f"{path}: listed {sorted(k.environment for k in listed.keys)}")
        elif code != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{path} for local with a beta key: {code.name}")
    for path, fields in FLAGD_SELECTED.items():
        md = (*secure.md("beta-evaluator"), ("flagd-selector", "flagSetId=local"))
        error = await call(secure.channel, by_path[path], md, by_path[path].request(**fields))
        if error is None or error.code() != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{path} selecting local with a beta key: {error.code().name if error else 'OK'}")
    assert not wrong, "\n".join(wrong)
    # ... and the same credentials work in their own environment, which is also their default.
    evaluate = by_path["/vexil.v1.EvaluationService/Evaluate"]
    assert (
        await call(secure.channel, evaluate, secure.md("beta-evaluator"), evaluate.request(flag_key="f"))
        is None
    )
