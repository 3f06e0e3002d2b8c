"""A Watch subscriber: print every flag change as it happens (asyncio).

    VEXIL_TARGET=127.0.0.1:50051 python clients/examples/watch_subscriber.py

`AsyncClient` in local mode follows the server's Watch stream, keeps the flags in memory and
reconnects by itself (resuming where it left off, so no change is missed).  This script only
listens: `on_change` for flag changes, `on_state` for the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from vexil.client import AsyncClient, ChangeEvent, StateEvent


async def watch(seconds: float, max_changes: int) -> int:
    done = asyncio.Event()
    seen = 0

    def changed(event: ChangeEvent) -> None:
        nonlocal seen
        seen += 1
        keys = ", ".join(sorted(event.flag_keys))
        print(
            f"change #{seen}: {event.kind} {keys} (config_version {event.config_version}) by {event.actor}",
            flush=True,
        )
        if max_changes and seen >= max_changes:
            done.set()

    def state(event: StateEvent) -> None:
        print(f"state: {event.previous} -> {event.state} {event.message}".rstrip(), flush=True)

    async with AsyncClient(mode="local") as client:
        client.on_change(changed)
        client.on_state(state)
        if await client.wait_for_ready(5):
            status = client.status()
            print(
                f"following {status.flag_count} flags at config_version {status.config_version}", flush=True
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), seconds or None)
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    parser.add_argument("--max-changes", type=int, default=0, help="stop after this many changes (0: never)")
    args = parser.parse_args(argv)
    asyncio.run(watch(args.seconds, args.max_changes))


if __name__ == "__main__":
    main()
