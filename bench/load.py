"""Load generation for unary gRPC calls: h2load with pre-encoded frames, or a Python fallback.

h2load (Debian's `nghttp2-client`) is a C HTTP/2 client: it sends a pre-encoded gRPC frame
(`-d frame.bin`) as fast as the server answers, using a fraction of a core, so the Python server
under test keeps the CPU.  A Python load generator caps at about two thirds of the floor and
steals the server's CPU (measured on a 2-core machine: 65-70 % of the floor), so it is only the
fallback when h2load is missing, and the results say which tool produced them.

A paced load (a fixed request rate) is evenly spaced: with h2load, one process per connection
replaying a staggered timing script (`--rps` would send bursts every ~10 ms); the Python
generator schedules each call itself.

Both tools write the same per-request log (start in microseconds since the epoch, HTTP status,
microseconds until the end of the response), and every figure is computed from it the same way:
requests that *start* during the warm-up are dropped, throughput is the responses completed in
the measured window divided by its length, latency percentiles are over the measured requests.

h2load counts an HTTP 200 as success even when the gRPC status in the trailers is an error.  An
error answer has no response message, though (trailers only), so each run checks that the bytes
of response DATA received equal the succeeded requests times the size of the one real response
fetched before the run (`call_once`): a single failed call breaks the equality.

    python -m bench.load --target HOST:PORT --path /pkg.Service/Method --frame FILE ...

is the fallback generator itself, run as its own process like h2load.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

H2LOAD_HEADERS = ("-H", "content-type: application/grpc", "-H", "te: trailers")
SATURATION = {"clients": 8, "streams": 4}
"""32 calls in flight keep one Python server busy without queueing much (-c4 -m8 measured the
same within noise).  Eight connections rather than four because SO_REUSEPORT spreads
connections, not calls, over `--workers`: all landing on one worker is then 1 in 128, not 1 in 8."""
SERIAL = {"clients": 1, "streams": 1}


class LoadError(RuntimeError):
    """The load run failed or its answers were not all successful gRPC responses."""


def grpc_frame(message: Message) -> bytes:
    """A gRPC length-prefixed message (uncompressed): what goes on the wire as the request body."""
    body = message.SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def call_once(target: str, path: str, frame: bytes, timeout: float = 10.0) -> bytes:
    """One real call with the frame's message; returns the response message (raises on error)."""
    with grpc.insecure_channel(target) as channel:
        method = channel.unary_unary(path)  # no serializers: bytes in, bytes out
        return method(frame[5:], timeout=timeout)


@dataclass(frozen=True)
class Target:
    """What to load: one method of one server, one request, and the size of a good answer."""

    address: str
    path: str
    frame: bytes
    response_bytes: int
    """Length of the response message of a successful call (from `call_once`)."""
    pids: tuple[int, ...] = ()
    """The server's processes, whose CPU time per request is measured."""

    @property
    def url(self) -> str:
        return f"http://{self.address}{self.path}"


