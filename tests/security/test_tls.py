"""TLS on both listeners: plaintext and untrusted clients are refused, mutual TLS requires a
certificate from the configured CA, and nothing older than TLS 1.2 is accepted."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import warnings

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.pki import PkiFiles
from tests.support.secure import open_secure
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc


async def health(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def channel_with(target: str, pki: PkiFiles, root: str = "ca", cert: str = "") -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read(root),
        private_key=pki.read(f"{cert}_key") if cert else None,
        certificate_chain=pki.read(f"{cert}_cert") if cert else None,
    )
    return grpc.aio.secure_channel(target, credentials)


async def test_only_tls_clients_that_trust_the_server_connect(pki: PkiFiles) -> None:
    async with open_secure(pki) as server:
        assert await health(server.channel) == grpc.StatusCode.OK
        async with grpc.aio.insecure_channel(server.target) as plain:
            assert await health(plain) == grpc.StatusCode.UNAVAILABLE
        async with channel_with(server.target, pki, root="rogue_client_cert") as untrusting:
            assert await health(untrusting) == grpc.StatusCode.UNAVAILABLE
        https = f"https://localhost:{server.app.http_port}/healthz"
        async with aiohttp.ClientSession() as http:
            async with http.get(https, ssl=ssl.create_default_context(cafile=pki.ca)) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://localhost:{server.app.http_port}/healthz") as response:
                    await response.read()


async def test_mutual_tls_requires_a_client_certificate_from_the_configured_ca(pki: PkiFiles) -> None:
    async with open_secure(pki, mtls=True) as server:
        token = await server.issue("evaluator")
        assert await health(server.channel) == grpc.StatusCode.OK  # the fixture's channel has the cert
        for cert in ("", "rogue_client"):
            async with channel_with(server.target, pki, cert=cert) as refused:
                assert await health(refused) == grpc.StatusCode.UNAVAILABLE
        # mTLS is transport security; calls still need credentials.
        stub = evaluation_pb2_grpc.EvaluationServiceStub(server.channel)
        response = await stub.Evaluate(
            evaluation_pb2.EvaluateRequest(flag_key="f"), metadata=(("authorization", f"Bearer {token}"),)
        )
        assert response.flag_key == "f"
        context = ssl.create_default_context(cafile=pki.ca)
        url = f"https://localhost:{server.app.http_port}/healthz"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url, ssl=context) as response:
                    await response.read()
            context.load_cert_chain(pki.client_cert, pki.client_key)
            async with http.get(url, ssl=context) as response:
                assert response.status == 200


def handshake(port: int, ca: str, version: ssl.TLSVersion) -> str:
    """The TLS version negotiated when the client offers only `version`, or the failure."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client really offer the old version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.version() or ""
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {type(exc).__name__}"


def permissive_server(pki: PkiFiles) -> int:
    """A bare TLS server that accepts TLS 1.0 and up, for one connection: proof that the client
    side of `handshake` really can speak the old versions, so a refusal comes from vexil."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


async def test_nothing_older_than_tls_1_2(pki: PkiFiles) -> None:
    port = permissive_server(pki)
    assert await asyncio.to_thread(handshake, port, pki.ca, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"
    async with open_secure(pki) as server:
        for port in (server.app.port, server.app.http_port):
            assert await asyncio.to_thread(handshake, port, pki.ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
            assert await asyncio.to_thread(handshake, port, pki.ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
            for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                assert (await asyncio.to_thread(handshake, port, pki.ca, old)).startswith("refused")
