"""Collecting what the operations checks and `vexil status` look at, from wherever it lives.

- the server: `GetStatus`, every flag (`ListFlags`) and its API keys (`KeyService.ListKeys`)
  over gRPC, and `/metrics` over HTTP;
- the DynamoDB table, when there is one: its description, backups, PITR state and, if the
  server does not list keys, its `APIKEY#` items;
- a directory of export files (the backups of an embedded-store deployment).
Each source that fails is recorded in `Inputs.errors` with the reason, and the checks that need
it say so; gathering itself never fails half-way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from vexil.errors import VexilError
from vexil.model import Flag
from vexil.ops import exportfile
from vexil.ops.checks import Inputs
from vexil.ops.connection import Connection, ConnectionOptionsError
from vexil.ops.keys import KeyView, read_table_keys
from vexil.ops.scrape import fetch
from vexil.v1 import admin_pb2, admin_pb2_grpc
from vexil.wire import flag_from_pb

if TYPE_CHECKING:
    from vexil.store.dynamodb_client import ClientSettings

Metadata = Sequence[tuple[str, str]]


@dataclass
class Sources:
    server: Connection | None = None
    """How to reach the server (gRPC and its HTTP side); None to skip the server."""
    table: str = ""
    """DynamoDB table ("" when the deployment has none)."""
    client: ClientSettings | None = None
    """How to reach DynamoDB (with `table`)."""
    backup_dir: str = ""


def get_status(channel: grpc.Channel, metadata: Metadata, timeout: float) -> dict[str, Any]:
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    response = stub.GetStatus(admin_pb2.GetStatusRequest(), metadata=metadata, timeout=timeout)
    return json_format.MessageToDict(
        response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def list_flags(channel: grpc.Channel, environment: str, metadata: Metadata, timeout: float) -> list[Flag]:
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    flags: list[Flag] = []
    token = ""
    while True:
        request = admin_pb2.ListFlagsRequest(environment=environment, page_size=1000, page_token=token)
        response = stub.ListFlags(request, metadata=metadata, timeout=timeout)
        flags.extend(flag_from_pb(msg) for msg in response.flags)
        token = response.next_page_token
        if not token:
            return flags


def list_server_keys(channel: grpc.Channel, metadata: Metadata, timeout: float) -> list[KeyView]:
    """Keys through the server's KeyService (any store); raises grpc.RpcError if it has none."""
    from vexil.v1 import keys_pb2, keys_pb2_grpc

    stub = keys_pb2_grpc.KeyServiceStub(channel)
    response = stub.ListKeys(
        keys_pb2.ListKeysRequest(include_revoked=True), metadata=metadata, timeout=timeout
    )

    return [
        KeyView(
            id=key.id,
            environment=key.environment,
            role=keys_pb2.Role.Name(key.role).removeprefix("ROLE_").lower(),
            created_at=_seconds(key, "created_at"),
            expires_at=_seconds(key, "expires_at"),
            revoked=key.revoked,
        )
        for key in response.keys
    ]


def _seconds(message: Any, name: str) -> float:
    """A Timestamp field as seconds since the epoch (0 when absent)."""
    if not message.HasField(name):
        return 0.0
    stamp = getattr(message, name)
    return float(stamp.seconds) + stamp.nanos / 1e9


def _rpc_error(exc: grpc.RpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]


def server_inputs(sources: Sources, inputs: Inputs, *, flags: bool = True, keys: bool = True) -> None:
    """GetStatus, flags and keys over gRPC, and /metrics over HTTP, into `inputs`."""
    server = sources.server
    if server is None:
        inputs.errors.setdefault("status", "no server given")
        return
    try:
        inputs.scrape = fetch(server.metrics_url(), server.timeout, server.http_headers, server.ssl_context())
    except (VexilError, ConnectionOptionsError) as exc:
        inputs.errors["metrics"] = getattr(exc, "message", str(exc))
    metadata, timeout = server.metadata, server.timeout
    with server.channel() as channel:
        try:
            inputs.status = get_status(channel, metadata, timeout)
        except grpc.RpcError as exc:
            inputs.errors["status"] = ": ".join(server.described(exc))
            inputs.errors.setdefault("flags", inputs.errors["status"])
            inputs.errors.setdefault("keys", inputs.errors["status"])
            return
        inputs.store = inputs.status.get("store", "")
        if flags:
            try:
                inputs.flags = {
                    env["name"]: list_flags(channel, env["name"], metadata, timeout)
                    for env in inputs.status.get("environments", [])
                }
            except grpc.RpcError as exc:
                inputs.errors["flags"] = _rpc_error(exc)
        if keys:
            try:
                inputs.keys = list_server_keys(channel, metadata, timeout)
            except ImportError:
                inputs.errors["keys"] = "this build has no key-management API"
            except grpc.RpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                    inputs.errors["keys"] = "the server offers no KeyService (security layer off)"
                else:
                    inputs.errors["keys"] = f"listing keys: {_rpc_error(exc)}"


async def table_inputs(sources: Sources, inputs: Inputs) -> None:
    """Description, backups and PITR of the table (and its keys, if the server gave none)."""
    if not sources.table:
        return
    from vexil.ops import backups
    from vexil.store.dynamodb_client import ClientSettings, client_for
    from vexil.store.dynamodb_table import describe_table

    settings = sources.client or ClientSettings()
    try:
        inputs.table = await describe_table(
            sources.table,
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            credentials=settings.credentials,
        )
        async with client_for(settings) as client:
            inputs.backups = await backups.list_backups(client, sources.table)
            inputs.pitr = await backups.pitr_status(client, sources.table)
    except VexilError as exc:
        inputs.errors["backups"] = exc.message
        inputs.errors["table"] = exc.message
    if inputs.keys is None:
        try:
            inputs.keys = await read_table_keys(sources.table, settings)
            inputs.errors.pop("keys", None)
        except VexilError as exc:
            inputs.errors["keys"] = exc.message


def export_inputs(directory: str, inputs: Inputs) -> None:
    """Valid export files in `directory`, newest first (damaged ones are reported, not counted)."""
    if not directory:
        return
    path = Path(directory)
    if not path.is_dir():
        inputs.errors["exports"] = f"{directory} is not a directory"
        inputs.exports = []
        return
    found: list[tuple[str, float]] = []
    damaged: list[str] = []
    for file in sorted(path.glob("*.json")):
        try:
            export = exportfile.read(file)
        except exportfile.ExportError as exc:
            damaged.append(str(exc))
            continue
        found.append((file.name, export.created_at))
    inputs.exports = sorted(found, key=lambda f: f[1], reverse=True)
    if damaged:
        inputs.errors["exports"] = "; ".join(damaged)
