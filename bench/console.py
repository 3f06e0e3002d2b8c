"""Console: how fast the web console's pages answer with 1,000 flags (target < 200 ms).

A `vexil serve` as `make run` runs it (memory store, local profile) holding 1,000 flags of the
engine benchmark's mix from a flagd file; an HTTP client on loopback opens a console session and
fetches each page's data in turn, `rounds` times: the page itself, the session, the whole flag
list, a filtered list, one flag, its history, the change log, the environment and the health
table.  Times are measured by the client (loopback round trip, which includes the server's time
and so bounds it); the server's own mean per route, from its request metrics, is reported beside
them.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from bench.flagset import mix, write_flagd_file
from bench.servers import Vexil, scrape

PAGES = {
    "page": "/ui/",
    "session": "/ui/api/session",
    "flag list (all)": "/ui/api/flags?env=local",
    "flag list (filtered)": "/ui/api/flags?env=local&q=flag-00&killed=no",
    "one flag": "/ui/api/flags/{key}?env=local",
    "history": "/ui/api/flags/{key}/history?env=local",
    "changes": "/ui/api/changes?env=local",
    "environment": "/ui/api/environment?env=local",
    "health": "/ui/api/health",
}
DURATION = "vexil_request_duration_seconds"


def _route(path: str) -> str:
    """The request metrics' method label of a console path (route templates, not raw paths)."""
    bare = path.split("?")[0]
    for name, template in (("/history", "/ui/api/flags/{key}/history"),):
        if bare.endswith(name):
            return f"GET {template}"
    if bare.startswith("/ui/api/flags/"):
        return "GET /ui/api/flags/{key}"
    return f"GET {bare}"


def _server_means(before: dict[Any, float], after: dict[Any, float]) -> dict[str, float]:
    """Mean server time per route (ms) between two scrapes of the request metrics."""
    means = {}
    for (name, labels), total in after.items():
        if name != f"{DURATION}_sum":
            continue
        method = dict(labels).get("method", "")
        count_key = (f"{DURATION}_count", labels)
        count = after.get(count_key, 0.0) - before.get(count_key, 0.0)
        if count > 0 and method.startswith("GET /ui"):
            means[method] = 1000 * (total - before.get((name, labels), 0.0)) / count
    return means


async def _measure(http_port: int, key: str, rounds: int) -> dict[str, dict[str, float]]:
    base = f"http://127.0.0.1:{http_port}"
    timings: dict[str, list[float]] = {name: [] for name in PAGES}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{base}/ui/api/session") as opened:
            opened.raise_for_status()
            # A Secure cookie over plain loopback HTTP: sent by hand, as a browser would send it.
            http.headers["Cookie"] = f"vexil_console={opened.cookies['vexil_console'].value}"
        for _ in range(rounds):
            for name, path in PAGES.items():
                began = time.perf_counter()
                async with http.get(base + path.format(key=key)) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{path}: HTTP {answer.status}")
                timings[name].append(1000 * (time.perf_counter() - began))
    return {
        name: {
            "p50_ms": statistics.median(values),
            "p99_ms": sorted(values)[math.ceil(0.99 * len(values)) - 1],  # nearest rank
            "max_ms": max(values),
        }
        for name, values in timings.items()
    }


def run(
    logs: Path,
    run_async: Callable[[Coroutine[Any, Any, dict[str, dict[str, float]]]], dict[str, dict[str, float]]],
    *,
    flags: int,
    rounds: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    held = mix(flags)
    flags_file = write_flagd_file(logs / "console-flags.json", held)
    server = Vexil(logs, "--flags", str(flags_file), "--cache-maxsize", str(2 * flags))
    try:
        server.start()
        before = scrape(server.http_port)
        pages = run_async(_measure(server.http_port, held[len(held) // 2].key, rounds))
        server_ms = _server_means(before, scrape(server.http_port))
    finally:
        server.stop()
    for name, fig in pages.items():
        route = _route(PAGES[name])
        fig["server_mean_ms"] = server_ms.get(route)
        mean = fig["server_mean_ms"]
        say(
            f"  {name:<22} p50 {fig['p50_ms']:6.1f} ms  p99 {fig['p99_ms']:6.1f} ms"
            f"  max {fig['max_ms']:6.1f} ms  server mean {'-' if mean is None else f'{mean:.1f}'} ms"
        )
    slowest = max(pages, key=lambda name: pages[name]["p99_ms"])
    return {
        "flags": flags,
        "rounds": rounds,
        "pages": pages,
        "slowest": slowest,
        "p99_ms": pages[slowest]["p99_ms"],
    }


__all__ = ["run"]


if __name__ == "__main__":  # python -m bench.console: this scenario alone
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()
        try:
            result = run(Path(tmp), loop.run_until_complete, flags=1000, rounds=20, say=print)
        finally:
            loop.close()
    print(f"slowest: {result['slowest']} p99 {result['p99_ms']:.1f} ms")
