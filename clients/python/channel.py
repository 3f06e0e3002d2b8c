"""gRPC channels and call metadata from a `ClientConfig`, for the sync and the asyncio stacks.

One channel per client carries both the evaluation calls and the Watch stream.  Retries of
unary calls are left to gRPC (a service config, so they stay inside the caller's deadline);
reconnecting the stream is the watcher's job, because it must resume with `since_version`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from pathlib import Path

import grpc

from vexil.client.config import ClientConfig

log = logging.getLogger("vexil.client")

USER_AGENT = "vexil-python-client/0.1"
SERVICE = "vexil.v1.EvaluationService"
Metadata = tuple[tuple[str, str], ...]


def call_metadata(config: ClientConfig) -> Metadata:
    if config.api_key:
        return (("authorization", f"Bearer {config.api_key}"),)
    return ()


def options(config: ClientConfig) -> list[tuple[str, object]]:
    opts: list[tuple[str, object]] = [
        ("grpc.primary_user_agent", USER_AGENT),
        # A snapshot of a large environment is one message: the default 4 MB is too small.
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ]
    retry = config.retry
    if retry.max_attempts > 1:
        policy = {
            "maxAttempts": min(retry.max_attempts, 5),
            "initialBackoff": "0.01s",
            "maxBackoff": "0.05s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
        service_config = {
            "methodConfig": [
                {
                    "name": [
                        {"service": SERVICE, "method": "Evaluate"},
                        {"service": SERVICE, "method": "EvaluateAll"},
                    ],
                    "retryPolicy": policy,
                }
            ]
        }
        opts += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(service_config))]
    if config.tls_server_name:
        opts.append(("grpc.ssl_target_name_override", config.tls_server_name))
    return opts


def credentials(config: ClientConfig) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for plaintext (warned about when a key would cross a network)."""
    if not config.uses_tls:
        if config.api_key and not _is_loopback(config.target):
            log.warning("vexil client: sending an API key without TLS to %s", config.target)
        return None

    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(config.root_certificates),
        private_key=read(config.client_key),
        certificate_chain=read(config.client_certificate),
    )


def sync_channel(config: ClientConfig) -> grpc.Channel:
    creds = credentials(config)
    if creds is None:
        return grpc.insecure_channel(config.target, options=options(config))
    return grpc.secure_channel(config.target, creds, options=options(config))


def aio_channel(config: ClientConfig) -> grpc.aio.Channel:
    creds = credentials(config)
    if creds is None:
        return grpc.aio.insecure_channel(config.target, options=options(config))
    return grpc.aio.secure_channel(config.target, creds, options=options(config))


def _is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]")
    if host.startswith(("unix:", "unix-abstract:")) or host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
