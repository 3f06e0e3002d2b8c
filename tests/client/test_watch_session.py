"""The Watch protocol of the client (`WatchSession`), event by event, without a server: what a
resumed stream may open with, per the resume contract in `vexil.v1`'s WatchRequest (a heartbeat
at the current config_version when nothing is newer) and clients/README.md (never back in time)."""

from __future__ import annotations

import pytest

from tests.support.flags import flag_pb
from vexil.client.changes import ChangeListeners
from vexil.client.config import ClientConfig
from vexil.client.local import LocalFlags
from vexil.client.state import StateTracker
from vexil.client.watcher import Resync, ServerBehind, WatchSession
from vexil.v1 import evaluation_pb2

Event = evaluation_pb2.WatchEvent


def following_at(version: int) -> WatchSession:
    """A session that holds a snapshot at `version` from the server, then lost its stream."""
    session = WatchSession(
        ClientConfig(target="127.0.0.1:1", mode="local"), LocalFlags(), StateTracker(), ChangeListeners()
    )
    session.request()
    session.receive(Event(type=Event.TYPE_SNAPSHOT, config_version=version, flags=[flag_pb("f")]))
    return session


def test_a_server_behind_is_asked_again_from_the_clients_own_version() -> None:
    session = following_at(5)
    assert session.request().since_version == 4  # the overlap: the change it holds, re-sent
    with pytest.raises(ServerBehind):
        session.receive(Event(type=Event.TYPE_HEARTBEAT, config_version=4))
    session.resync(ServerBehind("behind"))
    assert session.flags.config_version == 5  # kept
    assert session.request().since_version == 5  # from its own version now


@pytest.mark.parametrize(("heartbeat", "outcome"), [(5, None), (4, ServerBehind), (7, Resync)])
def test_what_a_resume_from_the_clients_own_version_may_open_with(
    heartbeat: int, outcome: type | None
) -> None:
    """At the client's version: confirmed.  Below it: still behind (keep the data).  Above it,
    with no change before it: changes were missed, so a full snapshot (never an older one)."""
    session = following_at(5)
    session.request()
    with pytest.raises(ServerBehind):
        session.receive(Event(type=Event.TYPE_HEARTBEAT, config_version=4))
    session.resync(ServerBehind("behind"))
    session.request()
    event = Event(type=Event.TYPE_HEARTBEAT, config_version=heartbeat)
    if outcome is None:
        session.receive(event)
        assert session.flags.config_version == 5
    else:
        with pytest.raises(outcome) as raised:
            session.receive(event)
        assert type(raised.value) is outcome  # a full snapshot (Resync) is not "behind", nor back
