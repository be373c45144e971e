"""The learner's one user-facing exception."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(Exception):
    """A data file or a training parameter is unusable.

    The message is a single line meant for the user: it names the file, and
    where it applies the row number and the column, and says what to fix.
    """
