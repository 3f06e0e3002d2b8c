"""The replica registry's record: one serving process, as it reports itself for one environment.

Every replica writes one record per environment it serves (the heartbeat of `vexil.fleet`) and
reads the others' to answer GetStatus and WaitForPropagation and to know whom to poke after a
write.  A record expires on its own `expires_at_unix` seconds after the replica last wrote it, so a
replica that died without saying goodbye leaves the registry by itself; readers drop a record past
its expiry even while the store still holds it (DynamoDB's TTL deletion is lazy).

Registry records are not flag data: writing one never bumps `config_version` and never enters
the change log, history or a backup's meaning of "the flags".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    replica_id: str
    """Unique per process start (a restarted replica is a new one; the old record expires)."""
    environment: str
    address: str
    """`host:port` other replicas reach this one's gRPC port at (the poke RPC)."""
    config_version: int
    """The environment's config_version this replica serves (has applied)."""
    last_seen_unix: float
    """When the replica wrote this record (epoch seconds)."""
    expires_at_unix: int
    """Epoch seconds after which the record means nothing (the table's TTL attribute)."""


def live(records: Iterable[ReplicaRecord], now: float, expired_within: float = 0.0) -> list[ReplicaRecord]:
    """The records not past their expiry (or past it by at most `expired_within` seconds), by
    replica id."""
    return sorted(
        (r for r in records if r.expires_at_unix > now - expired_within), key=lambda r: r.replica_id
    )
