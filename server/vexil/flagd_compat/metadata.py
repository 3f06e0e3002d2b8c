"""Metadata as flagd answers it: flag-set metadata under the flag's own, scalar values only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vexil.engine import Resolution
from vexil.snapshot import Snapshot


def merged_metadata(snapshot: Snapshot, resolution: Resolution) -> Mapping[str, Any]:
    """Flag-set metadata (the environment's) under the flag's own, as flagd answers it."""
    if not snapshot.environment.metadata:
        return resolution.flag_metadata
    return {**snapshot.environment.metadata, **resolution.flag_metadata}


def scalar_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The entries flagd's schema allows in metadata (string, number, boolean)."""
    return {k: v for k, v in metadata.items() if isinstance(v, bool | int | float | str)}
