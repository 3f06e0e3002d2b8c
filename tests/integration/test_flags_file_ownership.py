"""The memory store's flags file (`make run`): editing the file changes only the flags it manages.

Flags created through the admin API survive every edit, and a flag an operator killed stays
killed whatever the file says, until it is revived with SetKillSwitch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.calls import eventually
from tests.support.flags import flag_definition, flag_pb
from tests.support.servers import connected, running_app, server_settings
from vexil.v1 import admin_pb2, admin_pb2_grpc, flag_pb2
from vexil.wire import dict_to_struct, struct_to_dict

DISABLED = flag_pb2.FLAG_STATE_DISABLED


def write_file(path: Path, flags: dict[str, dict[str, Any]]) -> None:
    path.write_text(json.dumps({"flags": flags}))


async def get(admin: admin_pb2_grpc.AdminServiceStub, key: str) -> flag_pb2.Flag | None:
    try:
        return await admin.GetFlag(admin_pb2.GetFlagRequest(key=key))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def test_editing_the_file_keeps_api_flags_and_kills(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "flags.json"
    write_file(path, {"from-file": flag_definition(default="on"), "to-kill": flag_definition(default="on")})
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        admin = conn.admin
        assert (await get(admin, "from-file")).managed_by == "file:flags.json"
        await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("api-made", default="on")))
        await admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="to-kill", killed=True, reason="incident")
        )
        api_flag = await get(admin, "api-made")
        assert api_flag.managed_by == ""

        with caplog.at_level(logging.INFO, logger="vexil.flagfile"):
            write_file(
                path, {"from-file": flag_definition(default="off"), "to-kill": flag_definition(default="off")}
            )
            await eventually(
                lambda: _true(any("reloaded" in r.getMessage() for r in caplog.records)), timeout=15
            )
        assert await get(admin, "api-made") == api_flag, "a file edit changed an API flag"
        killed = await get(admin, "to-kill")
        assert killed.default_variant == "off", "the definition follows the file"
        assert killed.state == DISABLED, "a file edit revived a killed flag"
        assert any("to-kill" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

        write_file(
            path, {"to-kill": flag_definition(default="off")}
        )  # removed from the file: only the file's own flag goes
        await eventually(lambda: _absent(admin, "from-file"), timeout=15)
        assert await get(admin, "api-made") == api_flag
        assert (await get(admin, "to-kill")).state == DISABLED


async def test_a_killed_flag_removed_from_the_file_and_put_back_stays_killed(tmp_path) -> None:
    path = tmp_path / "flags.json"
    write_file(path, {"to-kill": flag_definition(default="on")})
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        admin = conn.admin
        await admin.SetKillSwitch(
            admin_pb2.SetKillSwitchRequest(flag_key="to-kill", killed=True, reason="incident")
        )
        write_file(path, {})
        await eventually(lambda: _absent(admin, "to-kill"), timeout=15)
        write_file(path, {"to-kill": flag_definition(default="on")})
        back = await eventually(lambda: get(admin, "to-kill"), timeout=15)
        assert back.state == DISABLED, "putting a killed flag back in the file revived it"


async def test_the_file_state_applies_when_it_creates_a_flag(tmp_path) -> None:
    path = tmp_path / "flags.json"
    write_file(path, {"off-from-the-start": flag_definition(default="on", state="DISABLED")})
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        assert (await get(conn.admin, "off-from-the-start")).state == DISABLED


async def _true(value: bool) -> bool:
    return value


async def _absent(admin: admin_pb2_grpc.AdminServiceStub, key: str) -> bool:
    return await get(admin, key) is None


async def test_file_evaluators_are_merged_and_never_break_api_flags(tmp_path) -> None:
    """The file's `$evaluators` are added to the environment's: entries it does not name stay, and
    a file that would replace one with a definition an API flag cannot compile is refused."""
    staff = {"ends_with": [{"var": "email"}, "@example.com"]}
    shared = {"==": [{"var": "tier"}, "gold"]}
    path = tmp_path / "flags.json"
    path.write_text(
        json.dumps(
            {
                "$evaluators": {"is-staff": staff, "shared": shared},
                "flags": {"f": flag_definition(default="on")},
            }
        )
    )
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        admin = conn.admin
        theirs = admin_pb2.UpdateEnvironmentRequest(environment="local")
        dict_to_struct({"is-staff": staff, "shared": shared, "api-only": shared}, theirs.evaluators)
        await admin.UpdateEnvironment(theirs)
        rule = flag_pb("api-shared")
        dict_to_struct({"if": [{"$ref": "shared"}, "on", "off"]}, rule.targeting)
        await admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=rule))

        async def evaluators() -> dict:
            env = await admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment="local"))
            return struct_to_dict(env.evaluators)

        staff_v2 = {"ends_with": [{"var": "email"}, "@staff.example.com"]}
        path.write_text(
            json.dumps({"$evaluators": {"is-staff": staff_v2}, "flags": {"f": flag_definition(default="on")}})
        )

        async def merged() -> bool:
            return (await evaluators()).get("is-staff") == staff_v2

        await eventually(merged, timeout=15)
        assert await evaluators() == {"is-staff": staff_v2, "shared": shared, "api-only": shared}

        broken = {
            "$evaluators": {"shared": {"no_such_op": [1]}},
            "flags": {"f": flag_definition(default="off")},
        }
        path.write_text(json.dumps(broken))
        sync = app.file_sync
        assert sync is not None
        await eventually(lambda: _true(bool(sync.last_error)), timeout=15)
        assert "api-shared" in sync.last_error
        assert (await evaluators())["shared"] == shared
        assert (await get(admin, "f")).default_variant == "on", "a refused file writes nothing"


class Interfering:
    """The service the file sync writes through, as it is, but for the methods a subclass
    overrides to let another writer in first (once: `interfered` says it happened)."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.interfered = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


