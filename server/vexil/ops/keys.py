"""What the operations checks need to know about API keys, read from any `KeyStore`.

The checks only need identity, scope, age and expiry, so they read keys through this small view
instead of depending on the whole key-management API: anything with an async `list_keys()`
returning objects with `id`, `environment`, `role`, `created_at`, `expires_at` and `revoked_at`
(seconds since the epoch, 0 for "never") works, which `vexil.store.keys.KeyStore` provides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vexil.errors import Unavailable

if TYPE_CHECKING:
    from vexil.store.dynamodb_client import ClientSettings


class ListsKeys(Protocol):
    async def list_keys(self) -> list[Any]: ...


@dataclass(frozen=True)
class KeyView:
    id: str
    environment: str
    role: str
    created_at: float
    expires_at: float
    revoked: bool

    def expired(self, now: float) -> bool:
        return bool(self.expires_at) and self.expires_at <= now


def view(key: Any) -> KeyView:
    return KeyView(
        id=str(key.id),
        environment=str(getattr(key, "environment", "")),
        role=str(getattr(key, "role", "")),
        created_at=float(getattr(key, "created_at", 0.0) or 0.0),
        expires_at=float(getattr(key, "expires_at", 0.0) or 0.0),
        revoked=bool(getattr(key, "revoked_at", 0.0)),
    )


async def read_keys(source: ListsKeys) -> list[KeyView]:
    return [view(key) for key in await source.list_keys()]


async def read_table_keys(table: str, settings: ClientSettings) -> list[KeyView]:
    """The API keys stored in vexil's DynamoDB table (`APIKEY#` items, via `DynamoKeyStore`)."""
    try:
        from vexil.store.keys_dynamodb import DynamoKeyStore
    except ImportError as exc:  # the key store ships with the security layer
        raise Unavailable(f"API-key storage is not available in this build ({exc})") from None
    store = DynamoKeyStore(
        table,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        credentials=settings.credentials,
    )
    await store.start()
    try:
        return await read_keys(store)
    finally:
        await store.close()
