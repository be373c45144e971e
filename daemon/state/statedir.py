"""A daemon's state directory: created private, locked, listed, cleared of
interrupted writes.

One daemon writes a state directory at a time: a daemon holds `lock_state_dir`'s
lock for as long as it runs, and a second one on the same directory stops at
once. The lock is an exclusive `flock` on `LOCK_NAME`, which holds the pid of
its holder; the kernel releases it when the process ends, however it ends, so
a daemon that was killed never blocks the next one (the file stays, and means
nothing while nobody holds the lock). Readers (`fedd report`, `fedd status`)
open the directory read-only and take no lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterable, Set
from pathlib import Path

from fedd.daemon.errors import ConfigError
from fedd.daemon.state.columns import Table

__all__ = ["LOCK_NAME", "StateLock", "lock_state_dir", "open_state_dir", "remove_leftovers"]

LOCK_NAME = "daemon.lock"


class StateLock:
    """An exclusive lock on a state directory, held until `release` or the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        """Private: use `lock_state_dir`."""
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Let another daemon use the directory. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1


def lock_state_dir(path: Path) -> StateLock:
    """Create `path` (mode 0700, as `open_state_dir`) if missing and lock it for this process.

    Raises `ConfigError` naming the directory and the pid of the process that
    holds the lock, or saying why the lock file cannot be used.
    """
    open_state_dir(path, read_only=False)
    lock = path / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"{lock}: cannot open the lock file: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(
            f"{path}: in use by another fedd daemon ({holder}); stop it, or give this one "
            "a --state-dir of its own"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"{lock}: cannot lock: {exc.strerror or exc}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"{lock}: cannot write: {exc.strerror or exc}") from None
    return StateLock(path, fd)


def _holder(fd: int) -> str:
    """Who holds the lock, from the pid its holder wrote (it may not have yet)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid not written yet"


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
