"""Following the server's Watch stream: apply, resume, reconnect with backoff.

`WatchSession` is the protocol, with no I/O: which request to send, what each event means for
the local data and the connection state, and how long to wait before reconnecting.  Two thin
runners drive it: `ThreadWatcher` (grpc's blocking API on a daemon thread, for `Client`) and
`AsyncWatcher` (a grpc.aio task on the running loop, for `AsyncClient`).

Resuming.  After a disconnect the client asks for the changes after `config_version - 1`, not
after `config_version`: the server then always starts by re-sending the change the client
already holds.  That first event proves the stream is live at once (the server sends nothing
else until the next change or a heartbeat 15 s later), and checking it against the local data
detects a server whose history is not the one the client followed (a store that was reset):
any mismatch, gap or unexpected event turns into a full snapshot instead of a silent hole.

A server that answers the resume with a heartbeat *below* the client's version is behind it:
a replica whose change feed lags (or is cut off from the table), or one with a younger history.
A full snapshot from it would take the client back in time (a kill written through another
replica undone), so the client keeps its data and resumes from its own version instead: a
replica that lags then waits to catch up or answers UNAVAILABLE (the client retries, with
backoff, here or on another replica), and only a store that never reached that version answers
INVALID_ARGUMENT, after which the client takes the server's full snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable

import grpc

from vexil.client.changes import ChangeEvent, ChangeKind, ChangeListeners
from vexil.client.channel import Metadata
from vexil.client.config import ClientConfig
from vexil.client.local import LocalFlags, snapshot_from_event
from vexil.client.persist import save_snapshot
from vexil.client.state import ConnectionState, StateTracker
from vexil.v1 import evaluation_pb2, evaluation_pb2_grpc

log = logging.getLogger("vexil.client")

WatchEvent = evaluation_pb2.WatchEvent
FATAL_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
PERSIST_INTERVAL = 1.0
CLOSED_BY_SERVER = "the server closed the stream"
HEARTBEAT_SLACK = 1.0
"""Seconds a heartbeat may come late, on top of missing one whole interval (`idle_timeout`)."""
RESUME_TIMEOUT = 3.0
"""Seconds to wait for the first event of a resumed stream.  A server that holds the client's
version answers at once; one that is behind waits for its change feed (or its store) first, so
silence means "not confirmed yet": the client reconnects, keeping its data."""


class Resync(Exception):
    """The stream cannot be continued safely: reconnect for a full snapshot."""


class ServerBehind(Resync):
    """The server is at an older version than the client: reconnect and resume from the client's
    own version, keeping its data (see the module docstring)."""


class WatchSession:
    """The Watch protocol for one client (transport-independent, driven by one runner)."""

    def __init__(
        self,
        config: ClientConfig,
        flags: LocalFlags,
        tracker: StateTracker,
        listeners: ChangeListeners,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.flags = flags
        self.tracker = tracker
        self.listeners = listeners
        self._rng = rng or random.Random()
        self._resumable = False
        """The data came from this server's stream, so asking for only what was missed is valid."""
        self._resuming = False
        self._exact = False
        """Resume after the client's own version, not the one before (the last server was behind)."""
        self._first = True
        self._attempt = 0
        self._dirty = False
        self._persisted_at = 0.0
        self._heartbeat = 0.0
        """Seconds between the server's heartbeats, as its stream last said (0: not said)."""

    # -- requests and events ----------------------------------------------------------------------

    def request(self) -> evaluation_pb2.WatchRequest:
        """The next stream's request (resuming when possible); resets per-stream bookkeeping."""
        request = evaluation_pb2.WatchRequest(environment=self.config.environment)
        version = self.flags.config_version
        self._resuming = self._resumable and version > 0
        if self._resuming:
            request.since_version = version if self._exact else version - 1
        self._first = True
        return request

    def receive(self, event: evaluation_pb2.WatchEvent) -> None:
        """Apply one event; raises `Resync` when the stream cannot be trusted to continue."""
        first, self._first = self._first, False
        if event.heartbeat_ms:
            self._heard_heartbeat(event.heartbeat_ms / 1000)
        kind = event.type
        change: ChangeEvent | None = None
        if kind == WatchEvent.TYPE_SNAPSHOT:
            change = self._snapshot(event)
        elif first and self._resuming and kind == WatchEvent.TYPE_HEARTBEAT and self._behind(event):
            self._exact = True
            raise ServerBehind(
                f"the server is at config_version {event.config_version}, behind this client's "
                f"{self.flags.config_version}"
            )
        elif first and self._exact:
            # Resumed after our own version: a heartbeat at it confirms it, a change continues it.
            if kind == WatchEvent.TYPE_HEARTBEAT:
                if event.config_version != self.flags.config_version:  # ahead: changes were missed
                    raise Resync(f"heartbeat at {event.config_version}, ahead of {self.flags.config_version}")
                self.flags.confirmed_at = time.time()
            elif kind in (WatchEvent.TYPE_UPSERT, WatchEvent.TYPE_DELETE, WatchEvent.TYPE_ENVIRONMENT):
                change = self._change(event)
            else:
                raise Resync(f"resumed stream began with event type {kind}")
        elif first and self._resuming:
            # The overlap event: the change we already hold, re-sent to open the stream.
            if not self.flags.holds(event):
                raise Resync(
                    f"resumed stream does not match the local data at config_version "
                    f"{self.flags.config_version} (event type {kind}, version {event.config_version})"
                )
            self.flags.confirmed_at = time.time()
        elif first:
            raise Resync(f"stream began with event type {kind}, not a snapshot")
        elif kind == WatchEvent.TYPE_HEARTBEAT:
            if event.config_version > self.flags.config_version:
                raise Resync(f"heartbeat at {event.config_version}, ahead of {self.flags.config_version}")
            self.flags.confirmed_at = time.time()
        elif kind in (WatchEvent.TYPE_UPSERT, WatchEvent.TYPE_DELETE, WatchEvent.TYPE_ENVIRONMENT):
            change = self._change(event)
        else:
            log.debug("vexil client: ignoring Watch event type %s", kind)
            return
        if first:  # READY before listeners hear of changes, so what they read is current
            self._connected()
        if change is not None:
            self.listeners.dispatch(change)

    def _heard_heartbeat(self, seconds: float) -> None:
        if seconds != self._heartbeat:
            self._heartbeat = seconds
            waited = self.idle_timeout()
            if self.config.idle_timeout < waited:
                log.warning(
                    "vexil client: idle_timeout %.1f s is shorter than the server's heartbeat allows "
                    "(every %.1f s): a stream is taken for dead after %.1f s of silence instead",
                    self.config.idle_timeout,
                    seconds,
                    waited,
                )

    def idle_timeout(self) -> float:
        """Seconds of silence after which the stream is taken for dead: `idle_timeout`, but never
        less than a missed heartbeat and a late one (`HEARTBEAT_SLACK`) of the server in use.
        Shorter, a quiet stream would be dropped and opened again between every two heartbeats."""
        return max(self.config.idle_timeout, 2 * self._heartbeat + HEARTBEAT_SLACK)

    def first_timeout(self) -> float:
        """How long the current stream may take to deliver its first event."""
        idle = self.idle_timeout()
        return min(idle, RESUME_TIMEOUT) if self._resuming else idle

    def silent(self, waited: float) -> str:
        """The stream delivered nothing for `waited` seconds: the reason to reconnect (raises
        `ServerBehind` for a resume left unanswered, which may be a server catching up: never a
        reason to take its snapshot)."""
        if self._first and self._resuming:
            raise ServerBehind(f"no answer to resuming for {waited:.1f} s (the server may be behind)")
        return f"no Watch message for {waited:.1f} s"

    def _behind(self, event: evaluation_pb2.WatchEvent) -> bool:
        return event.config_version < self.flags.config_version

    def _snapshot(self, event: evaluation_pb2.WatchEvent) -> ChangeEvent | None:
        keys = self.flags.replace(snapshot_from_event(event), "server", time.time())
        self._resumable = True
        self._dirty = True
        if not keys:  # first data (READY says it), or nothing differs
            return None
        return ChangeEvent(ChangeKind.SNAPSHOT, keys, event.config_version, reason=event.reason)

    def _change(self, event: evaluation_pb2.WatchEvent) -> ChangeEvent | None:
        held = self.flags.config_version
        if event.config_version <= held:
            return None  # already applied (the overlap of a resume)
        if event.config_version != held + 1:
            raise Resync(f"missed changes: holding {held}, received {event.config_version}")
        self._dirty = True
        return self.flags.apply(event)

    def _connected(self) -> None:
        self._attempt = 0
        self._exact = False
        self.tracker.set(ConnectionState.READY, config_version=self.flags.config_version)

    # -- failures and timing ----------------------------------------------------------------------

    def failed(self, message: str, code: grpc.StatusCode | None = None) -> bool:
        """The stream ended or could not start.  Returns True when the state just became STALE
        (the runner then schedules `grace_check` after `config.stale_grace`)."""
        if code is grpc.StatusCode.INVALID_ARGUMENT and self._resuming:
            # The server cannot resume from our version (e.g. its store is younger): start over.
            self._resumable = self._exact = False
        if code in FATAL_CODES:
            self.tracker.set(ConnectionState.ERROR, f"credentials refused: {message}", fatal=True)
            return False
        state = self.tracker.state
        if state is ConnectionState.READY:
            return self.tracker.set(ConnectionState.STALE, message) is not None
        if state is ConnectionState.NOT_READY:
            self.tracker.set(ConnectionState.ERROR, message)
        else:  # STALE or ERROR: keep the state, refresh the message
            self.tracker.set(state, message)
        return False

    def resync(self, exc: Resync) -> None:
        if isinstance(exc, ServerBehind):
            log.warning("vexil client: %s; keeping its data, resuming from its own version", exc)
            return
        log.warning("vexil client: %s; reconnecting for a full snapshot", exc)
        self._resumable = False

    def grace_check(self) -> None:
        """STALE for longer than the grace period becomes ERROR (data is still served)."""
        tracker = self.tracker
        if (
            tracker.state is ConnectionState.STALE
            and time.monotonic() - tracker.since >= self.config.stale_grace * 0.99
        ):
            age = time.time() - self.flags.confirmed_at if self.flags.confirmed_at else 0.0
            tracker.set(
                ConnectionState.ERROR,
                f"disconnected for more than {self.config.stale_grace:g} s "
                f"(serving data last confirmed {age:.0f} s ago): {tracker.message}",
            )

    def next_delay(self) -> float:
        """Exponential backoff with full jitter before the next connection attempt."""
        cap = self.config.retry.cap(self._attempt)
        self._attempt += 1
        return self._rng.uniform(0, cap)

    def persist(self, force: bool = False) -> None:
        """Save the snapshot if it changed (at most once a second unless forced)."""
        path = self.config.snapshot_file
        snapshot = self.flags.snapshot
        if not path or not self._dirty or snapshot is None or self.flags.source != "server":
            return
        now = time.monotonic()
        if not force and now - self._persisted_at < PERSIST_INTERVAL:
            return
        try:
            save_snapshot(path, snapshot, self.flags.confirmed_at)
            self._dirty = False
            self._persisted_at = now
        except OSError as exc:
            log.warning("vexil client: cannot save snapshot to %s: %s", path, exc)


