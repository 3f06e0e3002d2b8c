"""DynamoDB on-demand backups and point-in-time recovery, as the operations guide runs them.

The guide's commands (`aws dynamodb create-backup`, `list-backups`, `update-continuous-backups`)
become `create_backup`, `list_backups` and `enable_pitr`; restores always go to a *new* table
(DynamoDB cannot restore over a table), and each call waits until the backup is AVAILABLE or the
table ACTIVE, reporting progress, because an operator running a restore needs to know when it
is usable.  A restored table does not get the source's stream settings, PITR, auto scaling,
alarms or tags: `restore_*` returns notes saying what to re-apply.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from vexil.errors import InvalidArgument, NotFound, Unavailable
from vexil.ops.progress import Progress
from vexil.store import dynamodb_table
from vexil.store.dynamodb_client import translated_errors

RESTORE_NOTES = (
    "enable point-in-time recovery on the restored table (vexil backup pitr enable)",
    "re-create auto scaling policies, alarms and tags if the source had them",
    "point the servers at the restored table (dynamodb_table) and restart them",
)


@dataclass(frozen=True)
class BackupInfo:
    arn: str
    name: str
    table: str
    created_at: float
    status: str
    size_bytes: int
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": _iso(self.created_at)}  # ISO, as all CLI JSON


@dataclass(frozen=True)
class PitrStatus:
    table: str
    enabled: bool
    earliest: float | None
    latest: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "enabled": self.enabled,
            "earliestRestorable": _iso(self.earliest),
            "latestRestorable": _iso(self.latest),
        }


@dataclass(frozen=True)
class Restored:
    table: str
    source: str
    item_count: int
    seconds: float
    notes: tuple[str, ...] = RESTORE_NOTES

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}


def default_name(table: str, kind: str = "manual", at: float | None = None) -> str:
    """`<table>-<kind>-YYYYmmdd-HHMMSS`, the guide's naming ("feature-flags-prod-manual-...")."""
    stamp = datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime("%Y%m%d-%H%M%S")
    return f"{table}-{kind}-{stamp}"


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _iso(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _backup(details: dict[str, Any], table: str = "") -> BackupInfo:
    return BackupInfo(
        arn=details["BackupArn"],
        name=details.get("BackupName", ""),
        table=details.get("TableName", table),
        created_at=_timestamp(details.get("BackupCreationDateTime")) or 0.0,
        status=details.get("BackupStatus", ""),
        size_bytes=int(details.get("BackupSizeBytes", 0) or 0),
        type=details.get("BackupType", ""),
    )


async def create_backup(
    client: Any, table: str, name: str = "", *, progress: Progress | None = None, wait_seconds: float = 1800
) -> BackupInfo:
    """Create an on-demand backup and wait until it is AVAILABLE."""
    progress = progress or Progress.quiet()
    name = name or default_name(table)
    progress.start(f"creating backup {name} of {table}")
    with translated_errors(f"creating a backup of {table}"):
        response = await client.create_backup(TableName=table, BackupName=name)
    info = _backup(response["BackupDetails"], table)
    deadline = time.monotonic() + wait_seconds
    while info.status != "AVAILABLE":
        if info.status == "DELETED" or time.monotonic() > deadline:
            raise Unavailable(f"backup {name} is {info.status} after {wait_seconds:.0f} s")
        progress.update(f"backup {name}: {info.status}")
        await asyncio.sleep(2.0)
        with translated_errors(f"describing backup {name}"):
            described = await client.describe_backup(BackupArn=info.arn)
        details = described["BackupDescription"]["BackupDetails"]
        info = _backup({**details, "TableName": table})
    progress.done(f"backup {name} AVAILABLE")
    return info


async def list_backups(client: Any, table: str) -> list[BackupInfo]:
    """Every backup of `table`, newest first."""
    found: list[BackupInfo] = []
    start = None
    while True:
        args: dict[str, Any] = {"TableName": table}
        if start:
            args["ExclusiveStartBackupArn"] = start
        with translated_errors(f"listing backups of {table}"):
            page = await client.list_backups(**args)
        found.extend(_backup(summary, table) for summary in page.get("BackupSummaries", []))
        start = page.get("LastEvaluatedBackupArn")
        if not start:
            return sorted(found, key=lambda b: b.created_at, reverse=True)


async def find_backup(client: Any, table: str, name_or_arn: str) -> BackupInfo:
    """A backup by ARN, or the newest of `table` with that name."""
    for backup in await list_backups(client, table):
        if name_or_arn in (backup.arn, backup.name):
            return backup
    raise NotFound(f"no backup of {table} is named or has the ARN {name_or_arn!r}")


async def delete_backup(client: Any, arn: str) -> None:
    with translated_errors("deleting a backup"):
        await client.delete_backup(BackupArn=arn)


async def restore_backup(
    client: Any,
    backup: BackupInfo,
    target: str,
    *,
    progress: Progress | None = None,
    wait_seconds: float = 3600,
) -> Restored:
    """Restore `backup` into the new table `target` and wait until it can be read."""
    progress = progress or Progress.quiet()
    started = time.monotonic()
    progress.start(f"restoring {backup.name} into {target}")
    with translated_errors(f"restoring {backup.name} into {target}"):
        await client.restore_table_from_backup(TargetTableName=target, BackupArn=backup.arn)
    count = await wait_active(client, target, progress, wait_seconds)
    return Restored(target, backup.name, count, time.monotonic() - started)


async def enable_pitr(client: Any, table: str) -> PitrStatus:
    with translated_errors(f"enabling point-in-time recovery on {table}"):
        await client.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return await pitr_status(client, table)


async def pitr_status(client: Any, table: str) -> PitrStatus:
    with translated_errors(f"reading point-in-time recovery of {table}"):
        response = await client.describe_continuous_backups(TableName=table)
    pitr = response["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    return PitrStatus(
        table=table,
        enabled=pitr.get("PointInTimeRecoveryStatus") == "ENABLED",
        earliest=_timestamp(pitr.get("EarliestRestorableDateTime")),
        latest=_timestamp(pitr.get("LatestRestorableDateTime")),
    )


async def restore_pitr(
    client: Any,
    table: str,
    target: str,
    *,
    at: float | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 3600,
) -> Restored:
    """Restore `table` as it was at `at` (seconds since the epoch; None: the latest restorable
    time, about five minutes ago on AWS) into the new table `target`."""
    progress = progress or Progress.quiet()
    status = await pitr_status(client, table)
    if not status.enabled:
        raise InvalidArgument(f"point-in-time recovery is not enabled on {table} (vexil backup pitr enable)")
    earliest, latest = status.earliest, status.latest
    if at is not None and earliest is not None and latest is not None and not earliest <= at <= latest:
        raise InvalidArgument(
            f"{_iso(at)} is outside the restorable window {_iso(earliest)} .. {_iso(latest)}",
            field="time",
        )
    point = (
        {"UseLatestRestorableTime": True}
        if at is None
        else {"RestoreDateTime": datetime.fromtimestamp(at, UTC)}
    )
    started = time.monotonic()
    progress.start(f"restoring {table} at {_iso(at) if at else 'the latest restorable time'} into {target}")
    with translated_errors(f"restoring {table} into {target}"):
        await client.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target, **point)
    count = await wait_active(client, target, progress, wait_seconds)
    return Restored(target, f"{table}@{_iso(at) or 'latest'}", count, time.monotonic() - started)


async def wait_active(client: Any, table: str, progress: Progress, wait_seconds: float) -> int:
    """Wait for a restored table (and its indexes) to be ACTIVE; returns its item count."""
    desc = await dynamodb_table.wait_active(
        client,
        table,
        wait_seconds,
        delay=5.0,
        waiting=lambda statuses: progress.update(f"{table}: {', '.join(str(s) for s in statuses)}"),
    )
    progress.done(f"{table} ACTIVE")
    return int(desc.get("ItemCount", 0) or 0)
