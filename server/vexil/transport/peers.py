"""Who is at the other end of a gRPC call, as limits per client count it."""

from __future__ import annotations


def peer_host(peer: str) -> str:
    """`ipv4:10.0.0.1:5555` -> `10.0.0.1`, `ipv6:[::1]:5555` -> `::1`: a client, not a connection."""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":
        return address.rpartition(":")[0] or address
    if kind == "ipv6":
        return address.rpartition("]")[0].lstrip("[") or address
    return peer
