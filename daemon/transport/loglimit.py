"""A rate limit for log lines that a remote party can trigger at will.

Every frame a daemon drops is worth a line, until someone sends a hundred
thousand of them: then the log grows by megabytes a second and buries the
lines that matter. `LogLimit` lets the first `burst` events of each
`interval` through and counts the rest, so that the next line that is
logged, or `flush` once the interval is over, says how many were skipped.
Nothing is lost from the count; only the one-line-per-frame detail is.

Sans-IO: the caller passes the clock reading and does the logging.
"""

from __future__ import annotations

import logging
import math

__all__ = ["LogLimit", "log_limited"]


class LogLimit:
    """At most `burst` lines per `interval` seconds; the rest are counted."""

    __slots__ = ("_held", "_logged", "_window_start", "burst", "interval")

    def __init__(self, burst: int = 10, interval: float = 1.0) -> None:
        if burst < 1 or not interval > 0:
            raise ValueError("a log limit needs burst >= 1 and interval > 0")
        self.burst = burst
        self.interval = interval
        self._window_start = -math.inf
        self._logged = 0
        self._held = 0

    def allow(self, now: float) -> int | None:
        """Whether an event at `now` may be logged.

        None: skip the line (the event is counted). Otherwise log it, and
        mention the returned number of events skipped before it (often 0).
        """
        self._roll(now)
        if self._logged >= self.burst:
            self._held += 1
            return None
        self._logged += 1
        held, self._held = self._held, 0
        return held

    def flush(self, now: float) -> int:
        """Events skipped in a window that is over and not yet reported (0 if none).

        Call it from a timer, so that the count of a flood that stopped is
        still logged when no further event comes to carry it.
        """
        if now - self._window_start < self.interval:
            return 0
        held, self._held = self._held, 0
        return held

    def _roll(self, now: float) -> None:
        if now - self._window_start >= self.interval:
            self._window_start = now
            self._logged = 0


def log_limited(
    logger: logging.Logger, limit: LogLimit, now: float, level: int, fmt: str, *args: object
) -> None:
    """Log a line within `limit`; past it the line is counted, and the next says how many."""
    skipped = limit.allow(now)
    if skipped is None:
        return
    if skipped:
        fmt += " (and %d more not logged one by one)"
        args = (*args, skipped)
    logger.log(level, fmt, *args)