def status_of(exc: BaseException) -> tuple[str, grpc.StatusCode | None]:
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else ""
        name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
        return f"{name}: {details or 'stream failed'}", code
    return f"{type(exc).__name__}: {exc}", None


class ThreadWatcher:
    """Runs a `WatchSession` on a daemon thread with grpc's blocking API (for `Client`).

    The caller's threads never wait on it: evaluations read the snapshot it swaps in.  `close`
    cancels the live call and wakes any backoff sleep, so shutdown is prompt.
    """

    def __init__(self, session: WatchSession, channel: grpc.Channel, metadata: Metadata) -> None:
        self.session = session
        self._stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self._metadata = metadata
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._call: grpc.Call | None = None
        self._thread = threading.Thread(target=self._run, name="vexil-watch", daemon=True)

    def start(self) -> None:
        if self.session.tracker.state is ConnectionState.STALE:  # bootstrapped: the grace runs now
            _timer(self.session.config.stale_grace, self.session.grace_check)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self.session.persist(force=True)

    def _run(self) -> None:
        session = self.session
        while not self._stop.is_set():
            delay: float | None = None
            try:
                message, code = self._stream(), None
            except Resync as exc:
                session.resync(exc)
                message, code = f"resync: {exc}", None
                delay = 0.0 if session.tracker.state is ConnectionState.READY else None
            except Exception as exc:
                message, code = status_of(exc)
            if self._stop.is_set():
                break
            if session.failed(message, code):
                _timer(session.config.stale_grace, session.grace_check)
            session.persist(force=True)
            self._stop.wait(session.next_delay() if delay is None else delay)

    def _stream(self) -> str:
        """Follow one stream until it ends; returns why it ended (errors raise)."""
        session = self.session
        call = self._stub.Watch(session.request(), metadata=self._metadata)
        with self._lock:
            if self._stop.is_set():
                call.cancel()
                return "closed"
            self._call = call
        watchdog = Watchdog(call, session.first_timeout(), session.idle_timeout())
        try:
            for event in call:
                watchdog.touch()
                session.receive(event)
                watchdog.idle = session.idle_timeout()
                session.persist()
            return CLOSED_BY_SERVER
        except grpc.RpcError:
            if watchdog.fired is None:
                raise
            return session.silent(watchdog.fired)
        finally:
            watchdog.stop()
            call.cancel()
            with self._lock:
                self._call = None


