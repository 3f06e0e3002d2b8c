"""What the sync and the asyncio clients share: configuration, data, state and listeners.

Only the transport differs between `Client` and `AsyncClient`; everything that decides what an
answer is, what a state means, or who gets told about a change lives here and in the modules it
wires together, so the two clients cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from vexil.client.changes import ChangeListener, ChangeListeners
from vexil.client.config import ClientConfig, ConfigError, Mode, load_config
from vexil.client.local import LocalFlags, snapshot_from_event
from vexil.client.persist import BootstrapError, load_flags_file, load_snapshot
from vexil.client.state import ClientStatus, ConnectionState, StateListener, StateTracker
from vexil.client.watcher import WatchSession
from vexil.errors import VexilError

log = logging.getLogger("vexil.client")

JSON = dict[str, Any] | list[Any]
"""An object flag's value."""


class ClientCore:
    """Configuration, local data, connection state and listeners of one client."""

    def __init__(self, config: ClientConfig | None, options: dict[str, Any]) -> None:
        self._config = load_config(config, **options)
        self._flags = LocalFlags()
        if self._config.mode is Mode.LOCAL:
            bootstrap(self._config, self._flags)
        self._tracker = StateTracker(
            ConnectionState.STALE if self._flags.snapshot is not None else ConnectionState.NOT_READY
        )
        self._listeners = ChangeListeners()
        self._session = WatchSession(self._config, self._flags, self._tracker, self._listeners)

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def state(self) -> ConnectionState:
        return self._tracker.state

    def on_change(self, callback: ChangeListener, flag_key: str | None = None) -> Callable[[], None]:
        """Call `callback(ChangeEvent)` when flag `flag_key` (or, without one, any flag) changes.

        Returns a function that unregisters it.  The callback runs on the watcher (thread or
        event loop): keep it short, hand real work elsewhere.  Exceptions are logged and ignored.
        """
        return self._listeners.add(callback, flag_key)

    def on_state(self, callback: StateListener) -> Callable[[], None]:
        """Call `callback(StateEvent)` on every connection-state transition; returns an unregister."""
        return self._tracker.add_listener(callback)

    def status(self) -> ClientStatus:
        flags = self._flags
        snapshot = flags.snapshot
        state = self._tracker.state
        if snapshot is None:
            age = None
        elif state is ConnectionState.READY:
            age = 0.0
        elif flags.confirmed_at:
            age = max(0.0, time.time() - flags.confirmed_at)
        else:
            age = float("inf")  # bootstrap data never confirmed by a server
        return ClientStatus(
            state=state,
            message=self._tracker.message,
            mode=str(self._config.mode),
            config_version=flags.config_version,
            flag_count=len(snapshot.entries) if snapshot is not None else 0,
            source=flags.source,
            snapshot_age=age,
        )


def bootstrap(config: ClientConfig, flags: LocalFlags) -> None:
    """Load start-up data: the persisted snapshot when there is a good one, else the flags file.

    A missing or damaged snapshot file is normal (first start, disk trouble) and only logged; a
    flags file the service ships with must parse, so its errors stop the construction.
    """
    if config.snapshot_file and os.path.exists(config.snapshot_file):
        try:
            event, confirmed_at = load_snapshot(config.snapshot_file)
            flags.replace(snapshot_from_event(event), "persisted snapshot", confirmed_at)
            log.info(
                "vexil client: serving persisted snapshot %s (config_version %d) until connected",
                config.snapshot_file,
                event.config_version,
            )
            return
        except (BootstrapError, ValueError, VexilError) as exc:
            log.warning("vexil client: ignoring persisted snapshot: %s", exc)
    if config.flags_file:
        try:
            flags.replace(load_flags_file(config.flags_file, config.environment), "flags file", 0.0)
        except BootstrapError as exc:
            raise ConfigError(str(exc)) from None
