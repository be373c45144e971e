"""The daemons' CSV state files: strict reading, atomic rewrites, fsynced appends.

Conventions (DESIGN §5): UTF-8, comma-separated, one header row, `\\n` line
ends. Integers are written as integers and floats with `repr`, which reads
back to the identical float. Text cells never hold control characters, so a
record is exactly one line and a row number is a line number (the header is
row 1), as an editor shows it. A file's columns and how each cell is checked
are its `Table` (`daemon.state.columns`).

There are two kinds of file (`Table.appended`):

- *rewritten* files are only ever replaced whole, through
  `learner.atomic.atomic_text_writer` (temporary file, fsync, rename, fsync of
  the directory). They always end with a newline; one that does not was cut
  short by something other than fedd, which is corruption.
- *appended* logs grow by whole rows, each batch flushed and fsynced (several
  files' batches together, `appending`, with their fsyncs side by side). A crash
  in the middle of an append leaves a last line without its newline: a torn
  append. `read_table` sets it apart (`Contents.torn`) instead of failing, and
  the owner of the file decides what to do with it.

Whose fault: content that is not what fedd writes raises `StateError` naming
the file, the row and the column; an operating-system failure to read or
write raises `ConfigError` naming the path (permissions, a full disk).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.columns import Column, Table
from fedd.learner.atomic import atomic_text_writer
from fedd.learner.errors import DataError

__all__ = [
    "Contents",
    "append_rows",
    "appending",
    "decode_cell",
    "key_values",
    "read_table",
    "state_error",
    "write_table",
]

T = TypeVar("T")

# Threads that run a commit's fsyncs beside the caller's (fsync releases the
# GIL): started on first use, then kept, so a commit starts no thread.
_SYNCERS = ThreadPoolExecutor(max_workers=7, thread_name_prefix="fedd-fsync")


@dataclass
class Contents(Generic[T]):
    """What `read_table` found: the rows in file order, each with its row number
    (the header is row 1), and the text of a torn last line if there was one."""

    path: Path
    rows: list[tuple[int, T]]
    torn: str | None = None

    def damage(self) -> str:
        """What a crash left that rewriting the rows removes, as a note ('' if nothing)."""
        if self.torn is None:
            return ""
        if not self.torn:
            return f"{self.path.name}: was empty, without even its header"
        return (
            f"{self.path.name}: dropped a torn last line {self.torn[:60]!r} "
            "(a crash in the middle of an append)"
        )


def state_error(path: Path, what: str, *, row: int | None = None, column: str = "") -> StateError:
    """The StateError for `what` found in `path`, at `row` and `column` if given."""
    where = str(path)
    if row is not None:
        where += f" row {row}"
        if column:
            where += f", column {column!r}"
    return StateError(f"{where}: {what}")


def read_table(path: Path, table: Table, make: Callable[..., T]) -> Contents[T] | None:
    """Read and fully validate `path` as `table`; None if the file does not exist.

    Every data row becomes `make(*values)`, the cells parsed in column order.
    `make` must check them (the row classes do, and `Table.checked` does) and
    raise `ValueError` for a bad one: it is reported at its row and column.
    An appended table's torn last line goes to `Contents.torn`, not to the
    rows; an appended table that is empty, or holds only a torn header, has
    no rows and a `torn` of what there was. Raises `StateError` for anything
    else that is not as fedd writes it, `ConfigError` if the file cannot be
    read.
    """
    text = _read_text(path)
    if text is None:
        return None
    body, newline, tail = text.rpartition("\n")
    if not table.appended and (tail or not newline):  # a whole-file write cannot be torn
        raise state_error(path, "the file is cut short" if tail else "the file is empty")
    contents: Contents[T] = Contents(path, [], torn=tail if tail or not newline else None)
    if not newline:  # nothing complete, not even the header
        return contents
    reader = csv.reader(body.split("\n"), strict=True)
    while True:
        number = reader.line_num + 1  # the row this record starts on
        try:
            cells = next(reader)
        except StopIteration:
            return contents
        except csv.Error as exc:
            raise state_error(path, f"not valid CSV ({exc})", row=number) from None
        if reader.line_num != number:
            raise state_error(path, "a quoted cell spans lines", row=number)
        if number == 1:
            _check_header(path, table, cells)
        else:
            contents.rows.append((number, _decode(path, number, table, cells, make)))


def _read_text(path: Path) -> str | None:
    """The text of `path`, None if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        raise state_error(path, "not UTF-8 text", row=row) from None


def _check_header(path: Path, table: Table, cells: list[str]) -> None:
    found, header = tuple(cells), table.header
    if found == header:
        return
    if found and (header[: len(found)] == found or found[: len(header)] == header):
        # Columns added or dropped at the end: another version of fedd wrote it.
        why = (
            f"written by another version of fedd (its header is {','.join(cells)[:200]!r}); "
            f"move {path.parent} aside and start this daemon on a new state directory"
        )
    else:
        why = f"found {','.join(cells)[:200]!r}: this is not fedd's {table.name}"
    raise state_error(path, f"the header must be {','.join(header)!r}, {why}", row=1)


def _decode(path: Path, number: int, table: Table, cells: list[str], make: Callable[..., T]) -> T:
    if not cells:
        raise state_error(path, "an empty line (fedd writes none)", row=number)
    if len(cells) != len(table.columns):
        raise state_error(
            path, f"{len(cells)} cells; the header has {len(table.columns)}", row=number
        )
    values = []
    for column, cell in zip(table.columns, cells, strict=True):
        try:
            values.append(column.parse(cell))
        except ValueError as exc:
            raise state_error(path, str(exc), row=number, column=column.name) from None
    try:
        return make(*values)  # which checks every value: see read_table
    except ValueError as exc:
        # Only on this error path, check cell by cell to name the column; a row whose
        # cells pass alone broke a rule across cells.
        for column, value in zip(table.columns, values, strict=True):
            try:
                column.check(value)
            except ValueError as cell_exc:
                raise state_error(path, str(cell_exc), row=number, column=column.name) from None
        raise state_error(path, str(exc), row=number) from None


