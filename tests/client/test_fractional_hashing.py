"""Local evaluation buckets `fractional` as the environment says, like the server.

The default is flagd's hashing (MurmurHash3 of the UTF-8 string flag key + targeting key); an
environment with `"fractionalHashing": "cbor"` in its metadata hashes the CBOR encoding of
`[flagKey, targetingKey]` (the Python flagd core).  The expected buckets are computed here from
`mmh3` and `cbor2` directly.
"""

from __future__ import annotations

import cbor2
import mmh3

from tests.support.client import FAST, Admin, Replica, struct, wait_until
from tests.support.flags import flag_pb
from vexil.client import Client
from vexil.v1 import admin_pb2

KEY = "rollout"
NAMES = ["a", "b", "c", "d"]
USERS = [f"user-{i}" for i in range(40)]


def expected(hashed: int) -> str:
    return NAMES[(hashed * len(NAMES)) >> 32]


def string_bucket(user: str) -> str:
    return expected(mmh3.hash((KEY + user).encode(), 0, False))


def cbor_bucket(user: str) -> str:
    return expected(mmh3.hash(cbor2.dumps([KEY, user], canonical=True), 0, False))


def answers(client: Client) -> list[str]:
    return [client.string_value(KEY, "?", {"targetingKey": user}) for user in USERS]


def test_local_and_remote_follow_the_environment_hashing(server: Replica, admin: Admin) -> None:
    assert [string_bucket(u) for u in USERS] != [cbor_bucket(u) for u in USERS]
    admin.create(flag_pb(KEY, {n: n for n in NAMES}, "a", {"fractional": [[n, 1] for n in NAMES]}))
    with (
        Client(target=server.target, mode="local", **FAST) as local,
        Client(target=server.target, mode="remote", **FAST) as remote,
    ):
        assert local.wait_for_ready(10) and remote.wait_for_ready(10)
        flagd = [string_bucket(u) for u in USERS]
        assert answers(remote) == flagd
        assert answers(local) == flagd

        request = admin_pb2.UpdateEnvironmentRequest(metadata=struct({"fractionalHashing": "cbor"}))
        admin.stub.UpdateEnvironment(request, timeout=10)
        python_core = [cbor_bucket(u) for u in USERS]
        assert answers(remote) == python_core
        assert wait_until(lambda: answers(local) == python_core, timeout=10)
