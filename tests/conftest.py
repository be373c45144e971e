"""What the whole suite shares: the order files reach the workers, and the summary
of the live Docker test's timings (handed on by tests/docker/conftest.py).

This file is loaded by the process that schedules the pytest-xdist workers and
prints the summary, which never loads the conftest files of subfolders.
"""

from __future__ import annotations

import pytest

TIMING = "docker timing"
NOTE = "docker note"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The Docker test is the longest file by far: started first, it runs beside
    # the others instead of after them on one worker while the other idles.
    items.sort(key=lambda item: item.get_closest_marker("docker") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    timings: list[tuple[str, float]] = []
    notes: list[str] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == TIMING:
                    timings.append((value[0], value[1]))
                elif key == NOTE:
                    notes.append(value)
    if timings or notes:
        terminalreporter.section("docker timings")
        for step, seconds in timings:
            terminalreporter.write_line(f"{seconds:7.1f}s  {step}")
        for note in notes:
            terminalreporter.write_line(f"          {note}")
