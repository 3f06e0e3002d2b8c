"""Over a real TLS loopback server: every RPC x every kind of caller gets what the access policy
promises - allowed, PERMISSION_DENIED or UNAUTHENTICATED - and environment scope holds.

The expectations are written out below as literal tables a reviewer can read, independent of
`vexil.security.policy`: loosening the policy (say, letting an evaluator DeleteFlag) makes this
test fail instead of moving its expectations along.
"""

from __future__ import annotations

from typing import Any

import grpc

from tests.support.flags import flag_pb
from tests.support.rpcs import RPCS, SERVICES, call
from tests.support.secure import Secure
from vexil.security import policy

OPEN, EVALUATOR, EDITOR, ADMIN = "open", "evaluator", "editor", "admin"

LEAST_ROLE: dict[str, str] = {
    # every RPC the server registers -> the least role that may call it
    "/vexil.v1.EvaluationService/Evaluate": EVALUATOR,
    "/vexil.v1.EvaluationService/EvaluateAll": EVALUATOR,
    "/vexil.v1.EvaluationService/Watch": EVALUATOR,
    "/vexil.v1.AdminService/GetFlag": EDITOR,
    "/vexil.v1.AdminService/ListFlags": EDITOR,
    "/vexil.v1.AdminService/GetFlagHistory": EDITOR,
    "/vexil.v1.AdminService/ListChanges": EDITOR,
    "/vexil.v1.AdminService/GetEnvironment": EDITOR,
    "/vexil.v1.AdminService/GetStatus": EDITOR,
    "/vexil.v1.AdminService/WaitForPropagation": EDITOR,
    "/vexil.v1.AdminService/CreateFlag": EDITOR,
    "/vexil.v1.AdminService/UpdateFlag": EDITOR,
    "/vexil.v1.AdminService/DeleteFlag": EDITOR,
    "/vexil.v1.AdminService/RollbackFlag": EDITOR,
    "/vexil.v1.AdminService/SetKillSwitch": ADMIN,
    "/vexil.v1.AdminService/UpdateEnvironment": ADMIN,
    "/vexil.v1.KeyService/CreateKey": ADMIN,
    "/vexil.v1.KeyService/ListKeys": ADMIN,
    "/vexil.v1.KeyService/RotateKey": ADMIN,
    "/vexil.v1.KeyService/RevokeKey": ADMIN,
    # Between replicas: no user role applies, the replica secret does (tests/fleet/test_pokes.py).
    "/vexil.v1.ReplicaService/Poke": OPEN,
    "/flagd.evaluation.v1.Service/ResolveBoolean": EVALUATOR,
    "/flagd.evaluation.v1.Service/ResolveString": EVALUATOR,
    "/flagd.evaluation.v1.Service/ResolveFloat": EVALUATOR,
    "/flagd.evaluation.v1.Service/ResolveInt": EVALUATOR,
    "/flagd.evaluation.v1.Service/ResolveObject": EVALUATOR,
    "/flagd.evaluation.v1.Service/ResolveAll": EVALUATOR,
    "/flagd.evaluation.v1.Service/EventStream": EVALUATOR,
    "/flagd.evaluation.v2.Service/ResolveBoolean": EVALUATOR,
    "/flagd.evaluation.v2.Service/ResolveString": EVALUATOR,
    "/flagd.evaluation.v2.Service/ResolveFloat": EVALUATOR,
    "/flagd.evaluation.v2.Service/ResolveInt": EVALUATOR,
    "/flagd.evaluation.v2.Service/ResolveObject": EVALUATOR,
    "/flagd.evaluation.v2.Service/EventStream": EVALUATOR,
    "/flagd.sync.v1.FlagSyncService/SyncFlags": EVALUATOR,
    "/flagd.sync.v1.FlagSyncService/FetchAllFlags": EVALUATOR,
    "/flagd.sync.v1.FlagSyncService/GetMetadata": EVALUATOR,
    "/grpc.health.v1.Health/Check": OPEN,
    "/grpc.health.v1.Health/List": OPEN,
    "/grpc.health.v1.Health/Watch": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": OPEN,
}
HTTP_ROUTES = {"OFREP": EVALUATOR, "OPERATIONS": EVALUATOR}
"""The policy's non-RPC entries (checked over HTTP in test_scope and the OFREP tests)."""