class OtherWriterFirst(Interfering):
    """Another replica changes the environment's `$evaluators` in the store (not yet in this
    replica's snapshot) just before the file's environment write."""

    def __init__(self, service: Any, evaluators: dict[str, Any]) -> None:
        super().__init__(service)
        self._evaluators = evaluators

    async def update_environment(self, environment: str, **kwargs: Any) -> Any:
        if not self.interfered:
            self.interfered = True
            current, _ = await self._service.store.load_environment(environment)
            theirs = replace(current, evaluators={**current.evaluators, **self._evaluators})
            await self._service.store.update_environment(theirs, expected_config_version=None, actor="bob")
        return await self._service.update_environment(environment, **kwargs)


async def test_file_environment_write_never_overwrites_a_concurrent_change(tmp_path) -> None:
    staff = {"ends_with": [{"var": "email"}, "@example.com"]}
    theirs = {"is-theirs": {"==": [{"var": "tier"}, "gold"]}}
    path = tmp_path / "flags.json"
    write_file(path, {"f": flag_definition(default="on")})
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        sync = app.file_sync
        assert sync is not None
        interfering = OtherWriterFirst(app.service, theirs)
        sync.service = interfering
        path.write_text(
            json.dumps({"$evaluators": {"is-staff": staff}, "flags": {"f": flag_definition(default="off")}})
        )

        async def applied() -> bool:
            return (await get(conn.admin, "f")).default_variant == "off"

        await eventually(applied, timeout=15)
        assert interfering.interfered
        env = await conn.admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment="local"))
        assert struct_to_dict(env.evaluators) == {"is-staff": staff, **theirs}


class KillFirst(Interfering):
    """An admin on another replica kills flag `key` in the store just before the file's update
    of it (after the sync read the flag as enabled)."""

    def __init__(self, service: Any, key: str) -> None:
        super().__init__(service)
        self._key = key

    async def update_flag(self, flag: Any, **kwargs: Any) -> Any:
        if flag.key == self._key and not self.interfered:
            self.interfered = True
            await self._service.set_flag_killed(
                flag.environment, flag.key, True, actor="admin@other-replica", reason="incident"
            )
        return await self._service.update_flag(flag, **kwargs)


async def test_a_kill_landing_during_a_sync_keeps_the_kill_and_takes_the_files_definition(tmp_path) -> None:
    """README: a killed flag stays killed whatever the file says, and the file keeps managing its
    definition.  A kill between the sync's read and its write once made the write fail for good
    (KILL_SWITCH_ADMIN_ONLY, logged and dropped): the flag kept the old definition until the
    file changed again, and a revive served it."""
    path = tmp_path / "flags.json"
    write_file(path, {"f": flag_definition(default="on")})
    async with running_app(server_settings(flags=str(path))) as app, connected(app) as conn:
        sync = app.file_sync
        assert sync is not None
        interfering = KillFirst(app.service, "f")
        sync.service = interfering
        write_file(path, {"f": flag_definition(default="off")})

        async def applied() -> bool:
            return (await get(conn.admin, "f")).default_variant == "off"

        await eventually(applied, timeout=15)
        assert interfering.interfered
        assert (await get(conn.admin, "f")).state == DISABLED
