"""The top-level README runs as a newcomer would run it, against real servers on loopback.

Rules (so a reader can paste any block): every ```sh and ```python block runs (blocks in other
languages, such as configuration files, are not commands), unless the line
before it is an HTML comment `<!-- not-run: why -->` (for blocks that need AWS, a deployment, or
start servers themselves). ```sh blocks run line by line in bash from a directory that has the
repository's `.venv` and `server/` (a `\\` continues a line; a trailing `&` runs in the
background until the end of the page). The server is the one `make run` starts (its arguments are
read from the Makefile), on free ports: `localhost:50051`, `localhost:3001` and `port=50051` are
rewritten to it. grpcurl lines with `-max-time` may end with DeadlineExceeded. A python block's
`print(...)  # X` must print X.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TIMEOUT = 60
NOT_RUN = re.compile(r"<!-- not-run: .+ -->\s*$")


def blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language, body, runs) of every fenced block of the page."""
    found = []
    for match in re.finditer(r"```(\w*)\n(.*?)```", text, re.DOTALL):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((match.group(1), match.group(2), not NOT_RUN.match(before)))
    return found


def make_run_arguments() -> list[str]:
    """`vexil serve`'s arguments in the Makefile's `run` recipe, without the port it sets."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^run: .*\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe, "no run target in the Makefile"
    words = shlex.split(recipe.group(1))
    args = words[words.index("serve") + 1 :]
    at = args.index("--port")
    del args[at : at + 2]
    return [str(ROOT / a) if a.startswith("server/") else a for a in args]


def sh_lines(body: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = [re.sub(r"\s+# .*$", "", line).strip() for line in joined.splitlines()]  # trailing comments
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_runs(tmp_path: Path) -> None:
    page = [(lang, body, runs) for lang, body, runs in blocks(README.read_text()) if lang in ("sh", "python")]
    work = tmp_path / "work"
    work.mkdir()
    for name in (".venv", "server"):
        (work / name).symlink_to(ROOT / name)
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEXIL_")}
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    background: list[subprocess.Popen[bytes]] = []
    ran = {"sh": 0, "python": 0}
    with ServerProcess(tmp_path, *make_run_arguments()) as server:
        env["VEXIL_TARGET"] = server.target  # a reader's server on the default port
        rewrites = {
            "localhost:50051": server.target,
            "localhost:3001": f"127.0.0.1:{server.http_port}",
            "port=50051": f"port={server.port}",
        }
        try:
            for lang, body, runs in page:
                if not runs:
                    continue
                for old, new in rewrites.items():
                    body = body.replace(old, new)
                if lang == "python":
                    done = subprocess.run(
                        [sys.executable, "-c", body], cwd=work, env=env, capture_output=True, timeout=TIMEOUT
                    )
                    assert done.returncode == 0, (
                        f"README python block failed:\n{body}\n{done.stderr.decode()}"
                    )
                    for expected in re.findall(r"^print\(.*\)\s+# (.+)$", body, re.MULTILINE):
                        assert expected in done.stdout.decode(), (body, done.stdout)
                    ran["python"] += 1
                    continue
                for line in sh_lines(body):
                    ran["sh"] += 1
                    if line.endswith("&"):
                        background.append(
                            subprocess.Popen(
                                ["bash", "-c", line[:-1]], cwd=work, env=env, stdout=subprocess.DEVNULL
                            )
                        )
                        continue
                    done = subprocess.run(
                        ["bash", "-c", line], cwd=work, env=env, capture_output=True, timeout=TIMEOUT
                    )
                    stderr = done.stderr.decode()
                    if "-max-time" in line and "DeadlineExceeded" in stderr:
                        assert done.stdout, f"{line}: no output before the deadline"
                    else:
                        assert done.returncode == 0, (
                            f"README command failed: {line}\n{stderr}\n(a block not meant to run on a fresh"
                            " clone needs <!-- not-run: why --> on the line before it)"
                        )
        finally:
            for proc in background:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)
    assert ran["python"] >= 1 and ran["sh"] >= 20, ran
    assert sum(1 for _, _, runs in page if not runs) >= 1


def test_not_run_blocks_say_why() -> None:
    text = README.read_text()
    for marker in re.findall(r"<!-- not-run.*?-->", text):
        assert NOT_RUN.match(marker), marker


def test_the_tools_the_readme_names_are_in_the_virtualenv() -> None:
    named = set(re.findall(r"\.venv/bin/([\w-]+)", README.read_text()))
    assert {"grpcurl", "moto_server"} <= named, named
    venv_bin = Path(sys.executable).parent
    for tool in named - {"activate"}:
        assert (venv_bin / tool).exists(), f"the README names .venv/bin/{tool}, which is not installed"