def decode_cell(path: Path, number: int, column: Column, cell: str, *, where: str = "") -> Any:
    """The checked value of `cell`, read as `column`; StateError at row `number`
    and column `where` (default: the column's own name)."""
    try:
        return column.check(column.parse(cell))
    except ValueError as exc:
        raise state_error(path, str(exc), row=number, column=where or column.name) from None


def key_values(
    contents: Contents[tuple[str, str]],
    *,
    required: Sequence[str],
    repeatable: str = "",
    known: Sequence[str] | None = None,
) -> dict[str, list[tuple[int, str]]]:
    """The rows of a key,value file grouped by key, each as (row number, value).

    Raises `StateError` if a key is not `known` (when given), a key other than
    `repeatable` appears twice, or a `required` key is missing.
    """
    entries: dict[str, list[tuple[int, str]]] = {}
    for number, (key, value) in contents.rows:
        if known is not None and key not in known:
            raise state_error(contents.path, f"unknown key {key!r}", row=number, column="key")
        earlier = entries.setdefault(key, [])
        if earlier and key != repeatable:
            raise state_error(
                contents.path,
                f"{key!r} appears again (first at row {earlier[0][0]})",
                row=number,
                column="key",
            )
        earlier.append((number, value))
    for key in required:
        if key not in entries:
            raise state_error(contents.path, f"no {key!r} row")
    return entries


def write_table(
    path: Path,
    table: Table,
    rows: Iterable[Sequence[object]],
    *,
    sync: Callable[[int], None] | None = None,
) -> None:
    """Replace `path` atomically with the header and `rows` (checked values in
    column order); `sync`, if given, makes the new content durable before the
    rename instead of `os.fsync` (an `appending` block's: with the appended rows). Raises
    `ConfigError` if it cannot be written."""
    try:
        with atomic_text_writer(path, sync=sync) as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(table.header)
            writer.writerows(table.cells(values) for values in rows)
    except DataError as exc:  # the writer's only error: an OSError, naming the path
        raise ConfigError(str(exc)) from None


def append_rows(path: Path, table: Table, rows: Sequence[Sequence[object]]) -> None:
    """Append `rows` to the existing file `path`, then flush and fsync (`appending`)."""
    with appending([(path, table, rows)]):
        pass


@contextlib.contextmanager
def appending(
    appends: Sequence[tuple[Path, Table, Sequence[Sequence[object]]]],
) -> Iterator[Callable[[int], None]]:
    """Append to each existing file `path` its `rows`; all are fsynced when the block ends.

    The block gets `sync(fd)`, which fsyncs every appended file together with
    `fd` (a new file's content, `write_table(sync=...)`), side by side in
    threads: a journaling file system commits them together, where one after
    another each would wait for a commit of its own. Unless the block called
    it, the files are fsynced as the block ends. One fsync covers a file's
    batch: a crash inside it leaves whole rows plus at most one torn line, and
    the rows belong to an uncommitted round that the next open drops anyway.
    If a write or an fsync fails, every file is truncated back to its old
    size (as far as that works) and `ConfigError` names the appended file
    that failed; if the block fails, the rows stay where they are, as a
    crash would leave them (the next open drops them). A file is
    never created here (it would lack its header and its mode): `write_table`
    creates it.
    """
    opened: list[tuple[Path, int, int]] = []  # path, descriptor, size before
    synced = False

    def take_back() -> None:
        # What part of each batch got written (a full disk): the next append
        # must not continue a torn line.
        for _, fd, size in opened:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)

    def sync(fd: int | None) -> None:
        nonlocal synced
        files: list[tuple[Path | None, int]] = [(path, f) for path, f, _ in opened]
        failures = _fsync_all(files if fd is None else [*files, (None, fd)])
        if failures:
            take_back()
        for path, error in failures:
            if path is not None:
                raise ConfigError(f"{path}: cannot append: {error.strerror or error}")
        for _, error in failures:
            raise error  # the caller's file: the caller names it
        synced = True

    try:
        current = Path()
        try:
            for current, table, rows in appends:
                data = _lines(table, rows).encode("utf-8")
                fd = os.open(current, os.O_WRONLY | os.O_APPEND)
                opened.append((current, fd, os.fstat(fd).st_size))
                while data:  # os.write may write less than asked
                    data = data[os.write(fd, data) :]
        except OSError as exc:
            take_back()
            raise ConfigError(f"{current}: cannot append: {exc.strerror or exc}") from None
        yield sync
        if not synced:
            sync(None)
    finally:
        for _, fd, _ in opened:
            os.close(fd)


def _fsync_all(files: Sequence[tuple[Path | None, int]]) -> list[tuple[Path | None, OSError]]:
    """fsync every descriptor, side by side (`_SYNCERS`); the files that failed,
    with why."""
    failures: list[tuple[Path | None, OSError]] = []

    def sync(path: Path | None, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            failures.append((path, exc))

    if not files:
        return failures
    others = [_SYNCERS.submit(sync, *item) for item in files[1:]]
    sync(*files[0])
    for other in others:
        other.result()
    return failures


def _lines(table: Table, rows: Sequence[Sequence[object]]) -> str:
    """The CSV text of `rows`, each line ended by `\\n`."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table.cells(values) for values in rows)
    return out.getvalue()
