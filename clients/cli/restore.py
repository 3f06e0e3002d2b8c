"""`vexil backup import --into server`: what restoring a backup through the admin API does beyond
`vexil flags import`.

A flags import merges definitions and leaves every kill state to `vexil flags kill`.  A backup
holds more, and restoring it is expected to bring that back too:
- each flag's state (the per-flag kill switch) and the environment's kill switch.  Only
  `SetKillSwitch` changes them, and only the admin role may call it (README: the kill switch is
  admin-only), so a restore sets them that way, and the switches of what the server already
  holds are set before any other write: a caller without the role is refused before anything
  changes.  A flag the restore creates, which the server had deleted in another state (a create
  continues that state), is set right after its create, and a refusal then undoes the import.
- flags the backup records as deleted.  A flag created again comes back in the state it was
  deleted in, so a server that never held the key (or deleted it in another state) is given the
  deletion: the flag is created from its last definition in that state and deleted again, which
  the server's own history records.  A flag the server holds stays (the import merges, it never
  deletes), and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import grpc

from vexil.cli.flagfiles import Call, Importer, Plan, writable_flag
from vexil.errors import PermissionDenied
from vexil.model import Environment, Flag, FlagState
from vexil.v1 import admin_pb2, flag_pb2


@dataclass
class RestorePlan:
    kills: dict[str, bool] = field(default_factory=dict)
    """Flags the server holds in another state than the backup: key -> killed."""
    kills_after_create: dict[str, bool] = field(default_factory=dict)
    """Flags the import creates that come back in the state the server deleted them in."""
    deletions: list[tuple[Flag, bool]] = field(default_factory=list)
    """(the backup's last definition of a deleted flag, whether the server has history for it)."""
    deleted_but_held: list[str] = field(default_factory=list)
    """Deleted in the backup, held by the server: left as they are."""
    environment_killed: bool | None = None
    """The environment kill switch to set, when it differs."""
    environment_reason: str = ""


def _newest_revision(call: Call, admin: Any, environment: str, key: str) -> Any | None:
    request = admin_pb2.GetFlagHistoryRequest(environment=environment, key=key, page_size=1)
    try:
        revisions = call(admin.GetFlagHistory, request).revisions
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
            return None
        raise
    return revisions[0] if revisions else None


def _state_pb(flag: Flag) -> int:
    return int(writable_flag(flag, flag.environment).state)


def plan_restore(
    call: Call,
    admin: Any,
    plan: Plan,
    backup: tuple[Environment, dict[str, Flag]],
    deleted: list[Flag],
    current: dict[str, Flag],
) -> RestorePlan:
    """What the restore sets beyond `plan` (a flags import's plan of the backup's flags); moves
    the flags `plan` would keep in another state into `kills` (a restore sets them)."""
    environment, flags = backup
    name = plan.environment.name
    restore = RestorePlan()
    for key in plan.state_kept:
        restore.kills[key] = flags[key].state is FlagState.DISABLED
    plan.state_kept.clear()
    creates = []
    for flag in plan.create:  # a key the server deleted comes back in the state it had then
        last = _newest_revision(call, admin, name, flag.key)
        if last is not None and last.flag.state != _state_pb(flag):
            restore.kills_after_create[flag.key] = flag.state is FlagState.DISABLED
            flag = replace(flag, state=_state(last.flag))  # created so, then switched
        creates.append(flag)
    plan.create = creates
    for flag in deleted:
        if flag.key in current:
            restore.deleted_but_held.append(flag.key)
            continue
        last = _newest_revision(call, admin, name, flag.key)
        if last is not None and last.deleted and last.flag.state == _state_pb(flag):
            continue  # the server records the same deletion already
        restore.deletions.append((flag, last is not None))
    if environment.kill_switch != plan.environment.kill_switch:
        restore.environment_killed = environment.kill_switch
        restore.environment_reason = environment.kill_reason
    return restore


def apply_restore(importer: Importer, plan: Plan, restore: RestorePlan) -> None:
    """Write the import and the restore; on a refusal undo every write made, then raise (a
    PERMISSION_DENIED as `PermissionDenied` saying that the kill switches need the admin role)."""
    try:
        version = plan.environment.config_version
        if restore.environment_killed is not None:
            version = _kill_environment(importer, restore.environment_killed, restore.environment_reason)
        for key, killed in restore.kills.items():
            set_flag, version = _kill(importer, key, killed)
            plan.update = [
                (
                    replace(cur, version=set_flag.version, state=_state(set_flag)),
                    replace(want, state=_state(set_flag)),
                )
                if cur.key == key
                else (cur, want)
                for cur, want in plan.update
            ]
        # The environment's $evaluators and metadata are written conditional on its version.
        plan.environment = replace(plan.environment, config_version=version)
        importer.apply(plan)
        plan.state_kept.clear()  # the creates below set the backup's state
        for key, killed in restore.kills_after_create.items():
            _kill(importer, key, killed)
        for flag, continues in restore.deletions:
            _record_deletion(importer, flag, continues)
    except grpc.RpcError as exc:
        importer.rollback()
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:  # type: ignore[attr-defined]
            undone = f"; undid {len(importer.rolled_back)} write(s)" if importer.rolled_back else ""
            raise PermissionDenied(
                "restoring a backup through the server needs the admin role: it sets kill switches"
                " (SetKillSwitch) and the environment's $evaluators and metadata (UpdateEnvironment),"
                f" which only an admin may change; use an admin credential{undone} ({exc.details()})"  # type: ignore[attr-defined]
            ) from None
        raise


def _state(flag: flag_pb2.Flag) -> FlagState:
    return FlagState.DISABLED if flag.state == flag_pb2.FLAG_STATE_DISABLED else FlagState.ENABLED


def _kill(importer: Importer, key: str, killed: bool) -> tuple[flag_pb2.Flag, int]:
    """Set a flag's state, with its undo (the opposite switch); the flag and config version."""
    env = importer.environment
    request = admin_pb2.SetKillSwitchRequest(
        environment=env, flag_key=key, killed=killed, reason=f"{importer.reason}: state in the backup"
    )
    done = importer.call(importer.admin.SetKillSwitch, request)
    back = admin_pb2.SetKillSwitchRequest(
        environment=env, flag_key=key, killed=not killed, reason=f"undo: {importer.reason}"
    )
    importer.undo.append(
        (f"{'kill' if killed else 'revive'} {key}", lambda: importer.call(importer.admin.SetKillSwitch, back))
    )
    return done.flag, int(done.config_version)


def _kill_environment(importer: Importer, killed: bool, reason: str) -> int:
    env = importer.environment
    request = admin_pb2.SetKillSwitchRequest(environment=env, killed=killed, reason=reason or importer.reason)
    done = importer.call(importer.admin.SetKillSwitch, request)
    back = admin_pb2.SetKillSwitchRequest(
        environment=env, killed=not killed, reason=f"undo: {importer.reason}"
    )
    importer.undo.append(
        ("environment kill switch", lambda: importer.call(importer.admin.SetKillSwitch, back))
    )
    return int(done.config_version)


def _record_deletion(importer: Importer, flag: Flag, continues: bool) -> None:
    """Create the flag from its last definition in the state it was deleted in, then delete it:
    the server's history then records that deletion (and a later create continues its state).
    The key ends absent, as it was, so there is nothing to undo."""
    env = importer.environment
    writable = writable_flag(flag, env)
    asked = writable.state
    if continues:  # a create without state continues the server's own deleted state
        writable.state = flag_pb2.FLAG_STATE_UNSPECIFIED
    created = importer.call(
        importer.admin.CreateFlag, admin_pb2.CreateFlagRequest(flag=writable, reason=importer.reason)
    ).flag
    version = created.version
    try:
        if created.state != asked:
            request = admin_pb2.SetKillSwitchRequest(
                environment=env,
                flag_key=flag.key,
                killed=asked == flag_pb2.FLAG_STATE_DISABLED,
                reason=f"{importer.reason}: state in the backup",
            )
            version = importer.call(importer.admin.SetKillSwitch, request).flag.version
    finally:
        request = admin_pb2.DeleteFlagRequest(
            environment=env,
            key=flag.key,
            expected_version=version,
            reason=f"{importer.reason}: deleted in the backup",
        )
        importer.call(importer.admin.DeleteFlag, request)


def summary(restore: RestorePlan) -> dict[str, Any]:
    return {
        "states_set": sorted({**restore.kills, **restore.kills_after_create}),
        "deletions_recorded": [flag.key for flag, _ in restore.deletions],
        "deleted_but_held": restore.deleted_but_held,
    }
