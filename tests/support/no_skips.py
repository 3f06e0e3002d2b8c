"""pytest plugin: with `CI` set, a skipped test fails the run.

A skip is how a missing tool (the emulator, promtool, ...) hides: locally it says what to install,
in CI it must not leave the run green. `.ci/run` installs everything the suite needs, so a skip
there is a fault to fix, not a result.
"""

from __future__ import annotations

import os

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if not skipped:
        return
    if reporter is not None:
        reporter.write_sep("=", f"CI is set: {len(skipped)} skipped test(s) fail the run", red=True)
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            reporter.write_line(f"SKIPPED {report.nodeid}: {reason}")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
