"""vexil.v1.KeyService: API key management, a thin adapter over `security.keys.KeyManager`.

The policy table already admits only admins; this adapter adds the environment scope: an admin
whose credential is scoped to some environments manages only keys of those (naming another
environment is PERMISSION_DENIED), and only an admin holding every environment may create a `*`
key.  Without authentication (the open local mode) every call is refused: a key made by anyone
there would be a real credential on every server sharing the store.  The first admin key comes
from bootstrap (`vexil keys create --bootstrap`, `VEXIL_BOOTSTRAP_ADMIN_KEY`).
"""

from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from vexil import identity
from vexil.errors import (
    ApiKeyNotFound,
    InvalidArgument,
)
from vexil.security.keys import (
    Author,
    IssuedKey,
    KeyManager,
    key_environment,
    may_manage,
    require_auth,
    require_key_scope,
)
from vexil.service import FlagService
from vexil.store.keys import ApiKey
from vexil.transport import status
from vexil.v1 import keys_pb2, keys_pb2_grpc

ROLE_TO_PB = {
    "evaluator": keys_pb2.ROLE_EVALUATOR,
    "editor": keys_pb2.ROLE_EDITOR,
    "admin": keys_pb2.ROLE_ADMIN,
}
ROLE_FROM_PB = {v: k for k, v in ROLE_TO_PB.items()}


def _timestamp(seconds: float, out: Timestamp) -> None:
    if seconds:
        out.FromNanoseconds(int(seconds * 1e9))


def key_to_pb(key: ApiKey, out: keys_pb2.ApiKey | None = None) -> keys_pb2.ApiKey:
    out = out if out is not None else keys_pb2.ApiKey()
    out.id = key.id
    out.environment = key.environment
    out.role = ROLE_TO_PB.get(key.role, keys_pb2.ROLE_UNSPECIFIED)
    out.description = key.description
    out.created_by = key.created_by
    out.revoked = key.revoked
    out.revoked_by = key.revoked_by
    out.revoked_reason = key.revoked_reason
    _timestamp(key.created_at, out.created_at)
    _timestamp(key.expires_at, out.expires_at)
    _timestamp(key.last_used_at, out.last_used_at)
    _timestamp(key.rotated_at, out.rotated_at)
    _timestamp(key.revoked_at, out.revoked_at)
    if key.previous_hash and key.previous_expires_at > time.time():
        _timestamp(key.previous_expires_at, out.previous_secret_expires_at)
    return out


def _author(context: grpc.aio.ServicerContext) -> Author:
    return {"actor": identity.actor(context), "peer": context.peer() or ""}


def _lifetime(ttl_seconds: int) -> float | None:
    """A requested key lifetime; 0 (not given) is None, the key manager's default."""
    return float(ttl_seconds) or None


def _issued(issued: IssuedKey) -> keys_pb2.IssuedKey:
    response = keys_pb2.IssuedKey(token=issued.token)
    key_to_pb(issued.key, response.key)
    return response


class KeyServicer(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, keys: KeyManager, service: FlagService, *, auth_required: bool = True) -> None:
        self.keys = keys
        self.service = service
        self.auth_required = auth_required

    async def _managed(self, key_id: str) -> ApiKey:
        key = await self.keys.get(key_id)
        if not may_manage(key.environment):
            # Out of scope reads as absent: ids of other environments' keys are not confirmed.
            raise ApiKeyNotFound(f"API key {key_id} does not exist")
        return key

    @status.unary
    async def CreateKey(self, request, context: grpc.aio.ServicerContext) -> keys_pb2.IssuedKey:
        require_auth(self.auth_required)
        role = ROLE_FROM_PB.get(request.role)
        if role is None:
            raise InvalidArgument("name the key's role: evaluator, editor or admin", "role")
        environment = key_environment(request.environment, self.service.environment)
        require_key_scope(environment)
        issued = await self.keys.create(
            environment=environment,
            role=role,
            description=request.description,
            lifetime=_lifetime(request.ttl_seconds),
            **_author(context),
        )
        return _issued(issued)

    @status.unary
    async def ListKeys(self, request, context: grpc.aio.ServicerContext) -> keys_pb2.ListKeysResponse:
        require_auth(self.auth_required)
        response = keys_pb2.ListKeysResponse()
        if request.environment:
            require_key_scope(request.environment)
        keys = sorted(await self.keys.list(), key=lambda k: (-k.created_at, k.id))
        for key in keys:
            if request.environment and key.environment != request.environment:
                continue
            if (key.revoked and not request.include_revoked) or not may_manage(key.environment):
                continue
            key_to_pb(key, response.keys.add())
        return response

    @status.unary
    async def RotateKey(self, request, context: grpc.aio.ServicerContext) -> keys_pb2.IssuedKey:
        require_auth(self.auth_required)
        key = await self._managed(request.id)
        issued = await self.keys.rotate(
            key.id,
            overlap=float(request.overlap_seconds) if request.HasField("overlap_seconds") else None,
            lifetime=_lifetime(request.ttl_seconds),
            **_author(context),
        )
        return _issued(issued)

    @status.unary
    async def RevokeKey(self, request, context: grpc.aio.ServicerContext) -> keys_pb2.ApiKey:
        require_auth(self.auth_required)
        key = await self._managed(request.id)
        revoked = await self.keys.revoke(key.id, reason=request.reason, **_author(context))
        return key_to_pb(revoked)
