"""The one DynamoDB emulator launcher (`tests.support.emulator`) that the suite, the benchmark and
`make run-dynamodb` use: both servers it knows answer on loopback and are gone after `stop`, and
one that cannot start is reported with its log, promptly, and leaves no process behind."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.support.emulator import Emulator, EmulatorError, answers


@pytest.mark.parametrize("threaded", [False, True], ids=["single-threaded", "moto_server"])
def test_starts_answers_and_stops(tmp_path: Path, threaded: bool) -> None:
    emulator = Emulator(tmp_path / "moto.log", threaded=threaded)
    with emulator:
        assert emulator.endpoint == f"http://127.0.0.1:{emulator.port}"
        assert answers(emulator.endpoint)
    assert emulator.proc is not None and emulator.proc.poll() is not None
    assert not answers(emulator.endpoint)


def test_a_port_in_use_is_reported_with_the_log(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # listens, never answers HTTP: the emulator cannot bind it
        emulator = Emulator(tmp_path / "moto.log", port=taken.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(EmulatorError, match="exited with") as raised:
            emulator.start(timeout=60)
        assert time.monotonic() - began < 60
    assert "in use" in str(raised.value).lower(), str(raised.value)
    assert emulator.proc is not None and emulator.proc.poll() is not None
