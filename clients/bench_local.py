"""Micro-benchmark: local-mode evaluation in the client vs the raw engine on the same flags.

    python clients/bench_local.py            # about 20 s
    python clients/bench_local.py --quick    # about 3 s

A real server runs in-process (loopback, memory store) with a mix of flags; a local-mode
`Client` follows it.  Each flag is then evaluated for the same contexts three ways:

- raw:     `Snapshot.evaluate(key, context, type)` on the server's own snapshot (the engine);
- value:   `client.bool_value(...)` etc., what application code calls;
- details: `client.bool_details(...)` etc. (builds an `EvaluationDetails`).

Timings are per call, the best of many short interleaved rounds: the least disturbed by whatever
else the machine is doing, and raw and client alike.  The target is both getters within 1.5x of
raw over the mix (the mean time per call over all the flags).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from vexil import config
from vexil.app import App
from vexil.client import Client
from vexil.engine import ValueType
from vexil.model import Flag
from vexil.snapshot import Snapshot

BOOL = {"on": True, "off": False}
FLAGS: list[tuple[str, ValueType, Any, dict[str, Any], Any]] = [
    # key, type, caller default, variants, targeting
    ("static-bool", ValueType.BOOL, False, BOOL, None),
    ("eq-country", ValueType.BOOL, False, BOOL, {"if": [{"==": [{"var": "country"}, "JP"]}, "on", "off"]}),
    (
        "in-plan",
        ValueType.BOOL,
        False,
        BOOL,
        {"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "on", None]},
    ),
    ("fractional", ValueType.BOOL, False, BOOL, {"fractional": [["on", 25], ["off", 75]]}),
    (
        "sem-ver",
        ValueType.BOOL,
        False,
        BOOL,
        {"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.0.0"]}, "on", "off"]},
    ),
    (
        "starts-with",
        ValueType.BOOL,
        False,
        BOOL,
        {"if": [{"starts_with": [{"var": "email"}, "admin"]}, "on", None]},
    ),
    (
        "nested-string",
        ValueType.STRING,
        "",
        {"jp": "こんにちは", "us": "Hi", "other": "Hello"},
        {
            "if": [
                {"==": [{"var": "country"}, "JP"]},
                "jp",
                {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "us", "other"]},
            ]
        },
    ),
    ("static-object", ValueType.OBJECT, {}, {"a": {"limit": 10, "tags": ["x", "y"]}}, None),
]
CONTEXTS = [
    {
        "targetingKey": f"user-{i}",
        "country": ["JP", "US", "FR", "CA"][i % 4],
        "plan": ["free", "pro", "team"][i % 3],
        "email": ["admin@example.com", "ann@example.com"][i % 2],
        "appVersion": ["1.9.3", "2.0.0", "2.4.1"][i % 3],
    }
    for i in range(16)
]


def best_ns(fn: Callable[[], None], calls: int) -> float:
    began = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - began) / calls


def bench(
    snapshot: Snapshot, client: Client, rounds: int, loops: int
) -> list[tuple[str, float, float, float]]:
    rows = []
    contexts = CONTEXTS
    calls = loops * len(contexts)
    for key, value_type, default, _, _ in FLAGS:
        getter = {
            ValueType.BOOL: (client.bool_value, client.bool_details),
            ValueType.STRING: (client.string_value, client.string_details),
            ValueType.OBJECT: (client.object_value, client.object_details),
        }[value_type]
        value_fn, details_fn = getter
        evaluate = snapshot.evaluate

        def raw() -> None:
            for _ in range(loops):
                for ctx in contexts:
                    evaluate(key, ctx, value_type)  # noqa: B023

        def value() -> None:
            for _ in range(loops):
                for ctx in contexts:
                    value_fn(key, default, ctx)  # noqa: B023

        def details() -> None:
            for _ in range(loops):
                for ctx in contexts:
                    details_fn(key, default, ctx)  # noqa: B023

        best = [math.inf, math.inf, math.inf]
        for _ in range(rounds):  # interleaved, so a disturbance hits all three alike
            for i, fn in enumerate((raw, value, details)):
                best[i] = min(best[i], best_ns(fn, calls))
        rows.append((key, *best))
    return rows


class Server:
    """A vexil server on a private event loop thread (the client under test blocks its caller)."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.settings = config.load(cli={"port": port, "http_port": 0}, environ={})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app: App = self.run(self._start())

    async def _start(self) -> App:
        app = App(self.settings)
        await app.start()
        for key, _, _, variants, targeting in FLAGS:
            flag = Flag(
                key=key,
                environment="",
                variants=variants,
                default_variant=next(iter(variants)),
                targeting=targeting,
            )
            await app.service.create_flag(flag, actor="bench")
        return app

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    def snapshot(self) -> Snapshot:
        return self.app.cache.get(self.settings.env)

    def stop(self) -> None:
        self.run(self.app.stop(grace=0.5, drain=0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description="local-mode evaluation vs the raw engine")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    args = parser.parse_args()
    rounds, loops = (5, 100) if args.quick else (40, 150)

    server = Server()
    try:
        with Client(target=server.target, mode="local") as client:
            if not client.wait_for_ready(10):
                raise SystemExit(f"client not ready: {client.status().message}")
            snapshot = server.snapshot()
            assert client.status().config_version == snapshot.config_version
            rows = bench(snapshot, client, rounds, loops)
    finally:
        server.stop()

    header = ("flag", "raw engine", "client value", "ratio", "client details", "ratio")
    print("{:<15} {:>11} {:>13} {:>6} {:>15} {:>6}".format(*header))
    line = "{:<15} {:>8.0f} ns {:>10.0f} ns {:>5.2f}x {:>12.0f} ns {:>5.2f}x"
    for key, raw, value, details in rows:
        print(line.format(key, raw, value, value / raw, details, details / raw))
    raw_mean, value_mean, details_mean = (sum(r[i] for r in rows) / len(rows) for i in (1, 2, 3))
    print(
        line.format(
            "all flags", raw_mean, value_mean, value_mean / raw_mean, details_mean, details_mean / raw_mean
        )
    )
    for what, ratio in (("value", value_mean / raw_mean), ("details", details_mean / raw_mean)):
        verdict = "within" if ratio <= 1.5 else "OUTSIDE"
        print(f"local-mode {what} getters: {ratio:.2f}x the raw engine ({verdict} the 1.5x target)")


if __name__ == "__main__":
    main()