class Watchdog:
    """Cancels a blocking stream that has gone silent: no first event within `first` seconds,
    then no event (not even a heartbeat) for `idle` seconds.  A half-open connection otherwise
    looks exactly like a quiet one."""

    def __init__(self, call: grpc.Call, first: float, idle: float) -> None:
        self._call = call
        self.idle = idle
        """Seconds of silence after the first event (the session may change it as events come)."""
        self._last = self._started = time.monotonic()
        self._stopped = False
        self.fired: float | None = None
        """Seconds of silence that made it cancel the call (None: it did not)."""
        self._timer = _timer(first, self._first)

    def touch(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()

    def _first(self) -> None:
        if self._last == self._started:
            self._fire(time.monotonic() - self._last)
        else:
            self._check()

    def _check(self) -> None:
        quiet = time.monotonic() - self._last
        if quiet >= self.idle:
            self._fire(quiet)
        elif not self._stopped:
            self._timer = _timer(self.idle - quiet, self._check)

    def _fire(self, quiet: float) -> None:
        if not self._stopped:
            self.fired = quiet
            self._call.cancel()


def _timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer


class AsyncWatcher:
    """Runs a `WatchSession` as a task on the running event loop (for `AsyncClient`)."""

    def __init__(self, session: WatchSession, channel: grpc.aio.Channel, metadata: Metadata) -> None:
        self.session = session
        self._stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self._metadata = metadata
        self._task: asyncio.Task[None] | None = None
        self._grace: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.session.tracker.state is ConnectionState.STALE:
            self._start_grace()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="vexil-watch")

    def _start_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
        loop = asyncio.get_running_loop()
        self._grace = loop.call_later(self.session.config.stale_grace, self.session.grace_check)

    async def close(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.session.config.snapshot_file:
            await asyncio.to_thread(self.session.persist, True)

    async def _run(self) -> None:
        session = self.session
        while True:
            delay: float | None = None
            try:
                message, code = await self._stream(), None
            except Resync as exc:
                session.resync(exc)
                message, code = f"resync: {exc}", None
                delay = 0.0 if session.tracker.state is ConnectionState.READY else None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message, code = status_of(exc)
            if session.failed(message, code):
                self._start_grace()
            if session.config.snapshot_file:
                await asyncio.to_thread(session.persist, True)
            await asyncio.sleep(session.next_delay() if delay is None else delay)

    async def _stream(self) -> str:
        """Follow one stream until it ends; returns why it ended (errors raise)."""
        session = self.session
        call = self._stub.Watch(session.request(), metadata=self._metadata)
        timeout = session.first_timeout()
        try:
            while True:
                # `asyncio.timeout`, not `wait_for`: on 3.11 `wait_for` returns the read's result
                # when it completes in the iteration the task is cancelled, swallowing the
                # cancellation, and `close()` would then wait on a task that reconnects forever.
                try:
                    async with asyncio.timeout(timeout):
                        event = await call.read()
                except TimeoutError:
                    return session.silent(timeout)
                if event is grpc.aio.EOF:
                    return CLOSED_BY_SERVER
                session.receive(event)
                timeout = session.idle_timeout()
                if session.config.snapshot_file:
                    await asyncio.to_thread(session.persist)
        finally:
            call.cancel()