CALLERS: dict[str, str | None] = {
    # caller (a credential of the `secure` fixture) -> its role; None: no valid credential
    "anonymous": None,
    "garbage": None,
    "evaluator": EVALUATOR,
    "editor": EDITOR,
    "admin": ADMIN,
    "root": ADMIN,
}
RANK = {EVALUATOR: 1, EDITOR: 2, ADMIN: 3}
"""Each role may do everything the roles below it may."""

DENIALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
BROKEN = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def expected(least: str, role: str | None) -> grpc.StatusCode | None:
    """What the tables say a caller gets: a denial, or None when the call is allowed."""
    if least == OPEN:
        return None
    if role is None:
        return grpc.StatusCode.UNAUTHENTICATED
    if RANK[role] < RANK[least]:
        return grpc.StatusCode.PERMISSION_DENIED
    return None


def test_the_tables_cover_exactly_the_served_rpcs_and_the_policy() -> None:
    served = {rpc.path for rpc in RPCS}
    assert set(LEAST_ROLE) == served
    assert {s.full_name for s in SERVICES} >= {"vexil.v1.KeyService", "flagd.sync.v1.FlagSyncService"}
    # The policy has an entry for each (and for v1 reflection, which grpcio registers by name).
    reflection_v1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    assert set(policy.POLICY) == served | set(HTTP_ROUTES) | {reflection_v1}


async def test_every_rpc_and_every_role(secure: Secure) -> None:
    secure.tokens["garbage"] = "vxk_0123456789abcdef_" + "x" * 43
    wrong: list[str] = []
    for rpc in RPCS:
        least = LEAST_ROLE[rpc.path]
        for caller, role in CALLERS.items():
            error = await call(secure.channel, rpc, secure.md(caller))
            code = error.code() if error is not None else grpc.StatusCode.OK
            want = expected(least, role)
            details = error.details() if error is not None else ""
            if want is None and code in DENIALS:
                wrong.append(f"{rpc} as {caller}: {code.name} {details}, expected it allowed")
            elif want is not None and code != want:
                wrong.append(f"{rpc} as {caller}: {code.name}, expected {want.name}")
            if code in BROKEN:
                wrong.append(f"{rpc} as {caller}: {code.name} {details}")
    assert not wrong, "\n".join(wrong)


SELECTOR = "selector"
"""flagd RPCs name their environment with the `flagd-selector: flagSetId=<env>` header."""
KEY_ID = "key id"
"""Key RPCs name a key by id: another environment's key reads as absent (NOT_FOUND)."""
FILTERED = "filtered"
"""Answers, but only about the caller's own environments."""
UNSCOPED = "unscoped"
"""Says nothing about any environment (flagd's GetMetadata: an empty sync context)."""

SCOPED: dict[str, Any] = {
    # every RPC that needs credentials -> how a request names environment `local`
    "/vexil.v1.EvaluationService/Evaluate": {"flag_key": "f", "environment": "local"},
    "/vexil.v1.EvaluationService/EvaluateAll": {"environment": "local"},
    "/vexil.v1.EvaluationService/Watch": {"environment": "local"},
    "/vexil.v1.AdminService/GetFlag": {"environment": "local", "key": "f"},
    "/vexil.v1.AdminService/ListFlags": {"environment": "local"},
    "/vexil.v1.AdminService/GetFlagHistory": {"environment": "local", "key": "f"},
    "/vexil.v1.AdminService/ListChanges": {"environment": "local"},
    "/vexil.v1.AdminService/GetEnvironment": {"environment": "local"},
    "/vexil.v1.AdminService/GetStatus": FILTERED,
    "/vexil.v1.AdminService/WaitForPropagation": {"environment": "local", "timeout_seconds": 1.0},
    "/vexil.v1.AdminService/CreateFlag": {"flag": flag_pb("f", {"on": True}, "on", environment="local")},
    "/vexil.v1.AdminService/UpdateFlag": {"flag": flag_pb("f", {"on": True}, "on", environment="local")},
    "/vexil.v1.AdminService/DeleteFlag": {"environment": "local", "key": "f"},
    "/vexil.v1.AdminService/RollbackFlag": {"environment": "local", "key": "f", "to_version": 1},
    "/vexil.v1.AdminService/SetKillSwitch": {"environment": "local", "killed": False},
    "/vexil.v1.AdminService/UpdateEnvironment": {"environment": "local"},
    "/vexil.v1.KeyService/CreateKey": {"environment": "local", "role": 1},
    "/vexil.v1.KeyService/ListKeys": {"environment": "local"},
    "/vexil.v1.KeyService/RotateKey": KEY_ID,
    "/vexil.v1.KeyService/RevokeKey": KEY_ID,
    **{path: SELECTOR for path in LEAST_ROLE if path.startswith("/flagd.")},
    "/flagd.sync.v1.FlagSyncService/GetMetadata": UNSCOPED,
}


