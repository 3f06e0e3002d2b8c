"""Reports how many comparisons with the reference the engine tests made in this run."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from .test_differential import CASES
    from .test_expressions import COUNT
    from .test_fractional_flagd import COUNT as FRACTIONAL

    if CASES["count"] or COUNT["cases"]:
        terminalreporter.write_line(
            f"engine vs reference: {CASES['count']:,} flag resolutions (flag x context x type) and "
            f"{COUNT['cases']:,} rule evaluations compared"
        )
    if FRACTIONAL["js"] or FRACTIONAL["python"]:
        terminalreporter.write_line(
            f"fractional: {FRACTIONAL['js']:,} resolutions compared with the JavaScript core (string "
            f"hashing), {FRACTIONAL['python']:,} with the Python core (CBOR hashing)"
        )


@pytest.fixture(scope="session")
def js_core() -> Any:
    """The JavaScript flagd core, installed from tests/js/package-lock.json (cached)."""
    from . import jscore

    jscore.install()
    return jscore
