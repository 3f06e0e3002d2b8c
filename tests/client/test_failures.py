"""Failures never escape an evaluation: deadline, server down, refused credentials, unknown
environment and TLS problems all yield the caller's default with reason ERROR and a code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.client import (
    FAST,
    FakeEvaluation,
    FakeServer,
    LoopThread,
    Replica,
    self_signed,
    wait_until,
)
from vexil.client import Client, ConnectionState, ErrorCode, Reason, StateEvent


@pytest.fixture
def fake(loop_thread: LoopThread, request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    servicer = getattr(request, "param", None) or FakeEvaluation()
    server = FakeServer(loop_thread, servicer)
    yield server
    server.stop()


@pytest.mark.parametrize("fake", [FakeEvaluation(delay=2.0)], indirect=True)
def test_deadline_exceeded_returns_the_default_on_time(fake: FakeServer) -> None:
    with Client(target=fake.target, start=False) as client:  # the default deadline: 200 ms
        assert client.config.deadline == 0.2
        began = time.monotonic()
        details = client.bool_details("any", False)
        elapsed = time.monotonic() - began
    assert (details.value, details.reason, details.error_code) == (False, Reason.ERROR, ErrorCode.GENERAL)
    assert details.error_message.startswith("DEADLINE_EXCEEDED")
    assert 0.15 < elapsed < 1.0, elapsed
    with Client(target=fake.target, deadline=0.05, start=False) as client:
        began = time.monotonic()
        assert client.string_value("any", "late") == "late"
        assert client.all_values() == {}
        assert time.monotonic() - began < 1.0


def test_server_down_returns_the_default_quickly(server: Replica) -> None:
    target = server.target
    server.stop()
    with Client(target=target, **FAST) as client:
        began = time.monotonic()
        details = client.int_details("anything", 42, {"targetingKey": "u"})
        assert time.monotonic() - began < 2.0
        assert (details.value, details.reason, details.error_code) == (42, Reason.ERROR, ErrorCode.GENERAL)
        assert details.error_message.startswith("UNAVAILABLE")
        assert wait_until(lambda: client.state is ConnectionState.ERROR, 5)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED])
@pytest.mark.parametrize("mode", ["remote", "local"])
def test_refused_credentials(loop_thread: LoopThread, code: grpc.StatusCode, mode: str) -> None:
    fake = FakeServer(loop_thread, FakeEvaluation(code=code))
    events: list[StateEvent] = []
    try:
        client = Client(target=fake.target, api_key="wrong", mode=mode, start=False, **FAST)
        client.on_state(events.append)
        client.start()
        with client:
            details = client.bool_details("checkout", True)
            assert (details.value, details.reason) == (True, Reason.ERROR)
            expected = ErrorCode.PROVIDER_FATAL if mode == "remote" else ErrorCode.PROVIDER_NOT_READY
            assert details.error_code == expected
            assert wait_until(lambda: client.state is ConnectionState.ERROR, 5)
            assert not client.wait_for_ready(0.1)
        error = next(e for e in events if e.state is ConnectionState.ERROR)
        assert error.fatal and code.name in error.message
        assert all(m.get("authorization") == "Bearer wrong" for m in fake.servicer.metadata)
    finally:
        fake.stop()


def test_api_key_is_sent_on_every_call(fake: FakeServer) -> None:
    with Client(target=fake.target, api_key="s3cr3t", **FAST) as client:
        assert client.wait_for_ready(5)  # the fake's Watch sends an (empty) snapshot
        assert client.bool_details("flag", False).flag_version == 7
    assert len(fake.servicer.metadata) >= 2
    assert {m["authorization"] for m in fake.servicer.metadata} == {"Bearer s3cr3t"}
    assert all("vexil-python-client" in m["user-agent"] for m in fake.servicer.metadata)


def test_unknown_environment_is_an_error_not_an_exception(server: Replica) -> None:
    with Client(target=server.target, environment="nowhere", **FAST) as client:
        details = client.bool_details("x", True)
        assert (details.value, details.error_code) == (True, ErrorCode.GENERAL)
        assert details.error_message.startswith("NOT_FOUND")
        assert wait_until(lambda: client.state is ConnectionState.ERROR, 5)


def test_tls_with_root_certificates(loop_thread: LoopThread, tmp_path: Path) -> None:
    key, cert = self_signed("localhost")
    roots = tmp_path / "ca.pem"
    roots.write_bytes(cert)
    fake = FakeServer(loop_thread, FakeEvaluation(), tls=(key, cert))
    try:
        with Client(target=fake.target, root_certificates=str(roots), **FAST) as client:
            assert client.config.uses_tls
            assert client.wait_for_ready(5)
            assert client.bool_value("flag", False) is True
        # Plaintext against a TLS port, and TLS without trusting the certificate: defaults.
        with Client(target=fake.target, start=False, deadline=2.0) as plaintext:
            assert plaintext.bool_details("flag", False).error_code == ErrorCode.GENERAL
        with Client(target=fake.target, tls=True, start=False, deadline=2.0) as untrusted:
            failed = untrusted.bool_details("flag", False)
            assert (failed.value, failed.error_code) == (False, ErrorCode.GENERAL)
    finally:
        fake.stop()
