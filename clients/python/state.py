"""The connection state machine and its listeners.

    NOT_READY --first snapshot--> READY --stream lost--> STALE --grace elapsed--> ERROR
        |                           ^                      |                        |
        +--cannot connect--> ERROR -+------reconnected-----+------reconnected-------+
    any --close()--> CLOSED

READY: following the server, data current.  STALE: disconnected and reconnecting; local mode
keeps serving the last snapshot (its age is reported).  ERROR: no usable connection for longer
than the grace period, never connected, or credentials refused.  A client started from a
bootstrap file or a persisted snapshot starts STALE (it has data, but not confirmed data).

Listeners run on the thread that changed the state (the watcher thread for `Client`, the event
loop for `AsyncClient`), outside any lock, and an exception in one is logged and contained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import auto
from typing import Any

from vexil.model import NamedEnum

log = logging.getLogger("vexil.client")


class ConnectionState(NamedEnum):
    """Where the client stands with the server (the module docstring draws the transitions)."""

    NOT_READY = auto()
    """Not connected yet and no data: local mode answers the caller's defaults (PROVIDER_NOT_READY)."""
    READY = auto()
    """Following the server: the data is current."""
    STALE = auto()
    """Disconnected and reconnecting, or serving bootstrap data no server has confirmed yet:
    local mode keeps serving the data it holds (`status().snapshot_age` says how old)."""
    ERROR = auto()
    """No usable connection for longer than the grace period, never connected, or credentials
    refused (`StateEvent.fatal`: retrying will not help until they are fixed)."""
    CLOSED = auto()
    """`close()` was called: every getter returns the caller's default from now on."""


@dataclass(frozen=True, slots=True)
class StateEvent:
    """A state transition, as given to `on_state` listeners."""

    state: ConnectionState
    previous: ConnectionState
    message: str = ""
    fatal: bool = False
    """The server refused the credentials: retrying will not help until they are fixed."""
    config_version: int = 0
    at: float = 0.0
    """Wall-clock time of the transition."""


StateListener = Callable[[StateEvent], object]


class StateTracker:
    """The current state, thread-safe, with blocking waits and listeners."""

    def __init__(self, initial: ConnectionState = ConnectionState.NOT_READY) -> None:
        self._state = initial
        self._message = ""
        self._cond = threading.Condition()
        self._listeners: list[StateListener] = []
        self._since = time.monotonic()

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def message(self) -> str:
        return self._message

    @property
    def since(self) -> float:
        """`time.monotonic()` of the last transition."""
        return self._since

    def set(
        self, state: ConnectionState, message: str = "", *, fatal: bool = False, config_version: int = 0
    ) -> StateEvent | None:
        """Move to `state`; returns the event (None when already there or closed)."""
        with self._cond:
            previous = self._state
            if previous is ConnectionState.CLOSED:
                return None
            if previous is state:
                self._message = message or self._message
                return None
            self._state = state
            self._message = message
            self._since = time.monotonic()
            self._cond.notify_all()
            listeners = tuple(self._listeners)
        event = StateEvent(state, previous, message, fatal, config_version, time.time())
        if state is ConnectionState.READY:
            log.info("vexil client READY (config_version %d)", config_version)
        elif state is ConnectionState.CLOSED:
            log.info("vexil client closed")
        else:
            log.warning("vexil client %s: %s", state, message)
        for listener in listeners:
            call_safely(listener, event)
        return event

    def wait_ready(self, timeout: float | None) -> bool:
        with self._cond:
            self._cond.wait_for(
                lambda: self._state in (ConnectionState.READY, ConnectionState.CLOSED), timeout
            )
            return self._state is ConnectionState.READY

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        with self._cond:
            self._listeners.append(listener)

        def remove() -> None:
            with self._cond, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove


def call_safely(callback: Callable[..., object], *args: object) -> None:
    """Run a user callback; its failure must never stop the client."""
    try:
        result = callback(*args)
    except Exception:
        log.exception("vexil client: listener %r failed", callback)
        return
    if hasattr(result, "__await__"):
        _schedule(result)


def _schedule(awaitable: Any) -> None:
    """Coroutine listeners (AsyncClient) run as tasks on the running loop."""
    try:
        task = asyncio.ensure_future(awaitable, loop=asyncio.get_running_loop())
    except RuntimeError:  # no running loop (a coroutine given to the sync client)
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        log.error("vexil client: async listener needs AsyncClient; it was not run")
        return
    _TASKS.add(task)
    task.add_done_callback(_finished)


_TASKS: set[asyncio.Task[Any]] = set()
"""Strong references to running listener tasks (the loop only keeps weak ones)."""


def _finished(task: asyncio.Task[Any]) -> None:
    _TASKS.discard(task)
    exc = task.exception() if not task.cancelled() else None
    if exc is not None:
        log.error("vexil client: async listener failed", exc_info=exc)


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A point-in-time view of a client, for health endpoints and logs."""

    state: ConnectionState
    message: str
    mode: str
    config_version: int
    """Version of the data held (0: none, or bootstrap data never confirmed by a server)."""
    flag_count: int
    source: str
    """Where the held data came from: "server", "flags file", "persisted snapshot" or ""."""
    snapshot_age: float | None
    """Seconds since the data was last known current: 0 while READY, growing while disconnected,
    None when there is no data."""
