"""Print the live Docker test's step timings in the summary, where CI's log keeps them."""

from __future__ import annotations

import pytest

from tests.docker.engine import NOTES, TIMINGS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS or NOTES:
        terminalreporter.section("docker timings")
        for step, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f}s  {step}")
        for note in NOTES:
            terminalreporter.write_line(f"          {note}")
