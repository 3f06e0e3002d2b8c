"""Where a vexil server's time goes under load: py-spy samples of the server, floor beside it.

    python -m bench.profile [--seconds 8] [--cases static,evaluate_all,fanout]

Needs `py-spy` on PATH (`pip install py-spy`; not a dependency of vexil).  For each case the floor
and vexil are loaded the same way (h2load saturation for the unary calls; 1,000 Watch streams and
a write every 50 ms for fan-out) while py-spy samples the server without pausing it; each sample's
stack is then classified: idle (waiting in epoll), vexil's own code (by module), or the rest, which
is gRPC's Cython core, asyncio and protobuf, work the floor does too.  The raw collapsed stacks are
kept (`bench-results/profile-*/`), readable by any flame-graph tool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import servers
from bench.evaluate import requests
from bench.flagset import evaluate_flags, write_flagd_file
from bench.load import Target, call_once
from bench.streams import Fanout
from tests.support.dynamo import DUMMY_AWS_ENV

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
IDLE = ("select (selectors.py", "EpollSelector.select")
OWN_ROOTS = ("vexil/", "bench/floor.py")
RAW = ("--format", "raw", "-o")
H2LOAD_GRPC = ("-H", "content-type: application/grpc", "-H", "te: trailers")
DISPATCH = "Handle._run (asyncio/events.py"


def classify(stack: list[str]) -> str:
    """The innermost frame of our own code (vexil's, or the floor's) below the event loop's
    callback dispatch names the sample's module (frames above it are the process's entry point);
    a stack with none is idle (epoll), gRPC's poller thread, or gRPC/asyncio/protobuf."""
    dispatch = max((i for i, f in enumerate(stack) if f.startswith(DISPATCH)), default=len(stack))
    for frame in reversed(stack[dispatch:]):
        match = FRAME.match(frame)
        path = match.group("file") if match else ""
        if path.startswith(OWN_ROOTS):
            return path.removesuffix(".py")
    if any(stack[-1].startswith(i) for i in IDLE):
        return "(idle: epoll wait)"
    if any("Thread.run" in f for f in stack):
        return "(gRPC poller thread)"
    return "(gRPC core, asyncio, protobuf)"


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    modules: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text:
            continue
        stack = stack_text.split(";")
        n = int(count)
        total += n
        modules[classify(stack)] += n
        leaves[stack[-1]] += n
    return {
        "samples": total,
        "by_module_percent": {m: round(100 * n / total, 1) for m, n in modules.most_common()},
        "top_frames_percent": {f: round(100 * n / total, 1) for f, n in leaves.most_common(top)},
    }


def record(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            "250",
            "--nonblocking",
            *RAW,
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def unary(py_spy: str, target: Target, pid: int, seconds: float, out: Path) -> dict[str, Any]:
    frame = out.with_suffix(".bin")
    frame.write_bytes(target.frame)
    load = subprocess.Popen(
        ["h2load", "-c8", "-m4", f"-D{int(seconds) + 3}", "-d", str(frame), *H2LOAD_GRPC, target.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    spy = record(py_spy, pid, seconds, out)
    spy.wait(seconds + 30)
    output, _ = load.communicate(timeout=seconds + 30)
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
    return {"rps_while_sampled": float(rate.group(1)) if rate else None, **summarize(out)}


async def fanout(
    py_spy: str, address: str, pid: int, create: bool, seconds: float, out: Path
) -> dict[str, Any]:
    writes = int(seconds * 20)
    session = Fanout(out.stem, address, pid, subscribers=1000, writes=writes)
    try:
        await session.open(create)
        spy = record(py_spy, pid, seconds, out)
        for k in range(writes):
            await session.write(k)
            await asyncio.sleep(0.05)
        await asyncio.to_thread(spy.wait, 30)
    finally:
        await session.close()
    return summarize(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cases", default="static,evaluate_all,fanout")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy")
    if py_spy is None or shutil.which("h2load") is None:
        print(
            "needs py-spy (pip install py-spy) and h2load (apt-get install nghttp2-client)", file=sys.stderr
        )
        return 2
    os.environ.update(DUMMY_AWS_ENV)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path("bench-results") / f"profile-{stamp}"
    out_dir.mkdir(parents=True)
    logs = Path(tempfile.mkdtemp(prefix="vexil-profile-"))
    report: dict[str, Any] = {}
    loop = asyncio.new_event_loop()  # one loop for every grpc.aio use (see bench/run.py)
    with contextlib.ExitStack() as stack:
        stack.callback(loop.close)
        address, procs = servers.floor_processes(logs, 1)
        stack.callback(servers.stop_process, procs[0], 5.0)
        flags = write_flagd_file(logs / "flags.json", evaluate_flags())
        vexil = servers.Vexil(
            logs, "--flags", str(flags), "--cache-maxsize", "1000", "--heartbeat-seconds", "300"
        )
        stack.callback(vexil.stop)
        vexil.start()
        sides = {"floor": (address, procs[0].pid), "vexil": (vexil.target, vexil.pid)}
        frames = requests()
        for case in args.cases.split(","):
            for side, (addr, pid) in sides.items():
                name = f"{case}-{side}"
                if case == "fanout":
                    result = loop.run_until_complete(
                        fanout(py_spy, addr, pid, side == "vexil", args.seconds, out_dir / f"{name}.txt")
                    )
                else:
                    path, frame = frames["static" if side == "floor" and case != "evaluate_all" else case]
                    target = Target(addr, path, frame, len(call_once(addr, path, frame)))
                    result = unary(py_spy, target, pid, args.seconds, out_dir / f"{name}.txt")
                report[name] = result
                print(f"== {name}: {result.get('rps_while_sampled') or ''} ({result['samples']} samples)")
                for module, share in result["by_module_percent"].items():
                    print(f"   {share:5.1f}%  {module}")
    (out_dir / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"raw stacks and summary: {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
