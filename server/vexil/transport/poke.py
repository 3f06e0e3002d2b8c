"""The poke client: one replica telling another "config_version N of this environment exists".

Channels are opened once per peer address and kept (a fleet is small; the table is bounded), so
a poke costs one small unary call.  The replica secret travels in the `x-vexil-replica-secret`
metadata; over TLS when this server serves TLS (trusting `replica_ca_cert`, verifying each peer's
certificate against `replica_tls_server_name` when set, and presenting this server's own
certificate where peers require client certificates).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import grpc

from vexil.config import ConfigError, Settings
from vexil.v1 import replica_pb2, replica_pb2_grpc

SECRET_HEADER = "x-vexil-replica-secret"
MAX_PEERS = 256
"""Channels kept open at once; the least recently poked peer's channel is closed beyond this."""


def read_secret(settings: Settings) -> str:
    """The replica secret from `replica_secret_file` ("" when none is configured)."""
    if not settings.replica_secret_file:
        return ""
    try:
        secret = Path(settings.replica_secret_file).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"replica_secret_file: cannot read {settings.replica_secret_file}: {exc}") from None
    if len(secret) < 16:
        raise ConfigError("replica_secret_file: the secret must be at least 16 characters")
    return secret


class PokeClient:
    """Sends pokes (a `vexil.fleet.PokeSender`)."""

    def __init__(self, settings: Settings, *, replica_id: str, secret: str) -> None:
        self.replica_id = replica_id
        self._metadata = ((SECRET_HEADER, secret),) if secret else ()
        self._credentials: grpc.ChannelCredentials | None = None
        if settings.tls_cert:
            roots = Path(settings.replica_ca_cert).read_bytes() if settings.replica_ca_cert else None
            key = cert = None
            if settings.tls_client_ca:
                key = Path(settings.tls_key).read_bytes()
                cert = Path(settings.tls_cert).read_bytes()
            self._credentials = grpc.ssl_channel_credentials(roots, key, cert)
        self._options: tuple[tuple[str, str], ...] = ()
        if settings.replica_tls_server_name:
            self._options = (("grpc.ssl_target_name_override", settings.replica_tls_server_name),)
        self._stubs: OrderedDict[str, tuple[grpc.aio.Channel, replica_pb2_grpc.ReplicaServiceStub]] = (
            OrderedDict()
        )

    def _stub(self, address: str) -> replica_pb2_grpc.ReplicaServiceStub:
        found = self._stubs.get(address)
        if found is not None:
            self._stubs.move_to_end(address)
            return found[1]
        if self._credentials is not None:
            channel = grpc.aio.secure_channel(address, self._credentials, options=self._options)
        else:
            channel = grpc.aio.insecure_channel(address)
        self._stubs[address] = (channel, replica_pb2_grpc.ReplicaServiceStub(channel))
        if len(self._stubs) > MAX_PEERS:
            _, (oldest, _) = self._stubs.popitem(last=False)
            oldest.close()  # type: ignore[unused-coroutine]  # closing in the background is fine
        return self._stubs[address][1]

    async def __call__(self, address: str, environment: str, config_version: int) -> None:
        request = replica_pb2.PokeRequest(
            environment=environment, config_version=config_version, replica_id=self.replica_id
        )
        await self._stub(address).Poke(request, metadata=self._metadata)

    async def close(self) -> None:
        stubs, self._stubs = self._stubs, OrderedDict()
        for channel, _ in stubs.values():
            await channel.close()
