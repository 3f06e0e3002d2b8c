"""`make bench`: run every scenario, print one table, write the results as JSON.

    python -m bench.run [--quick] [--only evaluate,clients,...] [--python-load] [--out bench-results]

Scenarios (one module each): `evaluate` (Evaluate/EvaluateAll against the floor, one process and
`--workers 2`), `cloudwatch` (Evaluate with the CloudWatch publisher on vs off, and off vs off
for the noise), `clients` (OpenFeature's flagd provider, RPC and in-process), `fanout` (1,000
Watch subscribers), `propagation` (three replicas on the DynamoDB emulator, with pokes and
poll-only, and propagation receipts), `footprint` (10,000
flags, 1,000 streams), `storecost` (reload with and without history, start against a bare
client), `engine` (`bench/engine.py`), `budgets` (the most expensive rule the limits allow and
the requests that used to stall the server, each beside a health probe),
`console` (the web console's pages with 1,000 flags).
Every server is a separate process on 127.0.0.1, every loop is bounded in count and time, and
everything started is stopped at the end of its phase even when a scenario fails; a failed
scenario is reported and the others still run (the exit status is then 1).  The machine is
described in the results (cores, load average before and after each phase) because every
absolute figure depends on it; ratios to the floor less so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from bench import budgets, clients, cloudwatch, console, evaluate, footprint, servers, storecost, streams
from bench.flagset import LARGE_FLAGS, environment, evaluate_flags, large_flags, stored, write_flagd_file
from bench.load import Loader
from bench.report import render, targets
from tests.support.dynamo import DUMMY_AWS_ENV

T = TypeVar("T")
SCENARIOS = (
    "evaluate",
    "cloudwatch",
    "clients",
    "fanout",
    "propagation",
    "footprint",
    "storecost",
    "engine",
    "local",
    "budgets",
    "console",
)
ENGINE = Path(__file__).with_name("engine.py")
LOCAL = Path(__file__).resolve().parent.parent / "clients" / "bench_local.py"


@dataclass(frozen=True)
class Plan:
    durations: evaluate.Durations
    fanout_writes: int
    propagation_writes: int
    footprint_flags: int
    streams: int
    client_seconds: float
    budget_seconds: float
    reload_flags: int = 50_000
    """Flags of the server whose full reloads the probe watches (`budgets.reloads`)."""
    store_flags: int = 1000
    store_history: int = 50
    store_start_flags: int = 10_000


FULL = Plan(
    evaluate.FULL,
    fanout_writes=20,
    propagation_writes=30,
    footprint_flags=10_000,
    streams=1000,
    client_seconds=2.0,
    budget_seconds=5.0,
)
QUICK = Plan(
    evaluate.QUICK,
    fanout_writes=5,
    propagation_writes=6,
    footprint_flags=1_000,
    streams=1000,
    client_seconds=0.5,
    budget_seconds=1.5,
    reload_flags=5_000,
    store_flags=100,
    store_history=50,
    store_start_flags=1000,
)
"""Quick: one round, short runs, and 1,000 flags for the footprint (the emulator's Scan of 10,000
takes about 25 s on its own); the table says so."""


def say(line: str) -> None:
    print(line, flush=True)


def concurrently(*jobs: Callable[[], Any]) -> list[Any]:
    """Run start-up jobs side by side (each is mostly a process importing Python): seconds saved
    per phase.  Every job runs to its end; the first error is raised after all have finished."""
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
    return [future.result() for future in futures]


class Bench:
    """One benchmark run: the plan, the load generator, the log folder, and the servers that
    several scenarios share (the DynamoDB emulator, the floor, a memory-store vexil holding the
    100 flags), each started on first use and stopped at the very end."""

    def __init__(self, plan: Plan, loader: Loader, logs: Path, stack: contextlib.ExitStack) -> None:
        self.plan = plan
        self.loader = loader
        self.logs = logs
        self.stack = stack
        self._emulator: servers.Emulator | None = None
        self._floor: tuple[str, int] | None = None
        self._vexil: servers.Vexil | None = None
        # One event loop for every async scenario: grpc.aio binds itself to the first loop it
        # meets, and a second `asyncio.run` leaves its poller calling into a closed loop.
        self.loop = asyncio.new_event_loop()
        stack.callback(self.close_loop)

    def run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close_loop(self) -> None:
        """As `asyncio.run` ends: cancel what grpc.aio left pending, let it finish, then close."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def emulator(self) -> servers.Emulator:
        if self._emulator is None:
            emulator = servers.Emulator(self.logs)
            self.stack.callback(emulator.stop)
            self._emulator = emulator.start()
        return self._emulator

    def floor(self) -> tuple[str, int]:
        """The one-process floor: (address, pid)."""
        if self._floor is None:
            address, procs = servers.floor_processes(self.logs, 1)
            self.stack.callback(servers.stop_process, procs[0], 5.0)
            self._floor = (address, procs[0].pid)
        return self._floor

    def vexil(self) -> servers.Vexil:
        """vexil as `make run` runs it (memory store, one process) with the 100 flags from a flagd
        file; Watch heartbeats off the timing path (every 300 s)."""
        if self._vexil is None:
            flags_file = write_flagd_file(self.logs / "flags.json", evaluate_flags())
            server = servers.Vexil(
                self.logs, "--flags", str(flags_file), "--cache-maxsize", "1000", "--heartbeat-seconds", "300"
            )
            self.stack.callback(server.stop)
            self._vexil = server.start()
        return self._vexil

    def prepare(self, chosen: list[str]) -> None:
        """Start the shared servers the chosen scenarios need, side by side."""
        jobs: list[Callable[[], Any]] = []
        if {"evaluate", "fanout"} & set(chosen):
            jobs.append(self.floor)
        if {"evaluate", "clients", "fanout"} & set(chosen):
            jobs.append(self.vexil)
        if {"evaluate", "cloudwatch", "propagation", "footprint", "storecost"} & set(chosen):
            jobs.append(self.emulator)
        concurrently(*jobs)

    def dynamo_vexil(
        self, stack: contextlib.ExitStack, table: str, *args: str, workers: int = 1
    ) -> servers.Vexil:
        server = servers.Vexil(
            self.logs, *servers.dynamo_args(self.emulator(), table), *args, workers=workers
        )
        stack.callback(server.stop)
        return server.start()

    # -- scenarios ---------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            floor2 = servers.floor_processes(self.logs, 2)
            for proc in floor2[1]:
                stack.callback(servers.stop_process, proc, 5.0)

            def two_workers() -> servers.Vexil:
                table = self.emulator().create_table("bench-evaluate")
                self.emulator().put_flags(table, environment(), stored(evaluate_flags()))
                return self.dynamo_vexil(stack, table, "--cache-maxsize", "1000", workers=2)

            def large() -> servers.Vexil:
                """vexil holding 50,000 flags (the scale comparison), as `vexil()` otherwise."""
                flags_file = write_flagd_file(self.logs / "flags-large.json", large_flags())
                server = servers.Vexil(
                    self.logs,
                    "--flags",
                    str(flags_file),
                    "--cache-maxsize",
                    str(LARGE_FLAGS),
                    "--heartbeat-seconds",
                    "300",
                )
                stack.callback(server.stop)
                return server.start(timeout=180.0)

            one, floor1, two, big = concurrently(self.vexil, self.floor, two_workers, large)
            single = ((floor1[0], (floor1[1],)), (one.target, (one.pid,)))
            workers = ((floor2[0], tuple(p.pid for p in floor2[1])), (two.target, (two.pid, *two.children)))
            before = servers.scrape(one.http_port)
            result = evaluate.run(
                self.loader, single, workers, self.plan.durations, say, large=(big.target, (big.pid,))
            )
            result["server_side"] = server_side_check(before, servers.scrape(one.http_port))
            return result

    def cloudwatch(self) -> dict[str, Any]:
        """Three servers as `vexil()` (their own, so other scenarios' flags stay out): one with the
        CloudWatch publisher on, at its shortest interval, publishing to the emulator."""
        with contextlib.ExitStack() as stack:
            flags_file = write_flagd_file(self.logs / "flags-cloudwatch.json", evaluate_flags())
            args = ("--flags", str(flags_file), "--cache-maxsize", "1000", "--heartbeat-seconds", "300")
            endpoint = self.emulator().endpoint

            def start(name: str) -> servers.Vexil:
                env = cloudwatch.publisher_env(endpoint) if name == "on" else None
                server = servers.Vexil(self.logs, *args, env=env)
                stack.callback(server.stop)
                return server.start()

            started = concurrently(*(functools.partial(start, name) for name in cloudwatch.SERVERS))
            endpoints = {
                name: (s.target, (s.pid,)) for name, s in zip(cloudwatch.SERVERS, started, strict=True)
            }
            return cloudwatch.run(self.loader, endpoints, endpoint, self.plan.durations, say)

    def clients(self) -> dict[str, Any]:
        return clients.run(self.vexil().port, self.plan.client_seconds, say)

    def fanout(self) -> dict[str, Any]:
        (address, pid), server = concurrently(self.floor, self.vexil)
        targets = {"floor": (address, pid, False), "vexil": (server.target, server.pid, True)}
        return self.run_async(
            streams.fanout(targets, subscribers=self.plan.streams, writes=self.plan.fanout_writes, say=say)
        )

    def propagation(self) -> dict[str, Any]:
        """Three replicas with pokes (the default), then three on another table that only poll;
        then the receipts (WaitForPropagation after each write) on a third fleet with pokes, apart,
        so their registry reads do not slow the timed deliveries on the one-threaded emulator."""
        figures: dict[str, Any] = {"poll_interval_seconds": 1.0}
        for name, args in (("pokes", ()), ("poll_only", ("--replica-pokes", "false")), ("receipts", ())):
            with contextlib.ExitStack() as stack:
                table = self.emulator().create_table(f"bench-propagation-{name.replace('_', '-')}")
                start = functools.partial(self.dynamo_vexil, stack, table, *args)
                fleet = concurrently(start, start, start)
                # Every replica's heartbeat has read the others' records (whom to poke) by now.
                time.sleep(2.5)
                say(f"  {name.replace('_', '-')}:")
                figures[name] = self.run_async(
                    streams.propagation(
                        fleet[0].target,
                        [r.target for r in fleet[1:]],
                        writes=self.plan.propagation_writes,
                        say=say,
                        receipts=name == "receipts",
                    )
                )
        pokes = _p99(figures["pokes"])
        poll = _p99(figures["poll_only"])
        figures["p99_ratio_pokes_to_poll"] = pokes / poll if pokes and poll else None
        return figures

    def footprint(self) -> dict[str, Any]:
        return footprint.run(
            self.emulator(),
            self.logs,
            flags=self.plan.footprint_flags,
            streams=self.plan.streams,
            run_async=self.run_async,
            say=say,
        )

    def storecost(self) -> dict[str, Any]:
        return storecost.run(
            self.emulator(),
            self.logs,
            flags=self.plan.store_flags,
            history=self.plan.store_history,
            big_flags=self.plan.store_start_flags,
            run_async=self.run_async,
            say=say,
        )

    def engine(self) -> dict[str, Any]:
        path = self.logs / "engine.json"
        quick = ["--quick"] if self.plan is QUICK else []
        out = subprocess.run(
            [sys.executable, str(ENGINE), *quick, "--json", str(path)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not path.exists():
            raise RuntimeError(f"bench/engine.py exited with {out.returncode}: {out.stderr[-1500:]}")
        for line in out.stdout.splitlines():
            say(f"  {line}")
        return {"exit_code": out.returncode, "table": out.stdout.splitlines(), **json.loads(path.read_text())}

    def budgets(self) -> dict[str, Any]:
        return budgets.run(
            self.logs, servers.Vexil, self.run_async, self.plan.budget_seconds, say, self.plan.reload_flags
        )

    def console(self) -> dict[str, Any]:
        """The web console's pages with 1,000 flags (`bench/console.py`)."""
        rounds = 10 if self.plan is QUICK else 30
        return console.run(self.logs, self.run_async, flags=1000, rounds=rounds, say=say)

    def local(self) -> dict[str, Any]:
        """The Python client's local mode against the raw engine (`clients/bench_local.py`)."""
        quick = ["--quick"] if self.plan is QUICK else []
        out = subprocess.run(
            [sys.executable, str(LOCAL), *quick], capture_output=True, text=True, timeout=600
        )
        if out.returncode != 0:
            raise RuntimeError(f"clients/bench_local.py exited with {out.returncode}: {out.stderr[-1500:]}")
        table = out.stdout.splitlines()
        for line in table:
            say(f"  {line}")
        # "all flags   <raw> ns   <value> ns  <ratio>x   <details> ns  <ratio>x"
        overall = next(line for line in table if line.startswith("all flags"))
        value, details = (float(word[:-1]) for word in overall.split() if word.endswith("x"))
        return {"table": table, "value_ratio": value, "details_ratio": details}


def _p99(figures: dict[str, Any]) -> float | None:
    value = figures.get("ack_to_other_replica", {}).get("p99_ms")
    return float(value) if value is not None else None


def server_side_check(before: dict[Any, float], after: dict[Any, float]) -> dict[str, Any]:
    """vexil's own request counter over the Evaluate runs: h2load counts HTTP 200 as success, the
    server knows the gRPC status.  Any answer other than OK to Evaluate/EvaluateAll fails the run."""
    if not after:
        return {"available": False}
    totals: dict[str, float] = {}
    for key, value in after.items():
        name, labels = key
        label = dict(labels)
        if name == "vexil_requests_total" and "EvaluationService/Evaluate" in label.get("method", ""):
            code = label.get("code", "?")
            totals[code] = totals.get(code, 0.0) + value - before.get(key, 0.0)
    errors = {code: n for code, n in totals.items() if code != "OK" and n}
    if errors:
        raise RuntimeError(f"the server answered Evaluate/EvaluateAll with errors during the load: {errors}")
    return {"available": True, "by_code": totals}


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "loadavg_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round of everything (minutes)")
    parser.add_argument("--only", help=f"comma-separated scenarios (default all: {','.join(SCENARIOS)})")
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load generator, not h2load"
    )
    parser.add_argument(
        "--out", default="bench-results", type=Path, help="results folder (default bench-results)"
    )
    args = parser.parse_args(argv)
    asked = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = set(asked) - set(SCENARIOS)
    chosen = [s for s in SCENARIOS if s in asked]  # in a fixed order: fanout adds a flag to vexil
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    plan = QUICK if args.quick else FULL
    os.environ.update(DUMMY_AWS_ENV)  # the emulator only, never a real account (inherited by servers)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = args.out / f"logs-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    loader = Loader(prefer_python=args.python_load)
    results: dict[str, Any] = {
        "started": stamp,
        "mode": "quick" if args.quick else "full",
        "plan": asdict(plan),
        "machine": machine(),
        "load_generator": {"tool": loader.tool, "version": loader.version},
        "scenarios": {},
        "phases": {},
    }
    info = results["machine"]
    say(
        f"vexil benchmark ({results['mode']}): {info['cores']} cores ({info['machine']}), Python "
        f"{info['python']}, grpcio {info['grpcio']}; load generator: {loader.tool} ({loader.version}); "
        f"load average {info['loadavg_start'][0]:.2f}"
    )
    began = time.monotonic()
    failed = []
    with contextlib.ExitStack() as stack:
        bench = Bench(plan, loader, logs, stack)
        runners: dict[str, Callable[[], dict[str, Any]]] = {name: getattr(bench, name) for name in SCENARIOS}
        try:
            bench.prepare(chosen)
        except Exception as exc:  # each scenario retries what it needs and reports its own failure
            say(f"  starting the shared servers failed: {type(exc).__name__}: {exc}")
        for name in chosen:
            say(f"[{name}]")
            phase_began = time.monotonic()
            try:
                results["scenarios"][name] = runners[name]()
            except Exception as exc:
                failed.append(name)
                results["scenarios"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                say(f"  FAILED: {type(exc).__name__}: {exc}")
                (logs / f"{name}.traceback").write_text(traceback.format_exc())
            results["phases"][name] = {
                "seconds": round(time.monotonic() - phase_began, 1),
                "loadavg_after": os.getloadavg(),
            }
    results["seconds"] = round(time.monotonic() - began, 1)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["targets"] = targets(results)
    path = args.out / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say("")
    say(render(results))
    say(f"\nresults: {path}  (server logs: {logs})")
    if failed:
        say(f"failed scenarios: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
