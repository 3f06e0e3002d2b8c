"""Live updates with the blocking client: change listeners, state events, reconnect and resume
across a server restart (with writes through another replica meanwhile), divergent servers,
silent streams, and the STALE -> ERROR grace period."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from tests.support.client import (
    FAST,
    Admin,
    FakeEvaluation,
    FakeServer,
    LoopThread,
    Replica,
    replica,
    wait_until,
)
from tests.support.flags import flag_pb
from vexil.client import AsyncClient, ChangeEvent, ChangeKind, Client, ConnectionState, Reason, StateEvent
from vexil.store.memory import MemoryStore
from vexil.v1 import evaluation_pb2


class Recorder:
    """Collects change and state events from the watcher thread."""

    def __init__(self, client: Client) -> None:
        self.changes: list[ChangeEvent] = []
        self.states: list[StateEvent] = []
        self._lock = threading.Lock()
        client.on_change(self._change)
        client.on_state(self._state)
        client.start()  # clients are built with start=False so no event is missed

    def _change(self, event: ChangeEvent) -> None:
        with self._lock:
            self.changes.append(event)

    def _state(self, event: StateEvent) -> None:
        with self._lock:
            self.states.append(event)

    @property
    def versions(self) -> list[int]:
        return [e.config_version for e in self.changes]

    @property
    def state_names(self) -> list[str]:
        return [str(e.state) for e in self.states]


def caught_up(client: Client, version: int) -> Callable[[], bool]:
    return lambda: client.status().config_version >= version


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_admin_changes_reach_on_change_listeners(server: Replica, admin: Admin, mode: str) -> None:
    admin.create(flag_pb("checkout", default="off"))
    admin.create(flag_pb("search", default="off"))
    with Client(target=server.target, mode=mode, **FAST) as client:
        assert client.wait_for_ready(10)
        everything: list[ChangeEvent] = []
        checkout: list[ChangeEvent] = []
        client.on_change(everything.append)
        unsubscribe = client.on_change(checkout.append, flag_key="checkout")

        version = admin.update(flag_pb("checkout", default="on"), reason="launch")
        assert wait_until(lambda: len(checkout) == 1, 10)
        event = checkout[0]
        assert (event.kind, event.flag_keys, event.config_version) == (
            ChangeKind.UPSERT,
            {"checkout"},
            version,
        )
        assert event.reason == "launch" and event.actor.startswith("anonymous@")
        assert client.bool_value("checkout", False) is True  # the listener sees the new answer

        admin.update(flag_pb("search", default="on"))
        version = admin.kill_environment(True)
        assert wait_until(lambda: len(checkout) == 2, 10)
        assert (checkout[1].kind, checkout[1].flag_keys) == (ChangeKind.ENVIRONMENT, {"checkout", "search"})
        assert client.bool_details("checkout", False).reason == Reason.DISABLED

        unsubscribe()
        version = admin.delete("checkout")
        assert wait_until(lambda: everything and everything[-1].config_version == version, 10)
        assert [e.kind for e in everything] == [ChangeKind.UPSERT] * 2 + [
            ChangeKind.ENVIRONMENT,
            ChangeKind.DELETE,
        ]
        assert len(checkout) == 2


def test_a_failing_listener_does_not_stop_the_client(server: Replica, admin: Admin) -> None:
    admin.create(flag_pb("x", default="off"))
    with Client(target=server.target, mode="local", **FAST) as client:
        assert client.wait_for_ready(10)

        def broken(event: ChangeEvent) -> None:
            raise RuntimeError("listener bug")

        client.on_change(broken)
        client.on_state(broken)  # type: ignore[arg-type]
        version = admin.update(flag_pb("x", default="on"))
        assert wait_until(caught_up(client, version), 10)
        assert client.bool_value("x", False) is True and client.state is ConnectionState.READY


@pytest.mark.parametrize("how", ["graceful", "abrupt"])
def test_restart_on_the_same_port_with_writes_through_another_replica(
    loop_thread: LoopThread, how: str
) -> None:
    store = MemoryStore()  # one database, two replicas
    first = Replica(loop_thread, store).start()
    second = Replica(loop_thread, store).start()
    admin_first, admin_second = Admin(first.target), Admin(second.target)
    try:
        admin_first.create(flag_pb("checkout", default="off"))
        admin_first.create(flag_pb("banner", {"a": "A", "b": "B"}, "a"))
        with Client(target=first.target, mode="local", start=False, **FAST) as client:
            seen = Recorder(client)
            assert client.wait_for_ready(10)
            start = admin_first.update(flag_pb("checkout", default="on"))
            assert wait_until(caught_up(client, start), 10)

            # Mid-stream: the client is connected and following.
            port = first.port
            if how == "graceful":
                first.stop()  # streams end cleanly, then the port closes
            else:
                first.kill()  # streams are cut, as when the process dies
            assert wait_until(lambda: client.state is ConnectionState.STALE, 10)
            assert client.bool_value("checkout", False) is True  # still served while disconnected
            assert client.status().snapshot_age is not None

            written = [
                admin_second.update(flag_pb("banner", {"a": "A", "b": "B"}, "b")),
                admin_second.create(flag_pb("new-while-down", default="on")),
                admin_second.update(flag_pb("checkout", default="off")),
                admin_second.delete("new-while-down"),
                admin_second.evaluators({"is_jp": {"==": [{"var": "country"}, "JP"]}}),
                admin_second.create(
                    flag_pb("jp", {"y": "yes", "n": "no"}, "n", {"if": [{"$ref": "is_jp"}, "y", "n"]})
                ),
            ]
            assert written == list(range(start + 1, start + 7))

            restarted = Replica(loop_thread, store, port=port).start()
            try:
                assert wait_until(caught_up(client, written[-1]), 15)
                assert wait_until(lambda: client.state is ConnectionState.READY, 5)
                # Nothing missed, nothing twice, in order, and no full snapshot was needed.
                assert seen.versions == list(range(start, written[-1] + 1))
                assert ChangeKind.SNAPSHOT not in {e.kind for e in seen.changes}
                assert seen.state_names == ["READY", "STALE", "READY"]
                assert client.string_value("banner", "?") == "B"
                assert client.bool_value("checkout", True) is False
                assert client.bool_details("new-while-down", False).error_code == "FLAG_NOT_FOUND"
                assert client.string_value("jp", "?", {"country": "JP"}) == "yes"
                # and it keeps following the restarted server
                live = Admin(restarted.target)
                version = live.update(flag_pb("checkout", default="on"))
                live.close()
                assert wait_until(caught_up(client, version), 10)
                assert client.bool_value("checkout", False) is True
            finally:
                restarted.stop()
    finally:
        admin_first.close()
        admin_second.close()
        second.stop()


@pytest.mark.parametrize("history", ["diverged", "younger", "trimmed"])
def test_a_server_that_cannot_resume_sends_a_full_snapshot(
    loop_thread: LoopThread, history: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart the server's history may not be the one the client followed: a fresh
    store (same versions, other content, or fewer versions) or a change log trimmed past the
    client's version.  The client must end up with exactly the server's data."""
    # "younger" leaves the server exactly one version behind: it answers the resume with
    # silence, which the client waits out (RESUME_TIMEOUT) before asking for a snapshot.
    monkeypatch.setattr("vexil.client.watcher.RESUME_TIMEOUT", 0.5)
    expected: dict[str, bool] = {}
    store = MemoryStore(max_changes=2) if history == "trimmed" else MemoryStore()
    server = Replica(loop_thread, store).start()
    admin = Admin(server.target)
    try:
        for key in ("a", "b", "c"):
            admin.create(flag_pb(key, default="off"))
        admin.close()
        with Client(target=server.target, mode="local", start=False, **FAST) as client:
            seen = Recorder(client)
            assert client.wait_for_ready(10) and client.status().config_version == 3
            server.stop()
            # The data the server will have when it comes back, written while it is down
            # (through another replica of the same store, or into a fresh store).
            later = store if history == "trimmed" else MemoryStore()
            with replica(loop_thread, later) as other:
                writer = Admin(other.target)
                if history == "diverged":  # versions 1..3 again, other flags
                    expected = {"a": True, "x": True, "y": False}
                    for key, default in (("a", "on"), ("x", "on"), ("y", "off")):
                        writer.create(flag_pb(key, default=default))
                elif history == "younger":  # one version behind the client: it answers with silence
                    expected = {"z": True}
                    writer.create(flag_pb("z", default="on"))
                elif history == "trimmed":  # the log keeps only the last two of versions 4..7
                    expected = {"a": True, "b": True, "c": False, "d": True}
                    writer.update(flag_pb("a", default="on"))
                    writer.update(flag_pb("b", default="on"))
                    writer.create(flag_pb("d", default="on"))
                version = writer.create(flag_pb("last", default="on"))
                expected["last"] = True
                writer.close()
            server = Replica(loop_thread, later, port=server.port).start()
            assert wait_until(lambda: client.status().config_version == version, 15)
            assert wait_until(lambda: client.all_values() == expected, 5), client.all_values()
            snapshots = [e for e in seen.changes if e.kind is ChangeKind.SNAPSHOT]
            assert len(snapshots) == 1 and snapshots[0].flag_keys >= {"b", "last"}
            assert seen.state_names == ["READY", "STALE", "READY"]
    finally:
        server.stop()


