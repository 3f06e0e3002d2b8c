"""Starting while vexil is unreachable: serve a flagd flags file or the last persisted snapshot,
report the data as STALE, and switch to the server's data (telling listeners what differed)
once it answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.client import FAST, Admin, LoopThread, Replica, wait_until
from tests.support.flags import flag_pb
from tests.support.servers import free_port
from vexil.client import ChangeEvent, ChangeKind, Client, ConfigError, ConnectionState, Reason
from vexil.store.memory import MemoryStore

FLAGS_FILE = {
    "$evaluators": {"is_jp": {"==": [{"var": "country"}, "JP"]}},
    "flags": {
        "checkout": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"},
        "banner": {
            "state": "ENABLED",
            "variants": {"jp": "こんにちは", "en": "Hello"},
            "defaultVariant": "en",
            "targeting": {"if": [{"$ref": "is_jp"}, "jp", None]},
        },
        "limits": {"state": "ENABLED", "variants": {"basic": {"rps": [10, 20]}}, "defaultVariant": "basic"},
    },
}


def write_flags(tmp_path: Path) -> str:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(FLAGS_FILE))
    return str(path)


def test_flags_file_until_the_server_answers(loop_thread: LoopThread, tmp_path: Path) -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    with Client(target=target, mode="local", flags_file=write_flags(tmp_path), start=False, **FAST) as client:
        changes: list[ChangeEvent] = []
        client.on_change(changes.append)
        client.start()
        assert client.state is ConnectionState.STALE
        assert client.bool_value("checkout", True) is False
        assert client.string_value("banner", "?", {"country": "JP"}) == "こんにちは"
        details = client.bool_details("checkout", True)
        assert (details.reason, details.flag_version, details.config_version) == (Reason.STATIC, 0, 0)
        limits = client.object_value("limits", {})
        assert limits == {"rps": [10, 20]}
        with pytest.raises(TypeError):  # as read-only as values from the server
            limits["rps"].append(30)
        status = client.status()
        assert (status.source, status.flag_count, status.snapshot_age) == ("flags file", 3, float("inf"))

        server = Replica(loop_thread, MemoryStore(), port=port).start()
        try:
            admin = Admin(target)
            admin.create(flag_pb("checkout", default="on"))
            admin.create(flag_pb("only-on-server", default="on"))
            version = admin.create(flag_pb("banner", {"jp": "こんにちは", "en": "Hello"}, "en"))
            admin.close()
            assert wait_until(lambda: client.status().config_version == version, 15)
            assert client.state is ConnectionState.READY and client.status().source == "server"
            assert client.bool_value("checkout", False) is True
            assert client.string_value("banner", "?", {"country": "JP"}) == "Hello"  # no rule on the server
            # One snapshot event names exactly the flags whose answers may have changed
            # (the environment's $evaluators differ, so that is all of them).
            snapshot = next(e for e in changes if e.kind is ChangeKind.SNAPSHOT)
            assert snapshot.flag_keys >= {"checkout", "banner"}
        finally:
            server.stop()


def test_persisted_snapshot_survives_a_restart_of_the_service(
    server: Replica, admin: Admin, tmp_path: Path
) -> None:
    saved = tmp_path / "cache" / "vexil-snapshot.json"
    admin.create(flag_pb("banner", {"a": "A", "b": "B"}, "a"))
    admin.create(flag_pb("limits", {"basic": {"rps": 10}}, "basic"))
    with Client(target=server.target, mode="local", snapshot_file=str(saved), **FAST) as client:
        assert client.wait_for_ready(10)
        version = admin.update(flag_pb("banner", {"a": "A", "b": "B"}, "b"))
        assert wait_until(lambda: client.status().config_version == version, 10)
    assert json.loads(saved.read_text())["event"]["config_version"] == str(version)

    server.stop()  # vexil is down when the service restarts
    with Client(target=server.target, mode="local", snapshot_file=str(saved), **FAST) as restarted:
        assert restarted.state is ConnectionState.STALE
        assert restarted.string_value("banner", "?") == "B"
        details = restarted.string_details("banner", "?")
        assert (details.variant, details.flag_version, details.config_version) == ("b", 2, version)
        with pytest.raises(TypeError):
            restarted.object_value("limits", {})["rps"] = 0
        assert restarted.object_value("limits", {}) == {"rps": 10}
        status = restarted.status()
        assert status.source == "persisted snapshot"
        assert status.snapshot_age is not None and 0 <= status.snapshot_age < 60


def test_a_damaged_snapshot_falls_back_to_the_flags_file(tmp_path: Path) -> None:
    saved = tmp_path / "snap.json"
    saved.write_text("{not json")
    options = {"target": f"127.0.0.1:{free_port()}", "mode": "local", "start": False}
    with Client(snapshot_file=str(saved), flags_file=write_flags(tmp_path), **options) as client:  # type: ignore[arg-type]
        assert client.status().source == "flags file"
    with Client(snapshot_file=str(saved), **options) as client:  # type: ignore[arg-type]
        assert client.state is ConnectionState.NOT_READY


def test_a_bad_flags_file_stops_construction(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags:\n  x:\n    state: MAYBE\n    variants: {a: 1}\n")
    with pytest.raises(ConfigError, match="state"):
        Client(target="127.0.0.1:1", mode="local", flags_file=str(bad), start=False)


def test_remote_mode_does_not_bootstrap(tmp_path: Path) -> None:
    with Client(target="127.0.0.1:1", flags_file=write_flags(tmp_path), start=False) as client:
        assert client.state is ConnectionState.NOT_READY and client.status().flag_count == 0
