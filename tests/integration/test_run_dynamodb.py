"""`make run-dynamodb` as the README describes it: the emulator from the virtualenv, the table,
the demo flags served from DynamoDB; Ctrl-C stops the server and then the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.emulator import answers
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VEXIL = str(Path(sys.executable).with_name("vexil"))


def emulator_answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}")


def test_make_run_dynamodb_serves_the_demo_flags_and_stops_the_emulator(tmp_path: Path) -> None:
    port, http_port, dynamodb_port = free_port(), free_port(), free_port()
    log = (tmp_path / "make.log").open("w")
    make = subprocess.Popen(
        ["make", "run-dynamodb", f"PORT={port}", f"HTTP_PORT={http_port}", f"DYNAMODB_PORT={dynamodb_port}"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, signalled as a terminal's Ctrl-C would be
    )
    try:
        deadline = time.monotonic() + 90
        evaluated = None
        evaluate = ["evaluate", "banner-text", "--context", '{"country": "JP"}', "--json", "--timeout", "2"]
        while time.monotonic() < deadline and make.poll() is None:
            evaluated = subprocess.run(
                [VEXIL, *evaluate, "--target", f"127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if evaluated.returncode == 0 and '"jp"' in evaluated.stdout:
                break
            time.sleep(0.5)
        assert evaluated is not None and '"variant": "jp"' in evaluated.stdout, (
            tmp_path / "make.log"
        ).read_text()
        assert emulator_answers(dynamodb_port)
        described = subprocess.run(
            [
                VEXIL,
                "dynamodb",
                "describe",
                "--env",
                "local",
                "--dynamodb-endpoint",
                f"http://127.0.0.1:{dynamodb_port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
        )
        assert "feature-flags-local" in described.stdout, described.stdout + described.stderr
        os.killpg(make.pid, signal.SIGINT)
        make.wait(60)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)
        log.close()
    output = (tmp_path / "make.log").read_text()
    assert "moto_server" in output and "stopped the server and the emulator" in output, output
    assert not emulator_answers(dynamodb_port)
