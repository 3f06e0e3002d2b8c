"""`make run-dynamodb`: the demo flags served from DynamoDB, on this machine, in one command.

Starts the DynamoDB emulator (`moto_server`, installed in the virtualenv with the dev tools, by
the launcher the tests and the benchmark use: `tests.support.emulator`) on loopback port 8000,
the port the operations guide gives "DynamoDB Local"; creates the table (`vexil dynamodb
create-table`); starts `vexil serve --store dynamodb` on it; imports the demo flags through the
admin API (`vexil flags import`, so the server needs no flags-file mode); and runs until the
server stops (Ctrl-C), then stops the emulator.  The emulator keeps everything in memory: each
run starts empty.  Dummy AWS credentials are set for the emulator (it accepts any), so no real
AWS account is ever used.  Run it from the repository root (`python -m scripts.run_dynamodb`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.emulator import Emulator, EmulatorError, answers
from tests.support.processes import terminate

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def say(text: str) -> None:
    print(f"run-dynamodb: {text}", flush=True)


def wait_for(what: str, ready: object, process: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    """Poll `ready()` until true; fail if `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if process.poll() is not None:
            raise SystemExit(f"run-dynamodb: {what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"run-dynamodb: {what} not ready after {timeout:.0f} s")
        time.sleep(0.2)


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM (a supervisor, `kill`) stops everything the way Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    p.add_argument("--http-port", type=int, default=3001, help="HTTP port (default 3001)")
    p.add_argument("--dynamodb-port", type=int, default=8000, help="emulator port (default 8000)")
    p.add_argument("--env", default="local", help="environment (table feature-flags-<env>)")
    p.add_argument("--flags", default=str(ROOT / "server" / "demo-flags.yaml"), help="flags to import")
    args = p.parse_args()

    env = {**os.environ, **EMULATOR_ENV}
    handle, log_name = tempfile.mkstemp(prefix="moto-server-", suffix=".log")
    os.close(handle)  # the launcher writes the log by its path
    log = Path(log_name)
    emulator = Emulator(log, port=args.dynamodb_port, threaded=True, env=env)
    endpoint = emulator.endpoint
    if answers(endpoint):
        say(f"something already answers on {endpoint}; stop it or pass DYNAMODB_PORT=<port>")
        return 4
    vexil = str(BIN / "vexil")
    where = ["--env", args.env, "--dynamodb-endpoint", endpoint]
    target = ["--target", f"127.0.0.1:{args.port}", "-e", args.env]

    say(f"starting the DynamoDB emulator ({emulator.command[0]}) on {endpoint}; its log: {log}")
    server: subprocess.Popen | None = None
    signal.signal(signal.SIGTERM, interrupted)
    try:
        emulator.start(START_TIMEOUT)
        subprocess.run([vexil, "dynamodb", "create-table", *where], env=env, check=True)
        ports = ["--port", str(args.port), "--http-port", str(args.http_port)]
        server = subprocess.Popen([vexil, "serve", *ports, "--store", "dynamodb", *where], env=env)

        def imported() -> bool:
            done = subprocess.run(
                [vexil, "flags", "import", args.flags, *target, "--reason", "make run-dynamodb"],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode == 0:
                print(done.stdout, end="", flush=True)
            elif done.returncode != 6:  # 6: not listening yet
                raise SystemExit(f"run-dynamodb: importing {args.flags} failed: {done.stderr.strip()}")
            return done.returncode == 0

        wait_for("vexil serve", imported, server)
        say(
            f"serving {args.flags} from table feature-flags-{args.env} on 127.0.0.1:{args.port}; Ctrl-C stops"
        )
        return server.wait()
    except EmulatorError as exc:
        raise SystemExit(f"run-dynamodb: {exc}") from None
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            terminate(server, 15.0)
        emulator.stop(15.0)
        say("stopped the server and the emulator")


if __name__ == "__main__":
    sys.exit(main())
