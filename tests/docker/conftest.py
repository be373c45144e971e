"""Print the live Docker test's step timings in the summary, where CI's log keeps them.

`make test` runs the suite on several workers (pytest-xdist), and only the
reports reach the process that prints the summary: each test hands on the
timings and notes gathered while it ran, module fixtures included, as
properties of its teardown report.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker.engine import NOTES, TIMINGS

TIMING = "docker timing"
NOTE = "docker note"


@pytest.fixture(autouse=True)
def hand_on_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    request.node.user_properties.extend((TIMING, step) for step in TIMINGS)
    request.node.user_properties.extend((NOTE, note) for note in NOTES)
    TIMINGS.clear()
    NOTES.clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    timings: list[tuple[str, float]] = []
    notes: list[str] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == TIMING:
                    timings.append(tuple(value))
                elif key == NOTE:
                    notes.append(value)
    if timings or notes:
        terminalreporter.section("docker timings")
        for step, seconds in timings:
            terminalreporter.write_line(f"{seconds:7.1f}s  {step}")
        for note in notes:
            terminalreporter.write_line(f"          {note}")
