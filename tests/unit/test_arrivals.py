"""`vexil.transport.arrival.Arrivals` counts waiting calls per client, apart: an IPv4 address,
or the addresses of one IPv6 /64.

Loopback gives every test client the address 127.0.0.1, so the server test
(`tests/integration/test_request_arrival.py`) cannot show two clients counted apart; this one
gives `Arrivals` calls from several addresses, through a stand-in for grpc's servicer context.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from vexil.transport import arrival


class Refused(Exception):
    """What `context.abort` raises here (grpc.aio raises its AbortError)."""


class Context:
    """The two things `Arrivals` asks of a call: its peer, and its one request message."""

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self.message: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def peer(self) -> str:
        return self._peer

    async def read(self) -> Any:
        return await self.message

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details)
        raise Refused(details)


CLIENTS = {
    # what is counted as one client: (two peers that fill its count, a third peer of it,
    # peers of other clients)
    "an IPv4 address": (
        ["ipv4:10.0.0.1:4000", "ipv4:10.0.0.1:4001"],
        "ipv4:10.0.0.1:4002",
        ["ipv4:10.0.0.2:4000", "ipv6:[2001:db8::1]:4000"],
    ),
    "the addresses of one IPv6 /64": (
        ["ipv6:[2001:db8:0:1::1]:4000", "ipv6:[2001:db8:0:1::2]:4000"],
        "ipv6:[2001:db8:0:1:ffff::3]:4000",
        ["ipv6:[2001:db8:0:2::1]:4000", "ipv4:10.0.0.1:4000"],
    ),
}


@pytest.mark.parametrize(("held", "third", "others"), CLIENTS.values(), ids=CLIENTS.keys())
async def test_each_client_has_its_own_count_of_waiting_calls(
    monkeypatch: pytest.MonkeyPatch, held: list[str], third: str, others: list[str]
) -> None:
    monkeypatch.setattr(arrival, "MAX_WAITING_PER_ADDRESS", 2)
    arrivals = arrival.Arrivals(seconds=60)
    first = [Context(peer) for peer in held]
    waiting = [asyncio.create_task(arrivals.request(c, "/m")) for c in first]  # type: ignore[arg-type]
    await asyncio.sleep(0)

    over = Context(third)
    with pytest.raises(Refused):  # at once, not when the sweep ends it
        await asyncio.wait_for(arrivals.request(over, "/m"), 5)  # type: ignore[arg-type]
    assert over.aborted is not None and over.aborted[0] == grpc.StatusCode.RESOURCE_EXHAUSTED

    for context in map(Context, others):
        context.message.set_result(b"request")
        assert await arrivals.request(context, "/m") == b"request"  # type: ignore[arg-type]

    first[0].message.set_result(b"late but in time")
    assert await waiting[0] == b"late but in time"
    again = Context(third)
    again.message.set_result(b"request")
    assert await arrivals.request(again, "/m") == b"request"  # type: ignore[arg-type]
    waiting[1].cancel()
