"""Write a file so that readers see either the old content or the new, never half.

The content goes to a temporary file in the target's directory, is flushed and
fsynced, and then renamed over the target (`os.replace` is atomic on POSIX and
Windows when both paths are on one file system). On POSIX the directory is
fsynced after the rename too: the rename is a change to the directory, and
until the directory is flushed a power loss can bring back the old file (or
none) even though the new content itself reached the disk. On any exception
the temporary file is removed and the target is left untouched, except when
only that last directory flush fails: the new content is then in place but
possibly not durable, and the error is raised all the same.

Permissions: by default the file is created with mode 0600 (a umask can only
narrow it): models, metrics and daemon state of one institution are private. Data files that other
accounts must read (`fedd data synth` and `prepare` output, read by the
unprivileged user of a container through a bind mount) are written with
`DATA_FILE_MODE` instead, which the umask then narrows as for any new file
(0644 under the usual 022, still 0600 under 077).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from fedd.learner.errors import DataError

__all__ = ["DATA_FILE_MODE", "atomic_text_writer"]

DATA_FILE_MODE = 0o666


@contextlib.contextmanager
def atomic_text_writer(
    path: Path,
    *,
    newline: str = "",
    mode: int = 0o600,
    sync: Callable[[int], None] | None = None,
) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream whose content replaces `path` on normal exit.

    Creates missing parent directories. `newline=""` suits the csv module, which
    writes its own line endings. `mode` is the new file's permission bits before
    the umask, as for open(2). `sync(fd)` makes the content durable before the
    rename: by default `os.fsync`; a caller's can fsync it with other files. An
    `OSError` (no permission, disk full, a directory in the way) becomes a
    `DataError` naming `path`.
    """
    # O_EXCL on a random name, as tempfile.mkstemp does, but with our mode:
    # mkstemp always gives 0600. O_BINARY (Windows only): no newline translation.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
            stream.flush()
            (os.fsync if sync is None else sync)(stream.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Flush `directory`'s entries (a rename) to disk. POSIX only: Windows cannot
    open a directory as a file, and NTFS journals the rename itself."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
