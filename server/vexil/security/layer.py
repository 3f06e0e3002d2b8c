"""The security layer of one server, built from `Settings`: what `vexil.app` plugs in.

- `interceptors`: authentication then rate limiting (empty in the open local mode);
- `http_authenticator`: the same for OFREP on the HTTP side;
- `operations_authenticator`: who may read `/metrics` and the `/readyz` detail;
- `grpc_credentials` / `http_ssl_context`: TLS for both listeners (None without TLS);
- `hub`: the hub that lets revoked credentials end their streams;
- `keys`: API key management (the KeyService servicer and the bootstrap key use it).

Key material (TLS files, JWT keys) is loaded here, at construction, so a bad file stops the
server at start with a `ConfigError` naming it, not at the first request.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from vexil.config import ConfigError, Settings, insecure_reasons, require_secure
from vexil.security.authn import Authenticator
from vexil.security.http import HttpAuthenticator, OperationsAuthenticator
from vexil.security.insecure import InsecureNotice
from vexil.security.interceptors import AuthInterceptor, RateLimitInterceptor, Rejected
from vexil.security.jwt_verifier import JwtConfigError, JwtVerifier
from vexil.security.keys import DAY, KeyManager
from vexil.security.ratelimit import RateLimiter
from vexil.security.streams import StreamRegistry, TrackedHub
from vexil.security.tls import TlsConfigError, TlsFiles, server_context, server_credentials
from vexil.store.keys import KeyStore, MemoryKeyStore
from vexil.transport.wrapping import WrappingInterceptor


def build_key_store(settings: Settings) -> KeyStore:
    """Keys live where flags do: the same DynamoDB table, or process memory."""
    if settings.store == "dynamodb":
        from vexil.store.keys_dynamodb import DynamoKeyStore

        return DynamoKeyStore(
            settings.table, region=settings.dynamodb_region, endpoint_url=settings.dynamodb_endpoint or None
        )
    return MemoryKeyStore()


def build_jwt(settings: Settings) -> JwtVerifier | None:
    if not settings.jwt_enabled:
        return None
    secret = ""
    if settings.jwt_secret_file:
        try:
            secret = Path(settings.jwt_secret_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"jwt_secret_file: cannot read {settings.jwt_secret_file}: {exc}") from None
    try:
        return JwtVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            secret=secret,
            public_key_file=settings.jwt_public_key,
            jwks_file=settings.jwt_jwks_file,
            leeway=settings.jwt_clock_skew,
        )
    except JwtConfigError as exc:
        raise ConfigError(str(exc)) from None


def check(settings: Settings) -> None:
    """Everything start-up would refuse, without starting: for `vexil serve` to report cleanly."""
    require_secure(settings)
    build_jwt(settings)
    if settings.tls_cert:
        _tls_context(TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca))


def _tls_context(files: TlsFiles) -> ssl.SSLContext:
    try:
        return server_context(files)
    except TlsConfigError as exc:
        raise ConfigError(str(exc)) from None


class SecurityLayer:
    def __init__(self, settings: Settings, key_store: KeyStore | None = None) -> None:
        require_secure(settings)
        self.settings = settings
        self.insecure = InsecureNotice(insecure_reasons(settings))
        """Why this server serves insecurely (`insecure.reasons`, empty when it does not)."""
        self.keys = KeyManager(
            key_store if key_store is not None else build_key_store(settings),
            cache_ttl=settings.key_cache_ttl,
            lifetime=settings.key_lifetime_days * DAY,
            max_lifetime=settings.key_max_lifetime_days * DAY,
            overlap=settings.key_rotation_overlap_hours * 3600.0,
        )
        self.authenticator = Authenticator(self.keys, build_jwt(settings)) if settings.auth_required else None
        self.streams = StreamRegistry(self.keys, sweep_seconds=min(1.0, settings.key_cache_ttl))
        self.keys.on_change = self.streams.recheck
        self.limiter = (
            RateLimiter(
                admin_per_minute=settings.rate_limit_admin,
                admin_per_minute_by_role=settings.admin_rate_limits,
                evaluation_per_second=settings.rate_limit_evaluation,
                evaluation_per_client=settings.rate_limit_evaluation_client,
                evaluation_per_client_by_role=settings.evaluation_role_quotas,
                evaluation_per_client_by_key=settings.evaluation_key_quotas,
            )
            if settings.rate_limits_active
            else None
        )
        self.tls = (
            TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
            if settings.tls_cert
            else None
        )
        self.http_ssl_context = _tls_context(self.tls) if self.tls is not None else None

    def hub(self, queue_size: int) -> TrackedHub:
        return TrackedHub(queue_size=queue_size)

    def interceptors(self, on_rejected: Rejected | None = None) -> list[WrappingInterceptor]:
        """Authentication, then rate limiting: a refused credential never uses up a bucket.
        `on_rejected` is told of every call either refuses (metrics count them)."""
        chain: list[WrappingInterceptor] = []
        observe = on_rejected or (lambda exc, method: None)
        if self.authenticator is not None:
            chain.append(AuthInterceptor(self.authenticator, self.streams, observe))
        if self.limiter is not None:
            chain.append(RateLimitInterceptor(self.limiter, observe))
        return chain

    @property
    def http_authenticator(self) -> HttpAuthenticator | None:
        if self.authenticator is None and self.limiter is None:
            return None
        return HttpAuthenticator(self.authenticator, self.limiter)

    @property
    def operations_authenticator(self) -> OperationsAuthenticator | None:
        """Who may read `/metrics` and the `/readyz` detail: outside the local profile, only
        credentials for every environment; None (open) in the local profile or without
        authentication (an `--insecure` loop, which says so loudly)."""
        if self.authenticator is None or self.settings.env == "local":
            return None
        return OperationsAuthenticator(self.authenticator)

    def grpc_credentials(self) -> grpc.ServerCredentials | None:
        if self.tls is None:
            return None
        try:
            return server_credentials(self.tls)
        except TlsConfigError as exc:
            raise ConfigError(str(exc)) from None

    async def start(self) -> None:
        self.insecure.start()
        await self.keys.start()
        if self.settings.bootstrap_admin_key:
            await self.keys.ensure_bootstrap(self.settings.bootstrap_admin_key)
        self.streams.start()

    async def stop(self) -> None:
        await self.insecure.stop()
        await self.streams.stop()
        await self.keys.stop()
