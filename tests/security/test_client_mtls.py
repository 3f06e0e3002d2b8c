"""The client SDK speaks mutual TLS from the same variables as the `vexil` command
(`VEXIL_CA_CERT`, `VEXIL_CLIENT_CERT`, `VEXIL_CLIENT_KEY`, `VEXIL_TOKEN`): against a server that
requires a client certificate, it is answered with one and refused without."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.pki import PkiFiles
from tests.support.secure import open_secure
from vexil.client import AsyncClient, ConfigError, ErrorCode, load_config


async def test_the_sdk_presents_a_client_certificate_from_the_variables(pki: PkiFiles) -> None:
    async with open_secure(pki, mtls=True) as server:
        token = await server.issue("evaluator")
        environ = {
            "VEXIL_TARGET": server.target,
            "VEXIL_CA_CERT": pki.ca,
            "VEXIL_CLIENT_CERT": pki.client_cert,
            "VEXIL_CLIENT_KEY": pki.client_key,
            "VEXIL_TOKEN": token,
            "VEXIL_DEADLINE_MS": "5000",
        }
        async with AsyncClient(load_config(environ=environ)) as client:
            answered = await client.bool_details("no-such-flag", False)
        # The server answered (the flag does not exist there), so the handshake went through.
        assert answered.error_code is ErrorCode.FLAG_NOT_FOUND, answered
        without = {k: v for k, v in environ.items() if k not in ("VEXIL_CLIENT_CERT", "VEXIL_CLIENT_KEY")}
        async with AsyncClient(load_config(environ=without)) as client:
            refused = await client.bool_details("no-such-flag", False)
        assert refused.error_code is ErrorCode.GENERAL and refused.value is False, refused


def test_half_a_client_certificate_is_refused_at_construction(pki: PkiFiles) -> None:
    with pytest.raises(ConfigError, match="client_certificate and client_key go together"):
        load_config(environ={"VEXIL_CLIENT_CERT": pki.client_cert})


def test_a_client_key_not_of_its_certificate_is_refused_at_construction(pki: PkiFiles) -> None:
    """gRPC takes any pair and fails only at the handshake, as if the server were unavailable
    (every evaluation GENERAL, its code default): the pair is loaded at construction instead,
    and the mistake named with both files."""
    environ = {"VEXIL_CLIENT_CERT": pki.client_cert, "VEXIL_CLIENT_KEY": pki.rogue_client_key}
    with pytest.raises(ConfigError) as refused:
        load_config(environ=environ)
    said = str(refused.value)
    assert pki.rogue_client_key in said and pki.client_cert in said, said
    assert "is not the key of that certificate" in said, said


def test_an_encrypted_client_key_is_refused_without_asking_for_its_passphrase(
    pki: PkiFiles, tmp_path: Path
) -> None:
    """gRPC cannot use an encrypted key, and loading one would prompt on the terminal."""
    key = serialization.load_pem_private_key(Path(pki.client_key).read_bytes(), password=None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigError, match="is encrypted: give a key without a passphrase"):
        load_config(environ={"VEXIL_CLIENT_CERT": pki.client_cert, "VEXIL_CLIENT_KEY": str(locked)})
