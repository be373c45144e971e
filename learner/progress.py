"""Progress on a terminal: one line, redrawn in place, only when someone watches.

The callbacks of the learner take `(done, total)`. `progress_display`
yields one that draws `label  42% (done/total)` on stderr, at most ten
times a second, or `None` when asked to be quiet or when stderr is not a
terminal (a log file or a pipe gets no carriage returns).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

__all__ = ["TerminalProgress", "progress_display"]


class TerminalProgress:
    """A `(done, total)` callback that redraws one terminal line; `close()` ends it."""

    def __init__(self, label: str, stream: TextIO, *, min_interval: float = 0.1) -> None:
        self._label, self._stream, self._min_interval = label, stream, min_interval
        self._last = -float("inf")
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self._min_interval:
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        self._stream.write(f"\r{self._label}  {percent:3.0f}% ({done}/{total})")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the line if anything was drawn."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


@contextlib.contextmanager
def progress_display(
    label: str, *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[TerminalProgress | None]:
    """Yield a progress callback on `stream` (default stderr), or None if quiet or
    not a terminal; the line is finished on exit."""
    out = sys.stderr if stream is None else stream
    if quiet or not out.isatty():
        yield None
        return
    progress = TerminalProgress(label, out)
    try:
        yield progress
    finally:
        progress.close()
