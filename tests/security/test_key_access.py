"""Keys need authentication and end: the key service refuses every call while authentication is
off (a key made anonymously would be a real credential wherever the store is shared), lifetimes
are bounded by a setting, and an admin lists keys only of environments in its scope."""

from __future__ import annotations

import subprocess

import grpc
import pytest

from tests.support.pki import PkiFiles
from tests.support.secure import Secure, open_secure
from tests.support.servers import VEXIL, connected, running_app, secure_settings, server_settings
from vexil import config
from vexil.v1 import keys_pb2, keys_pb2_grpc

DAY = 86400
KEY_ID = "0123456789abcdef"


def open_settings(request: pytest.FixtureRequest, kind: str, **overrides: object) -> config.Settings:
    if kind == "memory":
        return server_settings(**overrides)
    endpoint, table = request.getfixturevalue("dynamo_table")
    return server_settings(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table, **overrides)


@pytest.mark.parametrize("kind", ["memory", "dynamodb"])
async def test_the_key_service_refuses_every_call_without_authentication(
    request: pytest.FixtureRequest, pki: PkiFiles, kind: str
) -> None:
    settings = open_settings(request, kind)
    assert not settings.auth_required
    async with running_app(settings) as app, connected(app) as conn:
        stub = keys_pb2_grpc.KeyServiceStub(conn.channel)
        calls = {
            "CreateKey": stub.CreateKey(keys_pb2.CreateKeyRequest(environment="*", role=keys_pb2.ROLE_ADMIN)),
            "ListKeys": stub.ListKeys(keys_pb2.ListKeysRequest()),
            "RotateKey": stub.RotateKey(keys_pb2.RotateKeyRequest(id=KEY_ID)),
            "RevokeKey": stub.RevokeKey(keys_pb2.RevokeKeyRequest(id=KEY_ID)),
        }
        for name, pending in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pending
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, name
            details = err.value.details() or ""
            assert "auth_mode required" in details and "bootstrap" in details, details
        assert await app.security.keys.list() == []
    if kind == "dynamodb":  # a replica that requires authentication finds no key in the shared table
        shared = {"store": "dynamodb", "dynamodb_endpoint": settings.dynamodb_endpoint}
        async with running_app(
            secure_settings(pki, dynamodb_table=settings.dynamodb_table, **shared)
        ) as replica:
            assert await replica.security.keys.list() == []


TOO_LONG = (2**63, 2**64 - 1, 10**11, 365 * DAY + 1)


async def test_key_lifetimes_are_bounded(secure: Secure) -> None:
    root = secure.md("root")
    before = await secure.key_service.ListKeys(keys_pb2.ListKeysRequest(), metadata=root)
    target = secure.tokens["evaluator"][4:20]
    for ttl in TOO_LONG:
        for pending in (
            secure.key_service.CreateKey(
                keys_pb2.CreateKeyRequest(environment="local", role=keys_pb2.ROLE_EVALUATOR, ttl_seconds=ttl),
                metadata=root,
            ),
            secure.key_service.RotateKey(
                keys_pb2.RotateKeyRequest(id=target, ttl_seconds=ttl), metadata=root
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pending
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ttl
            assert "ttl_seconds" in (err.value.details() or "")
            assert "key_max_lifetime_days" in (err.value.details() or "")
    # Nothing stored was harmed: the listing works for everyone and is unchanged.
    after = await secure.key_service.ListKeys(keys_pb2.ListKeysRequest(), metadata=root)
    assert after == before
    assert (await secure.key_service.ListKeys(keys_pb2.ListKeysRequest(), metadata=secure.md("admin"))).keys

    longest = await secure.key_service.CreateKey(
        keys_pb2.CreateKeyRequest(environment="local", role=keys_pb2.ROLE_EVALUATOR, ttl_seconds=365 * DAY),
        metadata=root,
    )
    assert longest.key.expires_at.seconds - longest.key.created_at.seconds == pytest.approx(365 * DAY, abs=2)
    default = await secure.key_service.CreateKey(
        keys_pb2.CreateKeyRequest(environment="local", role=keys_pb2.ROLE_EVALUATOR), metadata=root
    )
    assert default.key.expires_at.seconds - default.key.created_at.seconds == pytest.approx(90 * DAY, abs=2)


async def test_the_longest_lifetime_is_a_setting(pki: PkiFiles) -> None:
    async with open_secure(pki, key_max_lifetime_days=10, key_lifetime_days=5) as server:
        server.tokens["root"] = await server.issue("admin", "*")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.key_service.CreateKey(
                keys_pb2.CreateKeyRequest(
                    environment="local", role=keys_pb2.ROLE_EVALUATOR, ttl_seconds=11 * DAY
                ),
                metadata=server.md("root"),
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        made = await server.key_service.CreateKey(
            keys_pb2.CreateKeyRequest(environment="local", role=keys_pb2.ROLE_EVALUATOR),
            metadata=server.md("root"),
        )
        assert made.key.expires_at.seconds - made.key.created_at.seconds == pytest.approx(5 * DAY, abs=2)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"VEXIL_KEY_LIFETIME_DAYS": "400"}, "key_lifetime_days (from VEXIL_KEY_LIFETIME_DAYS)"),
        ({"VEXIL_KEY_MAX_LIFETIME_DAYS": "0"}, "key_max_lifetime_days (from VEXIL_KEY_MAX_LIFETIME_DAYS)"),
        ({"VEXIL_KEY_MAX_LIFETIME_DAYS": "30"}, "at most key_max_lifetime_days (30)"),
    ],
)
def test_lifetime_settings_are_checked_at_start(environ: dict[str, str], words: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(environ=environ)
    assert words in str(err.value)


async def test_listing_keys_of_another_environment_is_refused(secure: Secure) -> None:
    local_admin = secure.md("admin")
    for environment in ("beta", "*"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await secure.key_service.ListKeys(
                keys_pb2.ListKeysRequest(environment=environment), metadata=local_admin
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, environment
    own = await secure.key_service.ListKeys(
        keys_pb2.ListKeysRequest(environment="local"), metadata=local_admin
    )
    assert own.keys and {k.environment for k in own.keys} == {"local"}


@pytest.mark.parametrize("days", ["-1", "0.000001", "nan", "inf"])
@pytest.mark.parametrize("command", [["create", "--role", "evaluator"], ["rotate", "0123456789abcdef"]])
def test_the_cli_refuses_a_lifetime_out_of_range(command: list[str], days: str) -> None:
    done = subprocess.run(
        [VEXIL, "keys", *command, "--ttl-days", days, "--target", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--ttl-days" in done.stderr and "Traceback" not in done.stderr
