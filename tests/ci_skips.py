"""No skips in CI: pytest hooks, imported by tests/conftest.py.

CI (.ci/run, with CI=true) installs every tool the tests need, so a test that skips there is a test
that did not run: the run fails, naming each skipped test and its reason. Locally a test whose tool
is missing still skips, with a one-line reason (shown by -ra). Expected failures (xfail) are not
skips. The skips are the terminal reporter's own count, so -p no:terminal turns this off.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def skipped(config: pytest.Config) -> list[tuple[str, str]]:
    """(test id, reason) of each test, or module at collection, that skipped in this session."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter is not None else []
    return [(report.nodeid, _reason(report)) for report in reports]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if in_ci() and exitstatus == pytest.ExitCode.OK and skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found = skipped(config) if in_ci() else []
    if not found:
        return
    terminalreporter.section("skipped tests fail the run under CI=true", red=True, bold=True)
    for nodeid, reason in found:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
    terminalreporter.line(
        f"{len(found)} skipped: CI installs every tool the tests need, so each of these must run there.", red=True
    )
