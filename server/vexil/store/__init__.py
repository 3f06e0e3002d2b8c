"""Persistence backends behind one interface (`FlagStore`).

`MemoryStore` is the embedded default; `DynamoStore` (aioboto3) is imported lazily so that a
memory-only process does not pay for loading the AWS SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vexil.store.base import FlagStore
from vexil.store.memory import MemoryStore

if TYPE_CHECKING:
    from vexil.store.dynamodb import DynamoStore

__all__ = ["DynamoStore", "FlagStore", "MemoryStore"]


def __getattr__(name: str) -> Any:
    if name == "DynamoStore":
        from vexil.store.dynamodb import DynamoStore

        return DynamoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
