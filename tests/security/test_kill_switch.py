"""The kill switch is sticky and admin-owned: only SetKillSwitch kills or revives a flag (or an
environment). UpdateFlag, UpdateEnvironment and rollback keep the state as stored, also when a
kill lands between their read and their write, and a kill survives a restart. Both stores."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.pki import PkiFiles
from tests.support.secure import Secure
from tests.support.servers import VEXIL, bearer, running_app, secure_settings, tls_channel
from vexil.model import ChangeKind, Flag, FlagState
from vexil.store.base import FlagStore
from vexil.store.dynamodb import DynamoStore
from vexil.store.keys import MemoryKeyStore
from vexil.store.memory import MemoryStore
from vexil.v1 import admin_pb2, evaluation_pb2, flag_pb2

ENABLED, DISABLED = flag_pb2.FLAG_STATE_ENABLED, flag_pb2.FLAG_STATE_DISABLED


class KillsOnce:
    """A real store that lets "another replica" kill flag `armed` at the worst moment: right
    after the server's next read of that flag, or right before its next write of it."""

    armed = ""

    async def _fire(self, flag: Flag | None) -> None:
        if flag is not None and flag.key == self.armed:
            self.armed = ""
            await super().update_flag(  # type: ignore[misc]
                replace(flag, state=FlagState.DISABLED),
                expected_version=flag.version,
                kind=ChangeKind.KILL,
                actor="admin@other-replica",
                reason="incident",
            )

    async def get_flag(self, env: str, key: str) -> Flag | None:
        flag = await super().get_flag(env, key)  # type: ignore[misc]
        await self._fire(flag)
        return flag

    async def update_flag(self, flag: Flag, **kwargs: Any) -> Any:
        if flag.key == self.armed:
            await self._fire(await super().get_flag(flag.environment, flag.key))  # type: ignore[misc]
        return await super().update_flag(flag, **kwargs)  # type: ignore[misc]


class RacingMemoryStore(KillsOnce, MemoryStore):
    pass


def make_store(kind: str, request: pytest.FixtureRequest) -> FlagStore:
    if kind == "memory":
        return RacingMemoryStore()

    class RacingDynamoStore(KillsOnce, DynamoStore):
        pass

    endpoint, table = request.getfixturevalue("dynamo_table")
    return RacingDynamoStore(table, region="ap-northeast-1", endpoint_url=endpoint)


@contextlib.asynccontextmanager
async def serve(pki: PkiFiles, store: FlagStore, **overrides: Any) -> AsyncIterator[Secure]:
    settings = secure_settings(pki, environments="local", **overrides)
    async with (
        running_app(settings, store, MemoryKeyStore()) as app,
        tls_channel(f"127.0.0.1:{app.port}", pki) as channel,
    ):
        server = Secure(app, channel)
        for role in ("editor", "admin"):
            server.tokens[role] = await server.issue(role)
        yield server


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> FlagStore:
    return make_store(request.param, request)


async def create(server: Secure, key: str) -> flag_pb2.Flag:
    response = await server.admin.CreateFlag(
        admin_pb2.CreateFlagRequest(flag=flag_pb(key, default="on")), metadata=server.md("editor")
    )
    return response.flag


async def kill(server: Secure, key: str, killed: bool = True) -> None:
    await server.admin.SetKillSwitch(
        admin_pb2.SetKillSwitchRequest(flag_key=key, killed=killed, reason="incident 42"),
        metadata=server.md("admin"),
    )


async def stored(server: Secure, key: str) -> flag_pb2.Flag:
    return await server.admin.GetFlag(admin_pb2.GetFlagRequest(key=key), metadata=server.md("editor"))


async def kinds(server: Secure, key: str) -> list[int]:
    changes = await server.admin.ListChanges(
        admin_pb2.ListChangesRequest(flag_key=key), metadata=server.md("editor")
    )
    return [c.kind for c in changes.changes]


async def reason(server: Secure, key: str) -> int:
    response = await server.evaluation.Evaluate(
        evaluation_pb2.EvaluateRequest(flag_key=key), metadata=bearer(server.tokens["admin"])
    )
    return response.reason


async def update(server: Secure, flag: flag_pb2.Flag, who: str = "editor") -> flag_pb2.Flag:
    response = await server.admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(flag=flag, reason="edit"), metadata=server.md(who)
    )
    return response.flag


