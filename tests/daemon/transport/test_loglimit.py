"""LogLimit: the first `burst` events of each interval are logged, the rest counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.daemon.transport.loglimit import LogLimit


def test_the_burst_is_logged_then_events_are_counted_until_the_next_window() -> None:
    limit = LogLimit(burst=3, interval=1.0)
    assert [limit.allow(10.0) for _ in range(3)] == [0, 0, 0]
    assert [limit.allow(10.5) for _ in range(5)] == [None] * 5
    assert limit.flush(10.9) == 0  # the window is not over: nothing to report yet
    assert limit.allow(11.0) == 5  # the first line of the next window carries the count
    assert limit.allow(11.1) == 0


def test_flush_reports_a_flood_that_stopped() -> None:
    limit = LogLimit(burst=1, interval=1.0)
    assert limit.allow(0.0) == 0
    assert limit.allow(0.1) is None
    assert limit.allow(0.2) is None
    assert limit.flush(1.0) == 2
    assert limit.flush(5.0) == 0  # reported once
    assert limit.allow(5.0) == 0


@given(st.lists(st.floats(min_value=0.0, max_value=0.999), max_size=200), st.integers(1, 20))
def test_within_one_window_every_event_is_logged_or_counted_exactly_once(
    offsets: list[float], burst: int
) -> None:
    limit = LogLimit(burst=burst, interval=1.0)
    results = [limit.allow(100.0 + t) for t in sorted(offsets)]
    logged = [r for r in results if r is not None]
    assert len(logged) == min(burst, len(offsets))
    assert len(logged) + limit.flush(102.0) == len(offsets)  # the window starts at the first event


@pytest.mark.parametrize(("burst", "interval"), [(0, 1.0), (1, 0.0), (1, -1.0), (1, float("nan"))])
def test_a_limit_that_would_log_nothing_is_refused(burst: int, interval: float) -> None:
    with pytest.raises(ValueError, match="burst >= 1 and interval > 0"):
        LogLimit(burst=burst, interval=interval)
