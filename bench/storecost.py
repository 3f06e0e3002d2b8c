"""Store cost: what reading the DynamoDB store costs as history grows, and a cold start.

1. Reload: `DynamoStore.load_environment` (what a replica's start, adoption or reload runs) of the
   same number of flags in two tables, one with no history and one with `history` versions per
   flag (a history item and a change-log entry each, written straight into the table in vexil's
   item shape).  Reported per table: the items DynamoDB examined (`ScannedCount` of each Query and
   Scan, what read capacity is billed on; the emulator's own `ConsumedCapacity` is a constant per
   request, so it is not used) and the median time of three loads, the two tables loaded in turn
   within each round; the time ratio is the median of the rounds'.  Target: with history <= 1.1x
   without, for both.  The emulator answers any Query on an index by walking the whole table, so
   its time grows with history where DynamoDB's does not: a bare client's GSI1 Query of the same
   two tables is timed beside it (`bare_client_time_ratio`) to tell the two apart.
2. Start: `vexil serve` on a table of `big_flags` flags, launch to gRPC health SERVING, against the
   time a bare client (aioboto3, one Query after another over GSI1) needs to get those items back
   from the same emulator just before, in each of three rounds: the emulator's own pace drifts by
   a fifth from one minute to the next, so each start is held against the read beside it, and
   the median of the three ratios is reported with their range.  Target <= 1.3x.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.evaluate import spread
from bench.flagset import environment, mix, stored
from bench.servers import Emulator, Vexil, dynamo_args
from vexil.model import Change, ChangeKind, FlagRevision
from vexil.store import dynamodb_items as items
from vexil.store.dynamodb import GSI_SETTLE_S, DynamoStore
from vexil.store.dynamodb_client import ClientSettings, client_for
from vexil.store.dynamodb_table import GSI1_NAME

ROUNDS = 3
HISTORY_AGE_S = 3600.0


def _history(table: str, emulator: Emulator, flags: list[Any], versions: int) -> float:
    """`versions` history items and change-log entries per flag, in batches of 25."""
    began = time.monotonic()
    client = emulator.client()
    try:
        batch: list[dict[str, Any]] = []
        config_version = 0
        for flag in flags:
            for version in range(1, versions + 1):
                config_version += 1
                old = dataclasses.replace(flag, version=version)
                when = flag.updated_at - HISTORY_AGE_S  # history is old, as in a long-lived table
                revision = FlagRevision(old, ChangeKind.UPDATE, "bench", when, config_version)
                change = Change(
                    flag.environment,
                    config_version,
                    ChangeKind.UPDATE,
                    "bench",
                    when,
                    flag_key=flag.key,
                    before_version=version - 1,
                    after_version=version,
                    flag=old,
                )
                batch.append({"PutRequest": {"Item": items.revision_to_item(revision)}})
                batch.append({"PutRequest": {"Item": items.change_to_item(change)}})
                if len(batch) >= 24:
                    Emulator._write(client, table, batch)
                    batch = []
        if batch:
            Emulator._write(client, table, batch)
    finally:
        client.close()
    return time.monotonic() - began


class _Meter:
    def __init__(self) -> None:
        self.scanned = 0
        self.requests = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call.dynamodb", self._after)

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests += 1
        if model.name in ("Query", "Scan"):
            self.scanned += int(parsed.get("ScannedCount", 0))


async def _reloads(endpoint: str, tables: tuple[str, str], env: str, quiet_at: float) -> list[dict[str, Any]]:
    """For each table, three loads as a running server makes them between two discovery passes
    (the scan for hand-written items is the first full reload's and then the TTL's, not a
    reload's), and three reads by a bare client.  The tables take turns within each round, so a
    ratio of the two compares reads made seconds apart: the emulator's pace drifts over minutes.
    The timed loads wait for `quiet_at` (monotonic): a reload of an environment written less than
    `GSI_SETTLE_S` ago also reads its change log, which is not what history costs."""
    meters = [_Meter() for _ in tables]
    # The emulator answers an index query by walking the whole table: seconds on 100,000 items,
    # past the store's per-request deadline (5 s) that DynamoDB never comes near.
    stores = [
        DynamoStore(table, endpoint_url=endpoint, discovery_interval=3600, write_timeout=120)
        for table in tables
    ]
    figures: list[dict[str, Any]] = [{"times": [], "scanned": [], "bare": []} for _ in tables]
    try:
        for store, meter in zip(stores, meters, strict=True):
            store.instrument(meter.attach)
            await store.start()
            for _ in range(2):  # the start's load, then the first full reload with its discovery pass
                await store.load_environment(env)
        await asyncio.sleep(max(0.0, quiet_at - time.monotonic()))
        for _ in range(ROUNDS):
            for table, store, meter, figure in zip(tables, stores, meters, figures, strict=True):
                meter.scanned = meter.requests = 0
                began = time.perf_counter()
                _, loaded = await store.load_environment(env)
                figure["times"].append(time.perf_counter() - began)
                figure["scanned"].append(meter.scanned)
                figure["flags"] = len(loaded)
                figure["bare"].append((await _bare(endpoint, table, env))["seconds"])
    finally:
        for store in stores:
            await store.close()
    return [
        {
            "flags": figure["flags"],
            "seconds": statistics.median(figure["times"]),
            "items_examined": max(figure["scanned"]),
            "bare_client_seconds": statistics.median(figure["bare"]),
            "rounds": {"seconds": figure["times"], "bare_client_seconds": figure["bare"]},
        }
        for figure in figures
    ]


async def _bare(endpoint: str, table: str, env: str) -> dict[str, Any]:
    """A bare client: one GSI1 Query page after another until every flag item is back."""
    async with client_for(ClientSettings(endpoint_url=endpoint)) as client:
        began = time.perf_counter()
        count, start = 0, None
        while True:
            args: dict[str, Any] = {
                "TableName": table,
                "IndexName": GSI1_NAME,
                "KeyConditionExpression": "GSI1PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": items.env_pk(env)}},
            }
            if start:
                args["ExclusiveStartKey"] = start
            page = await client.query(**args)
            count += len(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return {"items": count, "seconds": time.perf_counter() - began}


def _per_round(of: dict[str, Any], to: dict[str, Any], figure: str) -> list[float]:
    return [a / b for a, b in zip(of["rounds"][figure], to["rounds"][figure], strict=True)]


def _start(logs: Path, emulator: Emulator, table: str, flags: int) -> float:
    """Seconds from launching `vexil serve` on `table` to gRPC health SERVING."""
    server = Vexil(
        logs, *dynamo_args(emulator, table), "--cache-maxsize", str(flags), "--heartbeat-seconds", "300"
    )
    began = time.monotonic()
    try:
        server.start(timeout=300)
        return time.monotonic() - began
    finally:
        server.stop()


def run(
    emulator: Emulator,
    logs: Path,
    *,
    flags: int,
    history: int,
    big_flags: int,
    run_async: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    env = environment()
    chosen = stored(mix(flags))
    plain = emulator.create_table("bench-store-plain")
    emulator.put_flags(plain, env, chosen)
    aged = emulator.create_table("bench-store-aged")
    emulator.put_flags(aged, dataclasses.replace(env, config_version=flags * history), chosen)
    wrote = _history(aged, emulator, chosen, history)
    say(
        f"  {flags:,} flags, and {flags * history * 2:,} history and change-log items beside them"
        f" ({wrote:.1f} s)"
    )
    quiet_at = time.monotonic() + GSI_SETTLE_S  # the tables' environment items were written before
    without, with_history = run_async(_reloads(emulator.endpoint, (plain, aged), env.name, quiet_at))
    say(
        f"  reload: {without['items_examined']:,} items examined in"
        f" {without['seconds'] * 1000:.0f} ms without history,"
        f" {with_history['items_examined']:,} in {with_history['seconds'] * 1000:.0f} ms with"
    )
    big = emulator.create_table("bench-store-start")
    emulator.put_flags(big, env, stored(mix(big_flags)))
    rounds = []
    for _ in range(ROUNDS):
        bare = run_async(_bare(emulator.endpoint, big, env.name))
        serving = _start(logs, emulator, big, big_flags)
        rounds.append((serving, bare["seconds"]))
        say(
            f"  start of {big_flags:,} flags: SERVING after {serving:.2f} s;"
            f" a bare client read them in {bare['seconds']:.2f} s just before"
        )
    ratios = [serving / read for serving, read in rounds]
    return {
        "reload": {
            "flags": flags,
            "history_versions": history,
            "without_history": without,
            "with_history": with_history,
            "items_ratio": with_history["items_examined"] / max(1, without["items_examined"]),
            "time_ratio": statistics.median(_per_round(with_history, without, "seconds")),
            "time_ratios": spread(_per_round(with_history, without, "seconds")),
            "bare_client_time_ratio": statistics.median(
                _per_round(with_history, without, "bare_client_seconds")
            ),
        },
        "start": {
            "flags": big_flags,
            "start_to_serving_seconds": statistics.median(serving for serving, _ in rounds),
            "bare_client_seconds": statistics.median(read for _, read in rounds),
            "bare_client_items": bare["items"],
            "ratio": statistics.median(ratios),
            "ratios": spread(ratios),
        },
    }