@pytest.mark.parametrize("who", ["editor", "admin"])
async def test_update_flag_never_revives_a_killed_flag(pki: PkiFiles, store: FlagStore, who: str) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        await kill(server, "checkout")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await update(server, flag_pb("checkout", default="on", state="ENABLED", description="x"), who)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "SetKillSwitch" in (err.value.details() or "")
        assert (await stored(server, "checkout")).state == DISABLED
        assert await reason(server, "checkout") == evaluation_pb2.REASON_DISABLED
        assert (await kinds(server, "checkout"))[-1] == flag_pb2.CHANGE_KIND_KILL


async def test_update_flag_never_kills_either(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await update(server, flag_pb("checkout", default="on", state="DISABLED"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await stored(server, "checkout")).state == ENABLED


async def test_update_without_a_state_keeps_the_kill(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        await kill(server, "checkout")
        written = await update(server, flag_pb("checkout", default="on", description="new text"))
        assert written.state == DISABLED and written.description == "new text"
        assert await reason(server, "checkout") == evaluation_pb2.REASON_DISABLED
        # Saying the state it already has is fine too.
        written = await update(
            server, flag_pb("checkout", default="on", state="DISABLED", description="again")
        )
        assert written.state == DISABLED
        want = [flag_pb2.CHANGE_KIND_CREATE, flag_pb2.CHANGE_KIND_KILL] + [flag_pb2.CHANGE_KIND_UPDATE] * 2
        assert await kinds(server, "checkout") == want


async def delete(server: Secure, key: str, who: str = "editor") -> None:
    await server.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key=key), metadata=server.md(who))


async def create_as(server: Secure, flag: flag_pb2.Flag, who: str) -> flag_pb2.Flag:
    response = await server.admin.CreateFlag(
        admin_pb2.CreateFlagRequest(flag=flag, reason="again"), metadata=server.md(who)
    )
    return response.flag


@pytest.mark.parametrize("who", ["editor", "admin"])
async def test_deleting_and_creating_again_never_revives_a_killed_flag(
    pki: PkiFiles, store: FlagStore, who: str
) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")  # v1
        await kill(server, "checkout")  # v2
        await delete(server, "checkout", who)  # v3
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_as(server, flag_pb("checkout", default="on", state="ENABLED"), who)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "SetKillSwitch" in (err.value.details() or "")
        assert await kinds(server, "checkout") == [
            flag_pb2.CHANGE_KIND_CREATE,
            flag_pb2.CHANGE_KIND_KILL,
            flag_pb2.CHANGE_KIND_DELETE,
        ]
        again = await create_as(server, flag_pb("checkout", default="on"), who)  # no state said
        assert (again.version, again.state) == (4, DISABLED)
        assert await reason(server, "checkout") == evaluation_pb2.REASON_DISABLED
        await kill(server, "checkout", killed=False)  # only SetKillSwitch revives it
        assert await reason(server, "checkout") == evaluation_pb2.REASON_STATIC


async def test_deleting_and_creating_again_never_kills_either(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        await delete(server, "checkout")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_as(server, flag_pb("checkout", default="on", state="DISABLED"), "editor")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        again = await create_as(server, flag_pb("checkout", default="on", state="ENABLED"), "editor")
        assert again.state == ENABLED
        # A key that never existed takes the state it is created with.
        fresh = await create_as(server, flag_pb("dark-launch", default="on", state="DISABLED"), "editor")
        assert fresh.state == DISABLED


async def test_rollback_keeps_the_current_state(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")  # v1, enabled
        await kill(server, "checkout")  # v2, killed
        rolled = await server.admin.RollbackFlag(
            admin_pb2.RollbackFlagRequest(key="checkout", to_version=1), metadata=server.md("editor")
        )
        assert rolled.flag.state == DISABLED  # v1 was enabled: rolling back must not revive
        await kill(server, "checkout", killed=False)  # v4, revived
        rolled = await server.admin.RollbackFlag(
            admin_pb2.RollbackFlagRequest(key="checkout", to_version=2), metadata=server.md("editor")
        )
        assert rolled.flag.state == ENABLED  # v2 was killed: rolling back must not kill
        assert (await kinds(server, "checkout"))[-1] == flag_pb2.CHANGE_KIND_ROLLBACK


async def test_a_kill_landing_between_read_and_write_is_not_undone(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        store.armed = "checkout"  # type: ignore[attr-defined]
        written = await update(
            server, flag_pb("checkout", default="on", description="edited during an incident")
        )
        assert store.armed == ""  # type: ignore[attr-defined]  (the kill did land)
        assert written.state == DISABLED and written.description == "edited during an incident"
        assert (await stored(server, "checkout")).state == DISABLED

        await create(server, "search")
        store.armed = "search"  # type: ignore[attr-defined]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await update(server, flag_pb("search", default="on", state="ENABLED", description="x"))
        assert err.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED)
        assert (await stored(server, "search")).state == DISABLED


async def test_a_kill_survives_a_restart(pki: PkiFiles, store: FlagStore) -> None:
    async with serve(pki, store) as server:
        await create(server, "checkout")
        await kill(server, "checkout")
    async with serve(pki, store) as server:
        assert (await stored(server, "checkout")).state == DISABLED
        assert await reason(server, "checkout") == evaluation_pb2.REASON_DISABLED


async def test_update_environment_keeps_the_environment_kill(pki: PkiFiles, store: FlagStore) -> None:
    # A slow change feed: the kill below reaches the store (as from another replica) but not
    # this server's snapshot before UpdateEnvironment runs.
    async with serve(pki, store, poll_interval=60.0) as server:
        environment, _ = await store.load_environment("local")
        await store.update_environment(
            replace(environment, kill_switch=True, kill_reason="incident"),
            expected_config_version=None,
            actor="admin@other-replica",
            reason="incident",
        )
        request = admin_pb2.UpdateEnvironmentRequest(reason="new evaluators")
        request.evaluators.update({"beta": {"in": ["beta", {"var": "group"}]}})
        updated = await server.admin.UpdateEnvironment(request, metadata=server.md("admin"))
        assert updated.kill_switch
        after, _ = await store.load_environment("local")
        assert after.kill_switch and after.kill_reason == "incident" and "beta" in after.evaluators


def test_the_cli_says_to_use_the_kill_command() -> None:
    done = subprocess.run(
        [VEXIL, "flags", "update", "checkout", "--state", "enabled", "--target", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "vexil flags kill" in done.stderr


class BusyTable(DynamoStore):
    """The DynamoDB store, but other replicas' writes land between each of a write's reads and
    its transaction, `interruptions` times in a row: a flag write finds the flag's version moved,
    an environment write the config version (any flag's write moves it).  The interfering write
    goes through this store's own client, awaited: a blocking call here would stall the event
    loop the store's other requests are answered on."""

    interruptions = 0

    async def _send(self, actions: list[dict[str, Any]], doing: str) -> Any:
        if self.interruptions:
            self.interruptions -= 1
            keys = [next(iter(a.values())).get("Item") or next(iter(a.values()))["Key"] for a in actions]
            pks = [k["PK"]["S"] for k in keys]
            flag = next((pk for pk in pks if pk.startswith("FLAG#")), None)
            await self._require_client().update_item(
                TableName=self.table,
                Key={"PK": {"S": flag or pks[0]}, "SK": {"S": "METADATA"}},
                UpdateExpression="ADD #n :one",
                ExpressionAttributeNames={"#n": "version" if flag else "configVersion"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return await super()._send(actions, doing)


@pytest.mark.parametrize("scope", ["environment", "flag"])
async def test_a_kill_is_not_refused_however_busy_the_table_is(
    pki: PkiFiles, dynamo_table: tuple[str, str], scope: str
) -> None:
    """Other writes landing between the kill's read and its write (a dozen times in a row here,
    as busy writers on other replicas do: any flag's write for the environment kill, writes of
    the same flag for a flag kill) must cost retries, never the kill.  Both once failed ABORTED
    after five tries: during an incident the worst possible answer."""
    endpoint, table = dynamo_table
    store = BusyTable(table, region="ap-northeast-1", endpoint_url=endpoint)
    async with serve(pki, store) as server:
        await create(server, "checkout")
        store.interruptions = 12
        request = admin_pb2.SetKillSwitchRequest(killed=True, reason="incident 42")
        if scope == "flag":
            request.flag_key = "checkout"
        await server.admin.SetKillSwitch(request, metadata=server.md("admin"))
        assert store.interruptions == 0
        assert await reason(server, "checkout") == evaluation_pb2.REASON_DISABLED