async def _scoped_call(secure: Secure, path: str, who: str, key_id: str) -> tuple[grpc.StatusCode, Any]:
    rpc = {r.path: r for r in RPCS}[path]
    how = SCOPED[path]
    metadata: tuple[tuple[str, str], ...] = secure.md(who)
    if how in (SELECTOR, UNSCOPED):
        request = rpc.request(flag_key="f") if "flag_key" in rpc.method.input_type.fields_by_name else None
        metadata = (*metadata, ("flagd-selector", "flagSetId=local"))
    elif how == KEY_ID:
        request = rpc.request(id=key_id)
    elif how == FILTERED:
        request = None
    else:
        request = rpc.request(**how)
    error = await call(secure.channel, rpc, metadata, request)
    return (error.code() if error is not None else grpc.StatusCode.OK), error


async def test_credentials_of_another_environment_are_refused(secure: Secure) -> None:
    assert set(SCOPED) == {path for path, least in LEAST_ROLE.items() if least != OPEN}
    wrong: list[str] = []
    for path, how in SCOPED.items():
        role = LEAST_ROLE[path]
        local_key = (await secure.issue(EVALUATOR))[4:20]  # a fresh local key for the key RPCs
        code, error = await _scoped_call(secure, path, f"beta-{role}", local_key)
        if how == FILTERED:
            status = await secure.admin.GetStatus(_status_request(), metadata=secure.md(f"beta-{role}"))
            if code != grpc.StatusCode.OK or [e.name for e in status.environments] != ["beta"]:
                wrong.append(f"{path} with a beta key: {code.name}, {[e.name for e in status.environments]}")
            continue
        want = grpc.StatusCode.PERMISSION_DENIED
        if how == KEY_ID:
            want = grpc.StatusCode.NOT_FOUND
        elif how == UNSCOPED:
            want = grpc.StatusCode.OK
        if code != want:
            wrong.append(f"{path} naming local with a beta {role} key: {code.name}, expected {want.name}")
        # ... while the same request with a local credential of the same role is not refused.
        code, error = await _scoped_call(secure, path, role, local_key)
        if code in DENIALS or code in BROKEN:
            details = error.details() if error is not None else ""
            wrong.append(f"{path} naming local with a local {role} key: {code.name} {details}")
    assert not wrong, "\n".join(wrong)


def _status_request() -> Any:
    from vexil.v1 import admin_pb2

    return admin_pb2.GetStatusRequest()


async def test_a_request_is_parsed_only_after_its_caller_passed(secure: Secure) -> None:
    """Parsing is the costly part of a large request (megabytes of protobuf hold the event loop),
    so a caller without credentials, or without the role, must not get that far: bytes that are
    no request at all are refused as the caller is, and only a caller allowed to make the call
    learns that they do not decode."""
    create = next(rpc for rpc in RPCS if rpc.path == "/vexil.v1.AdminService/CreateFlag")
    garbage = b"\xff\xfe not a protobuf \x00\x01"
    unknown = (("authorization", "Bearer vxk_0123456789abcdef_" + "x" * 40),)
    refused = {
        "no credentials": ((), grpc.StatusCode.UNAUTHENTICATED),
        "an unknown key": (unknown, grpc.StatusCode.UNAUTHENTICATED),
        "an evaluator": (secure.md(EVALUATOR), grpc.StatusCode.PERMISSION_DENIED),
        "an admin": (secure.md("admin"), grpc.StatusCode.INVALID_ARGUMENT),
    }
    for who, (metadata, expected) in refused.items():
        error = await call(secure.channel, create, metadata, raw=garbage)
        assert error is not None and error.code() == expected, (who, error)
