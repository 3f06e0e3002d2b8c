"""Who is at the other end of a call, as limits per client count it."""

from __future__ import annotations

import functools
import ipaddress

IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is counted by its /64: the least a site or a host is given (a cloud instance,
a home network), every address of which it can use.  Counting those addresses apart would give
one client 2^64 times every per-address limit (waiting calls, open streams, unknown API keys,
the rate limit of callers without credentials)."""


def peer_host(peer: str) -> str:
    """The client of a gRPC peer (`ipv4:10.0.0.1:5555` -> `10.0.0.1`, `ipv6:[2001:db8::7]:5555`
    -> `2001:db8::/64`) or of an HTTP request's address (`client_address`): a client, not a
    connection.  Anything else (`unix:` sockets) is its own client."""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":  # the common case, on every call: no parsing
        return address.rpartition(":")[0] or address
    if kind == "ipv6":
        return client_address(address.rpartition("]")[0].lstrip("[") or address)
    return client_address(peer)


@functools.lru_cache(maxsize=4096)
def client_address(address: str) -> str:
    """An IP address as limits per client count it: IPv4 as it is, IPv6 by its /64
    (`IPV6_CLIENT_PREFIX`), an IPv4 client of a dual-stack listener (`::ffff:10.0.0.1`) as its
    IPv4 address, loopback (`::1`) as it is.  What is not an IP address is returned unchanged."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if not isinstance(ip, ipaddress.IPv6Address) or ip.is_loopback:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip.packed, IPV6_CLIENT_PREFIX), strict=False))
