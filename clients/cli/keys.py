"""`vexil keys create|list|rotate|revoke`: API key management over the KeyService (admin role).

A new or rotated key's token is printed once; vexil stores only its hash, so a lost token cannot
be shown again (rotate the key instead).

`vexil keys create --bootstrap` makes the first admin credential, when no admin exists yet to
call the server with.  With the DynamoDB store it writes an admin key for every environment
straight into the table, with the operator's AWS credentials (whoever may write the table is
trusted anyway).  With the memory store there is no table to write to: it prints a fresh token
to hand to the server as `VEXIL_BOOTSTRAP_ADMIN_KEY`, which registers it at start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from vexil.cli import numbers, output
from vexil.cli.exitcodes import UsageError
from vexil.cli.remote import add_command, to_dict
from vexil.cli.tableopts import add_table_options, table_settings

ROLES = ("evaluator", "editor", "admin")
DAY = 86400
MOST_DAYS = 3650
"""No server lets a key live longer (`key_max_lifetime_days` is at most 3650): the most
`--ttl-days` (and `--overlap-hours`, in hours) can mean."""


def _stub(r: Any) -> Any:
    from vexil.v1 import keys_pb2_grpc

    return keys_pb2_grpc.KeyServiceStub(r.channel)


def _state(key: dict[str, Any]) -> str:
    if key.get("revoked"):
        return "revoked"
    if key.get("previous_secret_expires_at"):
        return "rotating"
    return "active"


def key_table(keys: list[dict[str, Any]]) -> str:
    if not keys:
        return "(no keys)"
    rows = [
        (
            k["id"],
            k.get("environment", ""),
            k.get("role", "").removeprefix("ROLE_").lower(),
            _state(k),
            k.get("expires_at", ""),
            k.get("last_used_at", "never"),
            k.get("description", ""),
        )
        for k in keys
    ]
    return output.table(("ID", "ENVIRONMENT", "ROLE", "STATE", "EXPIRES", "LAST USED", "DESCRIPTION"), rows)


def issued(data: dict[str, Any]) -> str:
    rows = [
        ("id", data.get("id", "")),
        ("environment", data.get("environment", "")),
        ("role", data.get("role", "").removeprefix("ROLE_").lower()),
        ("expires_at", data.get("expires_at", "")),
    ]
    if data.get("previous_secret_expires_at"):
        rows.append(("old secret until", data["previous_secret_expires_at"]))
    rows.append(("token", data["token"]))
    lines = [f"{name:<17} {value}" for name, value in rows]
    lines += ["", "Store the token now: it is not shown again. Send it as 'authorization: Bearer <token>'."]
    if data.get("hint"):
        lines += [data["hint"]]
    return "\n".join(lines)


def _ttl_seconds(days: float | None) -> int:
    """`--ttl-days` (a positive number: `numbers.positive`) as the request's seconds (0: the
    server's default), refused under a second (0 on the wire would silently mean the default)."""
    if days is None:
        return 0
    if days * DAY < 1:
        raise UsageError(f"--ttl-days must be a positive number of days, not {days:g}")
    return round(days * DAY)


def cmd_create(r: Any) -> Any:
    from vexil.v1 import keys_pb2

    a = r.args
    if a.bootstrap:
        return bootstrap(a)
    if not a.role:
        raise UsageError("--role is required: evaluator, editor or admin")
    environment = "*" if a.all_environments else r.environment
    request = keys_pb2.CreateKeyRequest(
        environment=environment,
        role=getattr(keys_pb2, f"ROLE_{a.role.upper()}"),
        description=a.description or "",
        ttl_seconds=_ttl_seconds(a.ttl_days),
    )
    response = r.call(_stub(r).CreateKey, request)
    return {**to_dict(response.key), "token": response.token}, issued


def cmd_list(r: Any) -> Any:
    from vexil.v1 import keys_pb2

    request = keys_pb2.ListKeysRequest(environment=r.environment, include_revoked=r.args.all)
    return [to_dict(k) for k in r.call(_stub(r).ListKeys, request).keys], key_table