def test_stale_becomes_error_after_the_grace_period_and_data_keeps_serving(
    server: Replica, admin: Admin
) -> None:
    admin.create(flag_pb("banner", {"a": "A"}, "a"))
    with Client(target=server.target, mode="local", stale_grace=0.3, start=False, **FAST) as client:
        seen = Recorder(client)
        assert client.wait_for_ready(10)
        server.stop()
        assert wait_until(lambda: client.state is ConnectionState.ERROR, 10)
        assert seen.state_names == ["READY", "STALE", "ERROR"]
        assert "disconnected for more than 0.3 s" in seen.states[-1].message
        assert client.string_value("banner", "?") == "A"
        status = client.status()
        assert status.source == "server" and status.flag_count == 1
        assert status.snapshot_age is not None and status.snapshot_age >= 0.3

        server.start()  # same port: back to READY
        assert wait_until(lambda: client.state is ConnectionState.READY, 15)
        assert seen.state_names == ["READY", "STALE", "ERROR", "READY"]


def test_a_silent_stream_is_replaced(loop_thread: LoopThread) -> None:
    """A connection that stops delivering anything (not even heartbeats) is abandoned after
    `idle_timeout` and a new stream is opened."""
    servicer = FakeEvaluation()
    fake = FakeServer(loop_thread, servicer)
    try:
        with Client(target=fake.target, idle_timeout=0.3, **FAST) as client:
            assert client.wait_for_ready(5)
            assert wait_until(lambda: len(servicer.metadata) >= 3, 10)
    finally:
        fake.stop()