@dataclass
class Run:
    """One measurement: throughput and latency of the measured window."""

    tool: str
    mode: str
    clients: int
    streams: int
    offered_rps: float | None
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    failed: int
    cpu_us_per_request: float | None = None
    """Server CPU (user + system, every thread, every worker) per request over the whole run: the
    cost of a call, less sensitive than throughput to other work on the machine."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU of processes so far (all their threads), from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Slice:
    """One short load run: its measured requests (after the warm-up) and the server CPU it cost."""

    rows: list[tuple[int, int, int]]
    """(start us since the epoch, HTTP status or -1, us until the end of the response)."""
    seconds: float
    """Length of the measured window."""
    cpu_seconds: float
    every: int
    """Requests of the whole run, warm-up included (what the CPU time was spent on)."""


def read_slice(log: Path, warmup: float, cpu: float, tool: str) -> Slice:
    """The measured window of a per-request log (both tools write the same format)."""
    rows = []
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    if not rows:
        raise LoadError(f"{tool}: no request completed")
    window_start = min(start for start, _, _ in rows) + int(warmup * 1e6)
    measured = [row for row in rows if row[0] >= window_start]
    if not measured:
        raise LoadError(f"{tool}: no request after the {warmup} s warm-up")
    window_end = max(start + took for start, _, took in measured)
    return Slice(measured, (window_end - window_start) / 1e6, cpu, len(rows))


def combine(
    slices: list[Slice], *, tool: str, mode: str, clients: int, streams: int, offered: float | None
) -> Run:
    """One figure from several slices: requests and window lengths add up, latencies are pooled."""
    ok = sorted(took / 1000 for s in slices for _, status, took in s.rows if status == 200)
    requests = sum(len(s.rows) for s in slices)
    if not ok:
        raise LoadError(f"{tool}: no successful request")
    seconds = sum(s.seconds for s in slices)
    every = sum(s.every for s in slices)
    cpu = sum(s.cpu_seconds for s in slices)
    return Run(
        tool=tool,
        mode=mode,
        clients=clients,
        streams=streams,
        offered_rps=offered,
        requests=requests,
        seconds=round(seconds, 3),
        rps=len(ok) / seconds if seconds > 0 else math.nan,
        p50_ms=statistics.median(ok),
        p90_ms=percentile(ok, 90),
        p99_ms=percentile(ok, 99),
        max_ms=ok[-1],
        failed=requests - len(ok),
        cpu_us_per_request=cpu / every * 1e6 if cpu and every else None,
    )


class Loader:
    """Runs load against a `Target` with h2load when installed, else with the Python fallback."""

    def __init__(self, prefer_python: bool = False) -> None:
        found = None if prefer_python else shutil.which("h2load")
        self.h2load = found
        why = "asked for with --python-load" if prefer_python else "fallback: h2load not installed"
        self.tool = "h2load" if found else f"python ({why})"
        self.version = self._version()

    def _version(self) -> str:
        if self.h2load is None:
            return f"bench.load (grpc.aio {grpc.__version__})"
        out = subprocess.run([self.h2load, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "h2load"

    def run(
        self,
        target: Target,
        mode: str,
        seconds: float,
        warmup: float,
        *,
        clients: int,
        streams: int,
        rps: float | None = None,
    ) -> Run:
        """One run (a single slice)."""
        one = self.slice(target, seconds, warmup, clients=clients, streams=streams, rps=rps)
        return combine([one], tool=self.name, mode=mode, clients=clients, streams=streams, offered=rps)

    @property
    def name(self) -> str:
        return "h2load" if self.h2load else "python"

    def offered(self, rps: float | None, clients: int) -> float | None:
        """The rate offered (both tools pace exactly what they are asked for)."""
        return rps

    def slice(
        self,
        target: Target,
        seconds: float,
        warmup: float,
        *,
        clients: int,
        streams: int,
        rps: float | None = None,
    ) -> Slice:
        """Load `target` for `warmup + seconds`; the slice keeps what started after the warm-up."""
        rps = self.offered(rps, clients)
        with tempfile.TemporaryDirectory(prefix="vexil-load-") as tmp:
            frame = Path(tmp) / "frame.bin"
            frame.write_bytes(target.frame)
            log = Path(tmp) / "requests.log"
            cpu_before = cpu_seconds(target.pids)
            if self.h2load:
                self._h2load(target, frame, log, seconds + warmup, clients, streams, rps)
            else:
                self._python(target, frame, log, seconds + warmup, clients, streams, rps)
            cpu = cpu_seconds(target.pids) - cpu_before
            return read_slice(log, warmup, cpu, self.name)

    def _h2load(
        self,
        target: Target,
        frame: Path,
        log: Path,
        duration: float,
        clients: int,
        streams: int,
        rps: float | None,
    ) -> None:
        """As fast as the server answers, or paced (see `_h2load_paced`)."""
        if rps is not None:
            self._h2load_paced(target, frame, log, duration, clients, streams, rps)
            return
        assert self.h2load is not None
        args = [
            self.h2load,
            f"-c{clients}",
            f"-m{streams}",
            f"-D{round(duration * 1000)}ms",
            "-d",
            str(frame),
        ]
        args += [*H2LOAD_HEADERS, f"--log-file={log}", target.url]
        out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 30)
        self._check(out, target)

    def _h2load_paced(
        self,
        target: Target,
        frame: Path,
        log: Path,
        duration: float,
        clients: int,
        streams: int,
        rps: float,
    ) -> None:
        """An evenly paced load: one single-connection h2load per connection, each replaying a timing
        script at `rps / clients` whose offsets are shifted by 1/`clients` of an interval from the
        next one's, so the requests of all connections interleave evenly.  (`h2load --rps` sends
        each connection's requests in bursts every ~10 ms, which measures the bursts more than the
        server: at half load the floor's own median latency was ~3 ms that way.)"""
        assert self.h2load is not None
        per_connection = rps / clients
        count = max(1, int(per_connection * duration))
        processes = []
        parts = []
        for k in range(clients):
            script = log.with_name(f"script-{k}.txt")
            offsets = ((j + k / clients) / per_connection * 1000 for j in range(count))
            script.write_text("".join(f"{ms:.3f}\t{target.url}\n" for ms in offsets))
            parts.append(log.with_name(f"requests-{k}.log"))
            args = [self.h2load, "-c1", f"-m{streams}", "-d", str(frame), *H2LOAD_HEADERS]
            args += [f"--timing-script-file={script}", f"--log-file={parts[-1]}"]
            processes.append(
                subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        try:
            for process in processes:
                stdout, stderr = process.communicate(timeout=duration + 30)
                self._check(subprocess.CompletedProcess(args, process.returncode, stdout, stderr), target)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
        log.write_text("".join(part.read_text() for part in parts if part.exists()))

    @staticmethod
    def _check(out: subprocess.CompletedProcess[str], target: Target) -> None:
        """h2load ran, and every answer it counted as a success carried a response message."""
        if out.returncode != 0:
            raise LoadError(f"h2load exited with {out.returncode}: {out.stderr.strip()[-500:]}")
        succeeded = re.search(r"(\d+) succeeded", out.stdout)
        data = re.search(r"\((\d+)\) data", out.stdout)
        if succeeded is None or data is None:
            raise LoadError(f"h2load output not understood: {out.stdout[-500:]}")
        expected = int(succeeded.group(1)) * (5 + target.response_bytes)
        if int(data.group(1)) != expected:
            raise LoadError(
                f"h2load: {data.group(1)} bytes of responses for {succeeded.group(1)} calls, expected "
                f"{expected}: some calls ended with a gRPC error (trailers only) or a different answer"
            )

    def _python(
        self,
        target: Target,
        frame: Path,
        log: Path,
        duration: float,
        clients: int,
        streams: int,
        rps: float | None,
    ) -> None:
        args = [sys.executable, "-m", "bench.load", "--target", target.address, "--path", target.path]
        args += ["--frame", str(frame), "--log", str(log), "--seconds", f"{duration:g}"]
        args += ["--clients", str(clients), "--streams", str(streams)]
        args += ["--response-bytes", str(target.response_bytes)]
        if rps is not None:
            args += ["--rps", f"{rps:g}"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
        if out.returncode != 0:
            raise LoadError(f"python load generator exited with {out.returncode}: {out.stderr[-800:]}")


# -- the Python fallback generator (runs in its own process) -------------------------------------


async def generate(
    address: str,
    path: str,
    body: bytes,
    *,
    seconds: float,
    clients: int,
    streams: int,
    rps: float | None,
    response_bytes: int,
) -> list[tuple[int, int, int]]:
    """Closed loop (`streams` calls in flight per connection) or, with `rps`, an evenly paced open
    loop bounded by the same number in flight.  Returns h2load-style log rows."""
    rows: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + seconds
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(clients)
    ]

    async def one(method: Any) -> None:
        wall = time.time_ns() // 1000
        began = time.perf_counter_ns()
        status = 200
        try:
            answer = await method(body, timeout=10)
            if len(answer) != response_bytes:
                status = -1
        except grpc.aio.AioRpcError:
            status = -1
        rows.append((wall, status, (time.perf_counter_ns() - began) // 1000))

    async def closed(method: Any) -> None:
        while time.monotonic() < deadline:
            await one(method)

    async def paced(method: Any, interval: float) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        while due < deadline:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
            if len(in_flight) >= streams:
                continue  # the server is behind: shed this call rather than queue it here
            task = asyncio.create_task(one(method))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight)

    try:
        methods = [channel.unary_unary(path) for channel in channels]
        if rps:
            await asyncio.gather(*(paced(m, clients / rps) for m in methods))
        else:
            await asyncio.gather(*(closed(m) for m in methods for _ in range(streams)))
    finally:
        for channel in channels:
            await channel.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Python fallback load generator (h2load-style log)")
    parser.add_argument("--target", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--frame", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--rps", type=float)
    parser.add_argument("--response-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    body = args.frame.read_bytes()[5:]
    rows = asyncio.run(
        generate(
            args.target,
            args.path,
            body,
            seconds=args.seconds,
            clients=args.clients,
            streams=args.streams,
            rps=args.rps,
            response_bytes=args.response_bytes,
        )
    )
    args.log.write_text("".join(f"{start}\t{status}\t{took}\n" for start, status, took in rows))


if __name__ == "__main__":
    main()
