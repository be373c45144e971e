"""The daemons' user-facing exceptions: things the operator can fix."""

from __future__ import annotations

__all__ = ["ConfigError", "StateError"]


class ConfigError(Exception):
    """A daemon option or its environment is unusable (bad address, port in use,
    unreadable file, hub unreachable). The message says what to fix."""


class StateError(Exception):
    """A state file is corrupt or belongs to something else; the message names
    the file, and where it applies the row and the column."""
