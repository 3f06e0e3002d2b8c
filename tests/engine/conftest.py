"""Reports how many comparisons with the reference the engine tests made in this run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import jscore
from tests.support.reference import CASES, FRACTIONAL, RULES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES["count"] or RULES["cases"]:
        terminalreporter.write_line(
            f"engine vs reference: {CASES['count']:,} flag resolutions (flag x context x type) and "
            f"{RULES['cases']:,} rule evaluations compared"
        )
    if FRACTIONAL["js"] or FRACTIONAL["python"]:
        terminalreporter.write_line(
            f"fractional: {FRACTIONAL['js']:,} resolutions compared with the JavaScript core (string "
            f"hashing), {FRACTIONAL['python']:,} with the Python core (CBOR hashing)"
        )


@pytest.fixture(scope="session")
def js_core() -> Any:
    """The JavaScript flagd core, installed from tests/js/package-lock.json (cached)."""

    jscore.install()
    return jscore
