"""Local mode reads a context as the server does after the Struct round trip (README, JSON values:
every number is a double; an integral one within int64, -2^63 included, reads back as an int)."""

from __future__ import annotations

from typing import Any

import pytest

from vexil.client.context import wire_context

ROUND_TRIPS: list[tuple[Any, Any]] = [
    # (what the caller passes, what a rule reads)
    (5, 5),
    (5.0, 5),
    (-0.0, 0),
    (2.5, 2.5),
    (2**53 + 1, 2**53),  # a double holds 53 bits
    (-(2**63), -(2**63)),  # int64's lowest value is an int64
    (-(2.0**63), -(2**63)),
    (2**63 - 1, 2.0**63),  # rounds to 2^63 as a double: beyond int64
    (2.0**63, 2.0**63),
    (-(2.0**64), -(2.0**64)),
    (1e300, 1e300),
]


@pytest.mark.parametrize(("sent", "read"), ROUND_TRIPS)
def test_a_number_reads_as_the_server_reads_it(sent: Any, read: Any) -> None:
    got = wire_context({"n": sent, "nested": {"n": sent}})
    assert got == {"n": read, "nested": {"n": read}}
    assert type(got["n"]) is type(read) and type(got["nested"]["n"]) is type(read)