# The protocol's rule (evaluation.proto, `WatchEvent.heartbeat_ms`, and the client's
# `idle_timeout`): a stream is taken for dead only after twice the stated heartbeat plus 1 s.
SHORT_IDLE = 0.3
"""An `idle_timeout` shorter than any heartbeat below."""


def test_a_short_idle_timeout_keeps_a_stream_whose_heartbeats_come_as_stated(loop_thread: LoopThread) -> None:
    """A server that says it sends a heartbeat every second, and does: the client keeps its one
    stream, though its own `idle_timeout` alone would have dropped it three times a second."""
    servicer = FakeEvaluation(heartbeat=1.0)
    fake = FakeServer(loop_thread, servicer)
    try:
        with Client(target=fake.target, idle_timeout=SHORT_IDLE, **FAST) as client:
            assert client.wait_for_ready(5)
            began = time.monotonic()
            while time.monotonic() - began < 3.5:
                assert client.state is ConnectionState.READY
                time.sleep(0.05)
            assert len(servicer.watches) == 1, servicer.watches
    finally:
        fake.stop()


@pytest.mark.parametrize("runner", ["blocking", "async"])
def test_a_stream_silent_past_its_stated_heartbeat_is_replaced(loop_thread: LoopThread, runner: str) -> None:
    """A server that says 0.5 s and then sends nothing: the stream is replaced after 2 s (twice
    0.5 s plus 1 s), not after the client's 0.3 s, and not never."""
    servicer = FakeEvaluation(heartbeat=0.5, heartbeats=False)
    fake = FakeServer(loop_thread, servicer)
    try:
        if runner == "blocking":
            with Client(target=fake.target, idle_timeout=SHORT_IDLE, **FAST) as client:
                assert client.wait_for_ready(5)
                assert wait_until(lambda: len(servicer.watches) >= 2, 10)
        else:

            async def follow() -> None:
                async with AsyncClient(target=fake.target, idle_timeout=SHORT_IDLE, **FAST) as client:
                    assert await client.wait_for_ready(5)
                    for _ in range(200):
                        if len(servicer.watches) >= 2:
                            return
                        await asyncio.sleep(0.05)

            asyncio.run(follow())
        waited = servicer.watches[1] - servicer.watches[0]
        assert 2.0 <= waited < 5.0, waited
    finally:
        fake.stop()


def test_the_server_states_its_heartbeat_in_snapshots_and_heartbeats(loop_thread: LoopThread) -> None:
    server = Replica(loop_thread, MemoryStore(), heartbeat_seconds=0.25).start()
    try:
        admin = Admin(server.target)
        version = admin.create(flag_pb("stated"))
        watch = admin.evaluation.Watch(evaluation_pb2.WatchRequest(), timeout=10)
        first, second = next(watch), next(watch)
        watch.cancel()
        assert (first.type, first.heartbeat_ms) == (evaluation_pb2.WatchEvent.TYPE_SNAPSHOT, 250)
        assert (second.type, second.heartbeat_ms) == (evaluation_pb2.WatchEvent.TYPE_HEARTBEAT, 250)
        resumed = admin.evaluation.Watch(evaluation_pb2.WatchRequest(since_version=version), timeout=10)
        confirmed = next(resumed)
        resumed.cancel()
        assert (confirmed.type, confirmed.config_version, confirmed.heartbeat_ms) == (
            evaluation_pb2.WatchEvent.TYPE_HEARTBEAT,
            version,
            250,
        )
        admin.close()
    finally:
        server.stop()
