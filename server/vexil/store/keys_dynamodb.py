"""`DynamoKeyStore`: API keys in vexil's single DynamoDB table, beside the flags.

One item per key: `PK = APIKEY#<id>`, `SK = METADATA` (docs/dynamodb.md).  It holds the secret's
salted hash (never the secret), the environment scope, role, timestamps as ISO-8601 text like
the flag items, and a `revision` number that makes rotation and revocation conditional writes.
Flag listing never sees these items (it filters on the `FLAG#<env>#` prefix) and they carry no
GSI attributes.

Listing is a consistent Scan filtered on the `APIKEY#` prefix: key management is rare and keys
are few, so reading the table is cheaper than maintaining an index only for it.  Errors go
through the flag store's translation (`dynamodb_client`): nothing from botocore escapes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Unpack

from botocore.exceptions import ClientError

from vexil.errors import ApiKeyAlreadyExists, ApiKeyNotFound, Conflict
from vexil.store import dynamodb_items as items
from vexil.store.dynamodb_client import (
    ClientSettings,
    OwnsClient,
    Where,
    error_code,
    translated_errors,
)
from vexil.store.keys import ApiKey
from vexil.store.records import format_timestamp, parse_timestamp

PREFIX = "APIKEY#"
TYPE_API_KEY = "APIKEY"

_TEXT = {
    "environment": "environment",
    "role": "role",
    "secret_hash": "secretHash",
    "created_by": "createdBy",
    "description": "description",
    "revoked_by": "revokedBy",
    "revoked_reason": "revokedReason",
    "previous_hash": "previousHash",
}
_TIMES = {
    "created_at": "createdAt",
    "expires_at": "expiresAt",
    "last_used_at": "lastUsedAt",
    "revoked_at": "revokedAt",
    "rotated_at": "rotatedAt",
    "previous_expires_at": "previousExpiresAt",
}


def key_item_key(key_id: str) -> items.Item:
    return items.key(PREFIX + key_id, items.METADATA)


def key_to_item(key: ApiKey) -> items.Item:
    item: items.Item = {
        **key_item_key(key.id),
        "itemType": items.s(TYPE_API_KEY),
        "keyId": items.s(key.id),
        "revision": items.n(key.revision),
    }
    for field, attribute in _TEXT.items():
        value = getattr(key, field)
        if value:
            item[attribute] = items.s(value)
    for field, attribute in _TIMES.items():
        value = getattr(key, field)
        if value:
            item[attribute] = items.s(format_timestamp(value))
    return item


def key_from_item(item: items.Item) -> ApiKey:
    def text(attribute: str) -> str:
        value = item.get(attribute)
        return str(items.decode(value)) if value else ""

    values: dict[str, Any] = {field: text(attribute) for field, attribute in _TEXT.items()}
    values.update({field: parse_timestamp(text(attribute)) for field, attribute in _TIMES.items()})
    revision = item.get("revision")
    return ApiKey(
        id=text("keyId") or text("PK").removeprefix(PREFIX),
        revision=int(items.decode(revision)) if revision else 1,
        **values,
    )


class DynamoKeyStore(OwnsClient):
    """A `KeyStore` on vexil's DynamoDB table (see the module docstring)."""

    def __init__(self, table: str, **where: Unpack[Where]) -> None:
        super().__init__(table, ClientSettings(**where))

    def __repr__(self) -> str:
        return f"DynamoKeyStore(table={self.table!r}, endpoint_url={self._settings.endpoint_url!r})"

    async def _write_if(self, doing: str, operation: str, **request: Any) -> items.Item | None:
        """One conditional write: None when it applied, else the item as it stood when the
        condition failed (`{}` when there was none or the request did not ask for it).  What a
        refusal means (already exists, stale revision, an older use) is the caller's to say."""
        client = self._require_client()
        with translated_errors(f"{doing} in {self.table}"):
            try:
                await getattr(client, operation)(TableName=self.table, **request)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return exc.response.get("Item") or {}
        return None

    async def create_key(self, key: ApiKey) -> None:
        refused = await self._write_if(
            f"creating API key {key.id}",
            "put_item",
            Item=key_to_item(key),
            ConditionExpression="attribute_not_exists(PK)",
        )
        if refused is not None:
            raise ApiKeyAlreadyExists(f"API key {key.id} already exists")

    async def get_key(self, key_id: str) -> ApiKey | None:
        client = self._require_client()
        with translated_errors(f"reading API key {key_id}"):
            response = await client.get_item(
                TableName=self.table, Key=key_item_key(key_id), ConsistentRead=True
            )
        item = response.get("Item")
        return key_from_item(item) if item else None

    async def list_keys(self) -> list[ApiKey]:
        client = self._require_client()
        found: list[ApiKey] = []
        start: items.Item | None = None
        while True:
            args: dict[str, Any] = {
                "TableName": self.table,
                "ConsistentRead": True,
                "FilterExpression": "SK = :meta AND begins_with(PK, :prefix)",
                "ExpressionAttributeValues": {":meta": items.s(items.METADATA), ":prefix": items.s(PREFIX)},
            }
            if start:
                args["ExclusiveStartKey"] = start
            with translated_errors("listing API keys"):
                response = await client.scan(**args)
            found.extend(key_from_item(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return sorted(found, key=lambda k: k.id)

    async def replace_key(self, key: ApiKey, *, expected_revision: int) -> ApiKey:
        stored = replace(key, revision=expected_revision + 1)
        old = await self._write_if(
            f"updating API key {key.id}",
            "put_item",
            Item=key_to_item(stored),
            ConditionExpression="#r = :r",
            ExpressionAttributeNames={"#r": "revision"},
            ExpressionAttributeValues={":r": items.n(expected_revision)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if old is None:
            return stored
        if not old:
            raise ApiKeyNotFound(f"API key {key.id} does not exist")
        current = key_from_item(old).revision
        raise Conflict(
            f"API key {key.id} changed concurrently (revision {current}, not "
            f"{expected_revision}); read it again",
            current_version=current,
        )

    async def record_use(self, key_id: str, used_at: float) -> None:
        """A refused condition is no error: the key is gone, or a later use is already recorded."""
        stamp = format_timestamp(used_at)
        await self._write_if(
            f"recording use of API key {key_id}",
            "update_item",
            Key=key_item_key(key_id),
            UpdateExpression="SET lastUsedAt = :t",
            # ISO-8601 text in one format compares like the times it spells.
            ConditionExpression="attribute_exists(PK) AND "
            "(attribute_not_exists(lastUsedAt) OR lastUsedAt < :t)",
            ExpressionAttributeValues={":t": items.s(stamp)},
        )
