"""The processes a benchmark runs against: the DynamoDB emulator, floor servers, vexil servers.

Everything listens on 127.0.0.1 only, every wait is bounded, and every process is registered on
an `ExitStack` the moment it exists, so it is stopped at the end of its phase even when the
benchmark fails half-way.  vexil servers are `tests.support.servers.ServerProcess` (`vexil serve`
in a subprocess, SERVING by gRPC health) so the benchmark runs the server exactly as the tests do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3
import grpc

from tests.support import emulator
from tests.support.dynamo import DUMMY_AWS_ENV, REGION
from tests.support.processes import terminate
from tests.support.servers import ServerProcess, free_port, wait_serving
from vexil.model import Environment, Flag
from vexil.store import dynamodb_items as items
from vexil.store import records
from vexil.store.dynamodb_table import table_spec

BATCH = 25
"""DynamoDB's BatchWriteItem limit (the emulator accepts more; real DynamoDB does not)."""


def children_of(pid: int) -> list[int]:
    """Child processes of `pid` (the workers of a `vexil serve --workers N` parent)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def listeners(port: int) -> int:
    """Sockets listening on `port` (IPv4 and IPv6 tables): one per worker that has bound it."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":
                    count += 1
    return count


def scrape(http_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A vexil process's Prometheus samples, keyed by (name, sorted labels); empty when the server
    has no /metrics (the benchmark then does without the server-side cross-checks)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def stop_process(proc: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `grace`; the process's own children are killed if left over."""
    orphans = children_of(proc.pid)
    terminate(proc, grace)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Emulator(emulator.Emulator):
    """moto's threaded `moto_server` on a free loopback port (`tests.support.emulator`), with what
    the benchmark needs of it: a client, a table, flags written in bulk."""

    def __init__(self, logs: Path) -> None:
        os.environ.update(DUMMY_AWS_ENV)  # never a real account: this process and its children
        super().__init__(logs / "moto.log", threaded=True)

    def client(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION, endpoint_url=self.endpoint)

    def create_table(self, name: str) -> str:
        client = self.client()
        try:
            client.create_table(**table_spec(name))
        finally:
            client.close()
        return name

    def put_flags(self, table: str, environment: Environment, flags: Iterable[Flag]) -> float:
        """Write the environment item and the flags straight into the table (vexil's item shape) in
        batches of 25: for 10,000 flags far faster than 10,000 audited admin writes, and what a
        migration or restore does.  The environment item says it changed now, as the last of
        those writes would have left it.  Returns the seconds it took."""
        began = time.monotonic()
        client = self.client()
        try:
            changed = {items.CHANGED_AT: items.s(records.format_timestamp(records.now()))}
            client.put_item(TableName=table, Item={**items.environment_to_item(environment), **changed})
            batch: list[dict[str, Any]] = []
            for flag in flags:
                batch.append({"PutRequest": {"Item": items.flag_to_item(flag)}})
                if len(batch) == BATCH:
                    self._write(client, table, batch)
                    batch = []
            if batch:
                self._write(client, table, batch)
        finally:
            client.close()
        return time.monotonic() - began

    @staticmethod
    def _write(client: Any, table: str, batch: list[dict[str, Any]]) -> None:
        pending = {table: batch}
        for _ in range(10):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(0.05)
        raise RuntimeError("the emulator left items unprocessed after 10 tries")


def floor_processes(
    logs: Path, count: int, port: int | None = None
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """`count` floor servers on one port (SO_REUSEPORT when more than one)."""
    port = port or free_port()
    procs = []
    try:
        for i in range(count):
            args = [sys.executable, "-m", "bench.floor", "--port", str(port)]
            if count > 1:
                args.append("--reuseport")
            with (logs / f"floor-{port}-{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
            wait_serving(f"127.0.0.1:{port}", 20.0, procs[-1])
        wait_listening(port, count)
    except BaseException:
        for proc in procs:
            stop_process(proc, 5.0)
        raise
    return f"127.0.0.1:{port}", procs


def wait_listening(port: int, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while listeners(port) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} listeners on port {port} not there after {timeout} s")
        time.sleep(0.05)


def wait_all_ready(target: str, probes: int = 24, timeout: float = 30.0) -> None:
    """After every worker has bound the port, `probes` fresh connections in a row must get an
    answer: a worker still loading its flags answers UNAVAILABLE and is waited for."""
    deadline = time.monotonic() + timeout
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    good = 0
    while good < probes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every worker behind {target} is SERVING after {timeout} s")
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                good = good + 1 if status.status == health_pb2.HealthCheckResponse.SERVING else 0
            except grpc.RpcError:
                good = 0
        if good == 0:
            time.sleep(0.1)


class Vexil(ServerProcess):
    """`vexil serve` as the benchmark runs it: local profile (open, loopback), quiet logs, and
    with `--workers N` every worker bound and SERVING before `start` returns."""

    def __init__(self, logs: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        """`env`: settings given as VEXIL_* environment variables (those without a flag)."""
        # A short shutdown grace: the benchmark's own streams are gone by the time it stops a server.
        super().__init__(
            logs, "--env", "local", "--log-level", "WARNING", "--shutdown-grace", "2", *args, env=env
        )
        self.workers = workers
        if workers > 1:
            self.args += ["--workers", str(workers)]

    def start(self, timeout: float = 60.0) -> Vexil:
        try:
            super().start(timeout)
            if self.workers > 1:
                wait_listening(self.port, self.workers, timeout)
                wait_all_ready(self.target, timeout=timeout)
        except BaseException:
            self.stop()  # a server that never got ready is still a process to stop
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def children(self) -> tuple[int, ...]:
        """The worker processes the parent started (`--workers N`)."""
        return tuple(children_of(self.pid))

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 20.0)


def dynamo_args(emulator: Emulator, table: str) -> tuple[str, ...]:
    return ("--store", "dynamodb", "--dynamodb-endpoint", emulator.endpoint, "--dynamodb-table", table)
