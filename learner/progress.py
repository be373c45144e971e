"""Progress on a terminal: one line per stage, redrawn in place, only when watched.

Work functions of the learner report `(done, total)` through a `Progress`
callback. Pipelines that run several of them (prepare, the centralized run,
the demo) take a `StagedProgress`, `(stage, done, total)`, and hand each
piece of work `stage(progress, "read train.csv")`.

`progress_display` yields a `TerminalProgress` that draws
`stage  42% (done/total)` on stderr, at most ten times a second and always for
the last step, starting a new line when the stage changes; or `None` when
asked to be quiet or when stderr is not a terminal (a log file or a pipe gets
no carriage returns).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = ["Progress", "StagedProgress", "TerminalProgress", "progress_display", "stage"]

Progress = Callable[[int, int], None]
StagedProgress = Callable[[str, int, int], None]


class TerminalProgress:
    """A `(stage, done, total)` callback drawing one terminal line per stage."""

    def __init__(self, stream: TextIO, *, min_interval: float = 0.1) -> None:
        self._stream, self._min_interval = stream, min_interval
        self._stage: str | None = None
        self._last = -float("inf")

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self.close()
            self._stage = stage
        elif done < total and now - self._last < self._min_interval:
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        self._stream.write(f"\r{stage}  {percent:3.0f}% ({done}/{total})")
        self._stream.flush()

    def close(self) -> None:
        """Finish the current line, if one was drawn."""
        if self._stage is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._stage = None


def stage(progress: StagedProgress | None, name: str) -> Progress | None:
    """`progress` with the stage name bound, or None when there is no display."""
    return None if progress is None else functools.partial(progress, name)


@contextlib.contextmanager
def progress_display(
    *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[TerminalProgress | None]:
    """Yield a display on `stream` (default stderr), or None if quiet or not a
    terminal; the last line is finished on exit."""
    out = sys.stderr if stream is None else stream
    if quiet or not out.isatty():
        yield None
        return
    display = TerminalProgress(out)
    try:
        yield display
    finally:
        display.close()