def cmd_rotate(r: Any) -> Any:
    from vexil.v1 import keys_pb2

    a = r.args
    request = keys_pb2.RotateKeyRequest(id=a.id, ttl_seconds=_ttl_seconds(a.ttl_days))
    if a.overlap_hours is not None:
        request.overlap_seconds = round(a.overlap_hours * 3600)
    response = r.call(_stub(r).RotateKey, request)
    return {**to_dict(response.key), "token": response.token}, issued


def cmd_revoke(r: Any) -> Any:
    from vexil.v1 import keys_pb2

    a = r.args
    key = r.call(_stub(r).RevokeKey, keys_pb2.RevokeKeyRequest(id=a.id, reason=a.reason or ""))
    return to_dict(key), lambda d: f"revoked {d['id']} ({d.get('environment', '')}, {_state(d)})"


def bootstrap(a: argparse.Namespace) -> Any:
    """The first admin credential (module docstring): written to DynamoDB, or printed for memory."""
    from vexil.security import apikeys

    settings = table_settings(a, store=None)
    role = a.role or "admin"
    if settings.store != "dynamodb":
        key_id, token = apikeys.new_token()
        hint = (
            "The memory store lives in the server process: start it with this token in "
            "VEXIL_BOOTSTRAP_ADMIN_KEY (an admin key for every environment, registered at start)."
        )
        return {"id": key_id, "environment": "*", "role": "admin", "token": token, "hint": hint}, issued
    key = asyncio.run(_write_bootstrap(settings, role, a.description))  # a failure: its exit code
    data = {
        "id": key.key.id,
        "environment": key.key.environment,
        "role": key.key.role,
        "expires_at": output.iso_time(key.key.expires_at),
        "token": key.token,
    }
    return data, issued


async def _write_bootstrap(settings: Any, role: str, description: str | None) -> Any:
    from vexil.security.keys import KeyManager
    from vexil.store.keys_dynamodb import DynamoKeyStore

    store = DynamoKeyStore(
        settings.table, region=settings.dynamodb_region, endpoint_url=settings.dynamodb_endpoint or None
    )
    manager = KeyManager(
        store,
        lifetime=settings.key_lifetime_days * DAY,
        max_lifetime=settings.key_max_lifetime_days * DAY,
    )
    await store.start()
    try:
        return await manager.create(
            environment="*",
            role=role,
            actor=f"bootstrap:{os.environ.get('USER', 'operator')}",
            description=description or "bootstrap admin key (vexil keys create --bootstrap)",
        )
    finally:
        await store.close()


def add(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage API keys (admin)").add_subparsers(
        dest="keys_command", required=True
    )
    p = keys.add_parser("create", help="create a key and print its token (shown once)")
    p.add_argument("--role", choices=ROLES, help="what the key may do")
    p.add_argument("--description", help="who or what the key is for")
    p.add_argument(
        "--ttl-days",
        type=numbers.positive(MOST_DAYS),
        help="lifetime in days (default: the server's, 90; at most its maximum, 365)",
    )
    p.add_argument("--all-environments", action="store_true", help="scope '*' instead of --environment")
    b = p.add_argument_group("bootstrap (the first admin key, without a server call)")
    b.add_argument("--bootstrap", action="store_true", help="write an admin key for every environment")
    b.add_argument("--store", choices=["memory", "dynamodb"], help="where the server keeps keys")
    add_table_options(b)
    add_command(p, cmd_create)

    p = keys.add_parser("list", help="keys you may manage (secrets are never shown)")
    p.add_argument("--all", action="store_true", help="include revoked keys")
    add_command(p, cmd_list)

    p = keys.add_parser("rotate", help="new secret; the old one works for the overlap, then stops")
    p.add_argument("id")
    p.add_argument(
        "--overlap-hours",
        type=numbers.non_negative(MOST_DAYS * 24),
        help="old secret's grace (default: the server's, 24)",
    )
    p.add_argument(
        "--ttl-days",
        type=numbers.positive(MOST_DAYS),
        help="lifetime of the new secret (default 90, at most 365)",
    )
    add_command(p, cmd_rotate)

    p = keys.add_parser("revoke", help="revoke at once (open streams end too)")
    p.add_argument("id")
    p.add_argument("--reason", help="why (recorded in the audit log)")
    add_command(p, cmd_revoke)
