"""Change notifications: what changed, and the listeners that want to know.

One `ChangeEvent` per applied change (or per snapshot that differed from what the client held),
naming every flag whose answers may have changed: an environment change (kill switch,
`$evaluators`) names all of them.  A listener registered for one flag is called only for events
that name it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import auto

from vexil.client.state import call_safely
from vexil.model import NamedEnum


class ChangeKind(NamedEnum):
    """What a `ChangeEvent` reports."""

    UPSERT = auto()
    """A flag was created or changed (including its per-flag kill switch)."""
    DELETE = auto()
    """A flag was deleted: evaluating it now answers the caller's default (FLAG_NOT_FOUND)."""
    ENVIRONMENT = auto()
    """Kill switch, `$evaluators` or flag-set metadata of the environment."""
    SNAPSHOT = auto()
    """A full snapshot (reconnect, resync) differed from the data held before."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    kind: ChangeKind
    flag_keys: frozenset[str]
    config_version: int
    actor: str = ""
    """Who made the change (from the change log), when known."""
    reason: str = ""
    """The writer's reason, or why a snapshot was sent."""


ChangeListener = Callable[[ChangeEvent], object]


class ChangeListeners:
    """Registered `on_change` callbacks; safe to add and remove from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[ChangeListener] = []
        self._by_key: dict[str, list[ChangeListener]] = {}

    def add(self, callback: ChangeListener, flag_key: str | None = None) -> Callable[[], None]:
        with self._lock:
            bucket = self._all if flag_key is None else self._by_key.setdefault(flag_key, [])
            bucket.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in bucket:
                    bucket.remove(callback)
                if flag_key is not None and not bucket and self._by_key.get(flag_key) is bucket:
                    del self._by_key[flag_key]

        return remove

    def dispatch(self, event: ChangeEvent) -> None:
        keys = event.flag_keys
        with self._lock:
            targets = list(self._all)
            # Walk the smaller side: a resync may name thousands of flags, a service few listeners.
            if len(self._by_key) <= len(keys):
                matched = [cbs for key, cbs in self._by_key.items() if key in keys]
            else:
                matched = [self._by_key[key] for key in keys if key in self._by_key]
            for callbacks in matched:
                targets.extend(callbacks)
        for callback in targets:
            call_safely(callback, event)
