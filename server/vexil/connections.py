"""How many connections a listener holds, and for how long one may do nothing.

A client that opens connections and sends nothing (or a request head a byte at a time) costs no
CPU but holds a file descriptor each.  Without bounds, one client could hold them all: both
listeners would stop accepting, and the store client could not open its own sockets.  So each
listener (gRPC and HTTP) holds at most `limit` connections and refuses more at once, and a
connection that does not finish its handshake in `HANDSHAKE_SECONDS`, or stays idle, is closed
(HTTP: the `http_client_timeout` setting, which bounds a request's head and body too; gRPC:
`GRPC_IDLE_SECONDS`).
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000
"""Connections one listener holds at most by default: far above what a fleet of clients keeps
open (gRPC multiplexes every call of a client on one connection, OFREP clients keep theirs
alive), and a few hundred MB at most if all of them are there."""
RESERVED_FILES = 256
"""Descriptors kept out of both listeners' share: the store's connection pool, log and flag
files, pokes to other replicas."""
LISTENERS = 2
HANDSHAKE_SECONDS = 10.0
"""A new connection's TLS handshake (and, on gRPC, its HTTP/2 preface) must end within this."""
CALLS_PER_CONNECTION = 2
"""Calls the whole gRPC server has open at once, per connection (`call_limit`): a client instance
holds about one stream (Watch, EventStream or SyncFlags) and a few calls in flight.  Past it a
new call is RESOURCE_EXHAUSTED.  Unbounded, calls that send their headers and never a message
are held open by gRPC: 20,000 of them on one connection took 135 MB (such calls are now also
ended in time, and bounded per address: `vexil.transport.arrival`).  There is no bound per
connection (HTTP/2's MAX_CONCURRENT_STREAMS): a client past it queues its calls silently, and a
process multiplexing many subscribers on one connection (gRPC shares one between equal
channels) would hang where it now gets an answer."""
GRPC_IDLE_SECONDS = 600.0
"""A gRPC connection with no call under way is sent GOAWAY after this; a client reconnects at
its next call.  A stream is a call, so a subscriber is never idle."""


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, as Go's runtime does
    (containers often start with a soft 1024), and return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
        return soft
    return hard


def connection_limit(setting: int = 0) -> int:
    """Connections one listener may hold: `setting` when it is set, else `DEFAULT_LIMIT`, or the
    listeners' share of the open-file limit when that is lower."""
    if setting > 0:
        return setting
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_LIMIT
    return max(1, min(DEFAULT_LIMIT, (soft - RESERVED_FILES) // LISTENERS))


def call_limit(setting: int = 0) -> int:
    """Calls the gRPC server has open at once: per connection the `max_connections` setting
    allows, or `DEFAULT_LIMIT` allows.  Not the open-file share: a call holds no descriptor, and
    a load balancer carries many clients' calls on a few connections."""
    return CALLS_PER_CONNECTION * (setting if setting > 0 else DEFAULT_LIMIT)


def grpc_options(limit: int) -> list[tuple[str, int]]:
    """The gRPC server's side of these bounds (grpc core enforces them; the whole server's
    number of open calls is `call_limit`, grpc.aio's `maximum_concurrent_rpcs`)."""
    return [
        ("grpc.max_allowed_incoming_connections", limit),
        ("grpc.server_handshake_timeout_ms", int(HANDSHAKE_SECONDS * 1000)),
        ("grpc.max_connection_idle_ms", int(GRPC_IDLE_SECONDS * 1000)),
    ]
