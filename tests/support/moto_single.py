"""A single-threaded DynamoDB emulator: moto's server app on werkzeug without request threads.

`moto_server` serves each request on its own thread, and moto's DynamoDB backend does not isolate
concurrent transactions: under concurrent writes it acknowledges two transactions that both passed
the same condition, or loses one.  A test that races writers would then blame vexil for moto's
lost write.  Served one request at a time, every transaction is atomic, so a lost or duplicated
write seen by a test is vexil's.  Without threads werkzeug speaks HTTP/1.0 and closes each
connection after its answer, so one idle client connection cannot block the others.

Run as a script: `python moto_single.py HOST PORT` (loopback only).
"""

from __future__ import annotations

import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])
    if host not in LOOPBACK:
        raise SystemExit(f"loopback only, not {host!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
