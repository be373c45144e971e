"""A daemon's state directory: created private, listed, cleared of interrupted writes.

One daemon writes a state directory at a time; readers open it read-only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Set
from pathlib import Path

from fedd.daemon.errors import ConfigError
from fedd.daemon.state.columns import Table

__all__ = ["open_state_dir", "remove_leftovers"]


def open_state_dir(path: Path, *, read_only: bool) -> Set[str]:
    """The names of the entries in `path`, after creating it unless `read_only`.

    A created directory gets mode 0700 (the state of one institution is
    private); missing parents are created with the default mode. Raises
    `ConfigError` if `path` cannot be created or listed, is not a directory,
    or (read-only) does not exist.
    """
    try:
        if not read_only:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with os.scandir(path) as entries:
            return frozenset(entry.name for entry in entries)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such state directory") from None
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{path}: not a directory") from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot use as a state directory: {exc.strerror or exc}"
        ) from None


def remove_leftovers(
    path: Path, names: Iterable[str], tables: Iterable[Table], *, dry_run: bool
) -> list[str]:
    """Remove the temporary files that interrupted atomic writes of `tables` left
    in `path` (`.<name>.<random>.tmp`, see `learner.atomic`); one note per file.

    With `dry_run` nothing is removed and the notes say so. Raises
    `ConfigError` if a file cannot be removed.
    """
    ours = "|".join(re.escape(table.name) for table in tables)
    pattern = re.compile(rf"\.(?:{ours})\.[A-Za-z0-9_]+\.tmp")
    notes = []
    for name in sorted(names):
        if pattern.fullmatch(name) is None:
            continue
        if dry_run:
            notes.append(f"{name}: left over from an interrupted write [read-only: not removed]")
            continue
        try:
            (path / name).unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(f"{path / name}: cannot remove: {exc.strerror or exc}") from None
        notes.append(f"{name}: removed, left over from an interrupted write")
    return notes
