"""The disaster-recovery drill (災害復旧テスト): back up, restore into a new table, verify item by
item, prove a server can serve the restored table, and time every step against the guide's
RTO (15 min) and RPO (5 min).

The recovery time is what an incident would take once the decision to restore is made: restore
+ verify + serve (the backup already exists then).  The RPO is judged from what the source table
offers *continuously*: with point-in-time recovery, how far behind its latest restorable time
is; without it, only on-demand backups, so everything since the newest one would be lost.

The drill's backup is kept (named `<table>-drill-<time>`, it is a real backup and the monthly
check looks for it); the restored table is deleted unless asked to keep it.  Writes to the source
during the drill are tolerated: items that changed between the two reads of the source are
reported as in flux and not counted as differences.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from vexil.errors import VexilError
from vexil.model import ENVIRONMENT_PATTERN
from vexil.observability.thresholds import RPO_SECONDS, RTO_SECONDS
from vexil.ops import backups, tables, verify
from vexil.ops.items import environments, key_of
from vexil.ops.progress import Progress
from vexil.store.dynamodb_client import ClientSettings, client_for

T = TypeVar("T")


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "seconds": round(self.seconds, 3), "ok": self.ok, "detail": self.detail}


@dataclass
class DrillReport:
    source: str
    target: str
    steps: list[Step] = field(default_factory=list)
    backup: str = ""
    verify: dict[str, Any] = field(default_factory=dict)
    in_flux: list[str] = field(default_factory=list)
    rpo_seconds: float | None = None
    rpo_detail: str = ""
    rpo_continuous: bool = False
    """True when the table has point-in-time recovery: only then is the RPO bounded at all times."""
    kept: bool = False

    @property
    def recovery_seconds(self) -> float:
        return sum(s.seconds for s in self.steps if s.name in ("restore", "verify", "serve"))

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def rto_met(self) -> bool:
        return self.recovery_seconds <= RTO_SECONDS

    @property
    def rpo_met(self) -> bool:
        """Without PITR the data at risk grows until the next backup, whatever it is right now."""
        return self.rpo_continuous and self.rpo_seconds is not None and self.rpo_seconds <= RPO_SECONDS

    @property
    def passed(self) -> bool:
        return all(s.ok for s in self.steps) and self.rto_met

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "backup": self.backup,
            "passed": self.passed,
            "steps": [s.as_dict() for s in self.steps],
            "recoverySeconds": round(self.recovery_seconds, 3),
            "totalSeconds": round(self.total_seconds, 3),
            "rtoSeconds": RTO_SECONDS,
            "rtoMet": self.rto_met,
            "rpoSeconds": self.rpo_seconds,
            "rpoTargetSeconds": RPO_SECONDS,
            "rpoMet": self.rpo_met,
            "rpoDetail": self.rpo_detail,
            "rpoContinuous": self.rpo_continuous,
            "verify": self.verify,
            "inFlux": self.in_flux,
            "restoredTableKept": self.kept,
        }


async def _timed(report: DrillReport, name: str, work: Callable[[], Awaitable[T]]) -> T:
    step = Step(name)
    report.steps.append(step)
    started = time.monotonic()
    try:
        return await work()
    except BaseException:
        step.ok = False
        raise
    finally:
        step.seconds = time.monotonic() - started


async def run_drill(
    table: str,
    settings: ClientSettings,
    *,
    target: str = "",
    keep: bool = False,
    serve: bool = True,
    progress: Progress | None = None,
) -> DrillReport:
    """Run the drill against `table` (see the module docstring); failures end up in the report."""
    progress = progress or Progress.quiet()
    name = backups.default_name(table, "drill")
    report = DrillReport(source=table, target=target or name)
    async with client_for(settings) as client:
        try:
            before = await _timed(report, "read source", lambda: tables.scan_items(client, table, progress))
            report.steps[-1].detail = f"{len(before)} items"
            backup = await _timed(
                report, "backup", lambda: backups.create_backup(client, table, name, progress=progress)
            )
            report.backup = backup.name
            report.steps[-1].detail = backup.arn
            restored = await _timed(
                report,
                "restore",
                lambda: backups.restore_backup(client, backup, report.target, progress=progress),
            )
            report.steps[-1].detail = f"table {restored.table}"
            await _timed(report, "verify", lambda: _verify(client, report, before, progress))
            if serve:
                await _timed(report, "serve", lambda: _serve(report, settings, progress))
        except VexilError as exc:
            report.steps[-1].detail = f"{exc.code}: {exc.message}"
        except (grpc.RpcError, RuntimeError, OSError) as exc:  # the serve step's server or calls
            report.steps[-1].detail = f"{type(exc).__name__}: {exc}"
        report.rpo_seconds, report.rpo_detail, report.rpo_continuous = await _rpo(
            client, table, report.backup
        )
        if not keep and any(s.name == "restore" and s.ok for s in report.steps):
            try:
                await _timed(report, "cleanup", lambda: tables.delete_table(client, report.target))
                report.steps[-1].detail = f"deleted {report.target}"
            except VexilError as exc:
                report.steps[-1].detail = f"could not delete {report.target}: {exc.message}"
        report.kept = keep
    return report


async def _verify(client: Any, report: DrillReport, before: list[dict[str, Any]], progress: Progress) -> None:
    progress.start(f"verifying {report.target} against {report.source}")
    restored = await tables.scan_items(client, report.target, progress)
    after = await tables.scan_items(client, report.source, progress)
    moving = verify.compare(before, after)
    in_flux = {*moving.missing, *moving.extra, *(d.key for d in moving.different)}
    stable = [item for item in before if key_of(item) not in in_flux]
    result = verify.compare(stable, [item for item in restored if key_of(item) not in in_flux])
    report.verify = result.as_dict()
    report.in_flux = sorted("/".join(k) for k in in_flux)
    step = report.steps[-1]
    step.ok = result.equal
    step.detail = (
        f"{result.matching} of {result.expected} items equal"
        + (f", {len(in_flux)} changed during the drill" if in_flux else "")
        + (
            ""
            if result.equal
            else f"; {len(result.missing)} missing, {len(result.extra)} extra,"
            f" {len(result.different)} different"
        )
    )
    progress.done(step.detail)


async def _serve(report: DrillReport, settings: ClientSettings, progress: Progress) -> None:
    """Start a real server on the restored table and evaluate every flag of every environment."""
    from vexil import config
    from vexil.app import App
    from vexil.store.dynamodb import DynamoStore
    from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

    progress.start(f"starting a server on {report.target}")
    async with client_for(settings) as client:
        items = await tables.scan_items(client, report.target)
    served = [env for env in environments(items) if ENVIRONMENT_PATTERN.fullmatch(env)] or ["local"]
    flags = max((len(f) for _, f in environments(items).values()), default=0)
    server_settings = config.load(
        cli={
            "host": "127.0.0.1",
            "port": _free_port(),
            "http_port": 0,
            # A throwaway self-check on loopback for a few seconds: the local profile, no
            # credentials (the drill proves the data serves; TLS and keys are the deployment's).
            "env": "local",
            "auth_mode": "none",
            "environments": ",".join(served),
            "store": "dynamodb",
            "dynamodb_table": report.target,
            "cache_maxsize": max(10000, flags),
        },
        environ={},
    )
    store = DynamoStore(
        report.target,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        credentials=settings.credentials,
    )
    app = App(server_settings, store)
    step = report.steps[-1]
    try:
        await app.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            status = await admin_pb2_grpc.AdminServiceStub(channel).GetStatus(admin_pb2.GetStatusRequest())
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            answered = errors = 0
            for env in served:
                response = await evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(environment=env))
                answered += len(response.results)
                errors += sum(1 for r in response.results if r.reason == evaluation_pb2.REASON_ERROR)
        state = admin_pb2.ServerStatus.State.Name(status.state).removeprefix("STATE_")
        step.ok = status.state == admin_pb2.ServerStatus.STATE_SERVING
        step.detail = f"{state}: {len(served)} environments, {answered} flags evaluated, {errors} errors"
    finally:
        await app.stop(grace=1.0, drain=0)  # a private probe: no load balancer to drain
    progress.done(step.detail)


async def _rpo(client: Any, table: str, drill_backup: str) -> tuple[float | None, str, bool]:
    """How much data a restore right now could lose, and whether that is bounded continuously."""
    try:
        pitr = await backups.pitr_status(client, table)
        if pitr.enabled and pitr.latest:
            lag = max(0.0, time.time() - pitr.latest)
            return lag, f"point-in-time recovery enabled; latest restorable time {lag:.0f} s ago", True
        earlier = [b for b in await backups.list_backups(client, table) if b.name != drill_backup]
    except VexilError as exc:
        return None, f"could not read backups: {exc.message}", False
    advice = "the 5-minute RPO needs point-in-time recovery (vexil backup pitr enable)"
    if not earlier:
        return None, f"point-in-time recovery disabled and no other backup: {advice}", False
    age = time.time() - earlier[0].created_at
    return (
        age,
        f"point-in-time recovery disabled; data since the newest backup would be lost: {advice}",
        False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
