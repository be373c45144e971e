"""Hand the live Docker test's step timings to the summary, where CI's log keeps them.

`make test` runs the suite on several workers (pytest-xdist), and only the
reports reach the process that prints the summary (tests/conftest.py): each
test hands on the timings and notes gathered while it ran, module fixtures
included, as properties of its teardown report.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import NOTE, TIMING
from tests.docker.engine import NOTES, TIMINGS


@pytest.fixture(autouse=True)
def hand_on_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    request.node.user_properties.extend((TIMING, step) for step in TIMINGS)
    request.node.user_properties.extend((NOTE, note) for note in NOTES)
    TIMINGS.clear()
    NOTES.clear()
