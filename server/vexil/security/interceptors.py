"""The gRPC side of security: an authentication interceptor and a rate-limit interceptor.

Order in the server (`vexil.app`): authentication -> rate limit -> decoding -> the rest (a
request is parsed only once its caller passed both: `vexil.transport.decoding`).  Each
interceptor looks up the method's rule in `policy` once and caches the wrapped handler per
method, so a call pays for its checks and nothing else; open methods (health, reflection) are
passed through untouched.

Authentication sets `vexil.identity.current_principal` for the duration of the call (the
adapters read it for `actor` and the default environment, `FlagService.environment` for the
environment scope) and, for streams, a `StreamTicket` that lets the security layer end the
stream when its credentials stop being valid (`streams`).  Failures end the call with the
`VexilError`'s status (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED with `retry-after`,
UNAVAILABLE when the key store cannot be read); anything unexpected is INTERNAL with a generic
message and the traceback in the server log.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from vexil.errors import MethodClosed, PermissionDenied, ResourceExhausted, VexilError
from vexil.identity import current_principal
from vexil.reasons import Reason
from vexil.security import audit, roles
from vexil.security.authn import AUTHORIZATION, MISSING, Authenticator, Identity
from vexil.security.policy import Rule, rule_for
from vexil.security.ratelimit import RateLimiter
from vexil.security.streams import Client, StreamRegistry, StreamTicket
from vexil.transport import status
from vexil.transport.details import DEFAULT_RETRY_SECONDS
from vexil.transport.peers import peer_host
from vexil.transport.wrapping import WrappingInterceptor

Behavior = Callable[..., Any]
Wrap = Callable[[Behavior], Behavior]

_RESPONSE_UNARY = ("unary_unary", "stream_unary")
_RESPONSE_STREAMING = ("unary_stream", "stream_stream")


def replace_behavior(
    handler: grpc.RpcMethodHandler, unary: Wrap, streaming: Wrap, writer: Wrap
) -> grpc.RpcMethodHandler:
    """The handler with its behaviour wrapped by `unary`, `streaming` (a streaming response from
    an async generator) or `writer` (a streaming response written with `context.write`)."""
    for attr in _RESPONSE_UNARY:
        behavior = getattr(handler, attr)
        if behavior is not None:
            return handler._replace(**{attr: unary(behavior)})
    for attr in _RESPONSE_STREAMING:
        behavior = getattr(handler, attr)
        if behavior is not None:
            wrap = writer if inspect.iscoroutinefunction(behavior) else streaming
            return handler._replace(**{attr: wrap(behavior)})
    return handler


async def _end_if_closed(ticket: StreamTicket, context: grpc.aio.ServicerContext) -> None:
    """A stream whose credentials were revoked ends UNAUTHENTICATED, saying why; one whose
    credentials could not be confirmed, UNAVAILABLE (retry)."""
    if ticket.retry:
        await status.refuse(
            context,
            grpc.StatusCode.UNAVAILABLE,
            ticket.closed_reason,
            Reason.STORE_UNAVAILABLE,
            retry_after=DEFAULT_RETRY_SECONDS,
        )
    if ticket.closed_reason:
        await status.refuse(
            context, grpc.StatusCode.UNAUTHENTICATED, ticket.closed_reason, Reason.CREDENTIALS_CLOSED
        )


Rejected = Callable[[VexilError, str], None]
"""Observer told of each refused call (the error, the method path): metrics count them."""


def _ignore(exc: VexilError, method: str) -> None:
    return None


def classify(exc: VexilError) -> tuple[str, str]:
    """What a refusal was, for the metrics: ("rate_limit", "client" | "global") or
    ("auth", missing | malformed | expired | revoked | forbidden | unknown)."""
    if isinstance(exc, ResourceExhausted):
        return "rate_limit", "global" if "server's" in exc.message else "client"
    if isinstance(exc, PermissionDenied):
        return "auth", "forbidden"
    text = exc.message.lower()
    if exc.message == MISSING:
        return "auth", "missing"
    for word in ("expired", "revoked"):
        if word in text:
            return "auth", word
    if "rotated" in text:
        return "auth", "revoked"
    if any(word in text for word in ("malformed", "header", "bearer", "too long", "must be")):
        return "auth", "malformed"
    return "auth", "unknown"


class AuthInterceptor(WrappingInterceptor):
    def __init__(
        self, authenticator: Authenticator, streams: StreamRegistry, on_rejected: Rejected = _ignore
    ) -> None:
        super().__init__()
        self.authenticator = authenticator
        self.streams = streams
        self.on_rejected = on_rejected

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        rule = rule_for(method)
        if rule is not None and rule.role is None:
            return self._open(method, handler)
        identify = self._identifier(method, rule)
        streams = self.streams

        def unary(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                identity = await identify(context)
                token = current_principal.set(identity.principal)
                try:
                    return await behavior(request, context)
                finally:
                    current_principal.reset(token)

            return call

        def streaming(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                identity = await identify(context)
                with streams.tracking(identity, await self._reserve(method, identity, context)) as ticket:
                    async for item in behavior(request, context):
                        yield item
                    await _end_if_closed(ticket, context)

            return call

        def writer(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> None:
                identity = await identify(context)
                with streams.tracking(identity, await self._reserve(method, identity, context)) as ticket:
                    await behavior(request, context)
                    await _end_if_closed(ticket, context)

            return call

        return replace_behavior(handler, unary, streaming, writer)

    async def _reserve(
        self, method: str, identity: Identity | None, context: grpc.aio.ServicerContext
    ) -> Client:
        """The stream's place in the per-client count; over the cap, the call ends
        RESOURCE_EXHAUSTED (`StreamRegistry.reserve`)."""
        try:
            return self.streams.reserve(identity, context.peer() or "")
        except VexilError as exc:
            self.on_rejected(exc, method)
            await status.abort(context, exc)
            raise AssertionError("unreachable: abort raises") from exc

    def _open(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """A method open to all: no credentials, but a stream's place is counted by address."""
        streams = self.streams

        def unary(behavior: Behavior) -> Behavior:
            return behavior

        def streaming(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with streams.holding(await self._reserve(method, None, context)):
                    async for item in behavior(request, context):
                        yield item

            return call

        def writer(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> None:
                with streams.holding(await self._reserve(method, None, context)):
                    await behavior(request, context)

            return call

        return replace_behavior(handler, unary, streaming, writer)

    def _identifier(
        self, method: str, rule: Rule | None
    ) -> Callable[[grpc.aio.ServicerContext], Awaitable[Identity]]:
        authenticate = self.authenticator.authenticate
        on_rejected = self.on_rejected
        name = method.rsplit("/", 1)[-1]

        async def identify(context: grpc.aio.ServicerContext) -> Identity:
            peer = context.peer() or ""
            try:
                if rule is None or rule.role is None:
                    raise MethodClosed(f"{name} has no access rule; it is closed to everyone")
                values = [v for k, v in context.invocation_metadata() or () if k == AUTHORIZATION]
                identity = await authenticate(values, peer=peer, method=method)
                role = identity.principal.role
                if not roles.allows(role, rule.role):
                    audit.auth_failed("role too low", peer=peer, method=method, key_id=identity.key_id)
                    raise PermissionDenied(
                        f"{name} needs the {rule.role} role; these credentials have {role or 'no role'}"
                    )
                return identity
            except VexilError as exc:
                on_rejected(exc, method)
                await status.abort(context, exc)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:
                await status.abort_internal(context, "authentication")
            raise AssertionError("unreachable: abort raises")

        return identify


class RateLimitInterceptor(WrappingInterceptor):
    """Counts each call (a stream once, when it opens) against `policy`'s limit for the method."""

    def __init__(self, limiter: RateLimiter, on_rejected: Rejected = _ignore) -> None:
        super().__init__()
        self.limiter = limiter
        self.on_rejected = on_rejected

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        rule = rule_for(method)
        if rule is None or not self.limiter.limits(rule.api):
            return handler
        check = self.limiter.check
        on_rejected = self.on_rejected
        api = rule.api

        async def admit(context: grpc.aio.ServicerContext) -> None:
            principal = current_principal.get()
            if principal is not None:
                client, role = principal.subject, principal.role
            else:
                client, role = "peer:" + peer_host(context.peer() or ""), ""
            try:
                check(api, client, role)
            except VexilError as exc:
                on_rejected(exc, method)
                await status.abort(context, exc)

        def unary(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(context)
                return await behavior(request, context)

            return call

        def streaming(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await admit(context)
                async for item in behavior(request, context):
                    yield item

            return call

        return replace_behavior(handler, unary, streaming, unary)
