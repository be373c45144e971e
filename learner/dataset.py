"""Numeric CSV tables with a binary label: validated reading and writing.

Input format: a header row, then one row per example. One column is the label
(any name, any position) holding 0 or 1 (`0`, `1`, `0.0`, `1.0`, quoted or
not); every other column is a finite number below 2^62 in magnitude, with a
decimal point. Blank lines are skipped. The Kaggle credit-card file
(`"Time","V1",...,"Amount","Class"`) is one such file. Cells are separated
by commas, or by semicolons or tabs, as spreadsheets set to many European
locales save "CSV": the header line decides (`header_delimiter`).

Everything read from a file is untrusted: any problem raises `DataError` with
one line that names the file, the 1-based row number (the header is row 1;
this is the line number an editor shows when no cell spans lines) and the
column, and says what is wrong.

In memory a `Dataset` keeps its features row-major in one `array('d')` (8
bytes a value, about a quarter of the size of tuples of floats) and its labels
in one `bytes`: the 285k x 30 Kaggle file takes about 70 MB.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import operator
import os
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fedd.learner.cells import BOOLEANS, MISSING, SPELLED, is_missing, looks_like
from fedd.learner.errors import DataError
from fedd.learner.progress import Progress

if TYPE_CHECKING:
    from _csv import Reader

__all__ = [
    "DELIMITERS",
    "MAX_MAGNITUDE",
    "Dataset",
    "column_difference",
    "header_delimiter",
    "header_line",
    "read_dataset",
    "require_both_classes",
    "row_format",
]

# Every feature value is below this in magnitude, so that federated statistics
# can sum exact fixed-point images of the values (learner.moments).
MAX_MAGNITUDE = 2.0**62
# The cell separators a data file may use; the first is what fedd writes.
DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Rows of finite float features with a 0/1 label.

    `x` holds `n_rows * n_features` values row-major; `y` holds one byte (0 or 1)
    per row. `source` names where the data came from, for error messages.
    """

    source: str
    features: tuple[str, ...]
    label: str
    x: array[float]
    y: bytes

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("a dataset needs at least one feature column")
        if len(self.x) != len(self.y) * len(self.features):
            raise ValueError("x must hold n_rows * n_features values")

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.y)

    @property
    def n_features(self) -> int:
        """Number of feature columns (the label is not counted)."""
        return len(self.features)

    @property
    def n_positives(self) -> int:
        """Number of rows labelled 1."""
        return self.y.count(1)

    def row(self, i: int) -> array[float]:
        """The features of row `i` (0-based) as a new array."""
        d = len(self.features)
        return self.x[i * d : (i + 1) * d]

    def rows(self) -> Iterator[array[float]]:
        """The feature rows in order, each a new array."""
        d = len(self.features)
        x = self.x
        return (x[k : k + d] for k in range(0, len(x), d))


def read_dataset(
    path: Path,
    label: str = "Class",
    progress: Progress | None = None,
    *,
    ignore: Collection[str] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
) -> Dataset:
    """Read and validate a numeric CSV with a 0/1 label column named `label`.

    The columns named in `ignore` (an institution's ids, names, categories,
    dates) are left out unread: every other column is a feature. The file's
    text is in `encoding` (a byte-order mark before UTF-8 is skipped). A
    feature's missing cell (empty, `NA`, `NULL`, `NaN`, ...) reads
    as `fill_missing`, or is an error when that is None. A boolean word (true or
    false, t or f, yes or no, y or n, in any case) reads as 1 or 0, in the label
    as in a feature.
    `progress` hears `(characters read, file size in bytes)` now and then.

    Raises `DataError` naming the file (and row and column where one applies)
    when the file is missing, unreadable, empty, header-only, lacks the label
    column or a column to ignore, would ignore the label, has a duplicate
    column name, a ragged row, a cell that is not a finite number (or one of
    2^62 or more in magnitude), or a label other than 0 or 1.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"{path}: unknown text encoding {encoding!r}") from None
    text_encoding = "utf-8-sig" if codec.name == "utf-8" else codec.name
    try:
        stream = open(path, encoding=text_encoding, newline="")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open: {exc.strerror}") from None
    with stream:
        lines: Iterable[str] = stream if progress is None else _counted(stream, progress)
        lines, delimiter = _sniffed(path, iter(lines), text_encoding)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            return _Parser(path, reader, label, frozenset(ignore), fill_missing).parse()
        except csv.Error as exc:
            raise DataError(f"{path} row {reader.line_num}: malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise _not_text(path, text_encoding) from None


def _not_text(path: Path, encoding: str) -> DataError:
    """The error for `path`, which holds bytes that are not text in `encoding`."""
    row = _undecodable_row(path, encoding)
    if encoding == "utf-8-sig":
        # Spreadsheets save "CSV" in the system's code page unless told UTF-8.
        what = "UTF-8"
        fix = "save the file as UTF-8 CSV, or name its encoding with --encoding (such as cp1252)"
    else:
        what = encoding
        fix = "name the file's encoding with --encoding, or save it as UTF-8 CSV"
    return DataError(f"{path} row {row}: not {what} text; {fix}")


def _undecodable_row(path: Path, encoding: str) -> int:
    """The first line of `path` not text in `encoding`: found again, line by line,
    as text is decoded in blocks (0 if none is, as when the file changed since)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as stream:
        for row, line in enumerate(stream, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return row
    return 0


def header_delimiter(line: str) -> str:
    """The cell separator of a file whose header is `line`: the one of `DELIMITERS`
    that splits it into the most cells (outside quotes), a comma on a tie."""
    counts: dict[str, int] = {}
    for delimiter in DELIMITERS:
        try:
            counts[delimiter] = len(next(csv.reader([line], delimiter=delimiter), []))
        except csv.Error:
            counts[delimiter] = 0
    return max(DELIMITERS, key=counts.__getitem__)  # max keeps the first of equals


def _sniffed(path: Path, lines: Iterator[str], encoding: str) -> tuple[Iterator[str], str]:
    """The lines again, and the delimiter their first non-blank line (the header) uses."""
    skipped = []
    try:
        for line in lines:
            skipped.append(line)
            if line.strip():
                return itertools.chain(skipped, lines), header_delimiter(line)
    except UnicodeDecodeError:
        raise _not_text(path, encoding) from None
    return iter(skipped), ","


def _counted(stream: TextIO, progress: Progress) -> Iterator[str]:
    """The stream's lines, reporting the characters read every 4096 lines."""
    total = os.fstat(stream.fileno()).st_size
    done = 0
    for number, line in enumerate(stream, 1):
        done += len(line)
        if number % 4096 == 0:
            progress(min(done, total), total)
        yield line
    progress(total, total)


class _Parser:
    """One pass over one file. A row of numbers is read in C; only a row with a
    boolean word (once: from then on they are spelled out in C too), a missing
    cell or an error takes the slow paths."""

    def __init__(
        self,
        path: Path,
        reader: Reader,
        label: str,
        ignore: frozenset[str],
        fill: float | None,
    ) -> None:
        self.path, self.reader, self.label, self.ignore = path, reader, label, ignore
        if fill is not None and not (math.isfinite(fill) and abs(fill) < MAX_MAGNITUDE):
            raise ValueError(f"the value for missing cells must be finite and below 2^62: {fill}")
        self.fill = fill
        # The names of the cells read, in file order: every column but those ignored.
        self.header: list[str] = []

    def parse(self) -> Dataset:
        path, reader, label = self.path, self.reader, self.label
        columns = self._header()
        self.header, select = self._kept(columns)
        header = self.header
        li = header.index(label)
        features = tuple(header[:li] + header[li + 1 :])
        if not features:
            raise DataError(f"{path}: only the label column {label!r}; there are no features")
        width = len(columns)
        x: array[float] = array("d")
        y = bytearray()
        spell: Callable[[str, str], str | float] | None = None
        for row in reader:
            if len(row) != width:
                if not row:  # a blank line
                    continue
                raise DataError(
                    f"{path} row {reader.line_num}: {len(row)} cells, but the header has {width}"
                )
            cells: Sequence[str] = row if select is None else select(row)
            try:
                values = list(map(float, cells if spell is None else map(spell, cells, cells)))
            except ValueError:
                try:
                    values = list(map(float, map(SPELLED.get, cells, cells)))
                    # A file with boolean words has them in every row: spelled out
                    # in C from now on, rather than tried as numbers first.
                    spell = SPELLED.get
                except ValueError:
                    values = self._filled(cells, li)
            # One norm per row finds any inf, nan or value too large to sum
            # exactly; only then look for the cell. (Many large values can
            # also make a large norm: then no cell is found.)
            if not math.hypot(*values) < MAX_MAGNITUDE:
                values = self._checked(cells, values, li)
            cls = values.pop(li)
            if cls == 0.0:
                y.append(0)
            elif cls == 1.0:
                y.append(1)
            else:
                raise self._label_error(cells[li])
            x.extend(values)
        if not y:
            raise DataError(f"{path}: a header but no data rows")
        return Dataset(source=str(path), features=features, label=label, x=x, y=bytes(y))

    def _header(self) -> list[str]:
        for row in self.reader:
            if row:
                header = [name.strip() for name in row]
                break
        else:
            raise DataError(f"{self.path}: empty file; expected a header row, then data rows")
        seen: set[str] = set()
        for name in header:
            if name in seen and name:  # columns with no name are refused, or left out, later
                raise DataError(f"{self.path} row 1: column name {name!r} appears twice")
            seen.add(name)
        return header

    def _kept(
        self, columns: list[str]
    ) -> tuple[list[str], Callable[[list[str]], Sequence[str]] | None]:
        """The columns read, and what picks their cells out of a row (None when
        there is nothing to pick)."""
        path, label = self.path, self.label
        if label not in columns:
            raise DataError(
                f"{path}: no label column {label!r}; its columns are: {', '.join(columns)}"
                " (choose one with --label)"
            )
        unknown = sorted(self.ignore - set(columns))
        if unknown:
            raise DataError(
                f"{path}: no column {unknown[0]!r} to ignore; its columns are: {', '.join(columns)}"
            )
        if label in self.ignore:
            raise DataError(f"{path}: the label column {label!r} cannot be ignored")
        kept = [j for j, name in enumerate(columns) if name not in self.ignore]
        read = [columns[j] for j in kept]
        if "" in read:
            # A feature is known by its name: the hub matches every institution's
            # columns by name, and models and scalings are written by name.
            raise DataError(
                f"{path} row 1, column {columns.index('') + 1}: the column has no name, and "
                "every feature needs one; name it in the header, or leave it out with "
                "--ignore-columns '\"\"' (a row index saved with the data, for example)"
            )
        # Every column read, or the label alone (no features: parse() stops): no picking.
        if len(kept) in (1, len(columns)):
            return read, None
        return read, operator.itemgetter(*kept)

    def _where(self, column: str) -> str:
        return f"{self.path} row {self.reader.line_num}, column {column!r}"

    def _filled(self, row: Sequence[str], li: int) -> list[float]:
        """The row's values, read from boolean words too, its missing feature cells
        filled in; or the first bad cell's error."""
        values = []
        for j, cell in enumerate(row):
            try:
                values.append(float(cell))
            except ValueError:
                word = cell.strip().lower()
                if word in BOOLEANS:
                    values.append(BOOLEANS[word])
                elif j != li and self.fill is not None and word in MISSING:
                    values.append(self.fill)
                else:
                    raise self._cell_error(j, cell, li) from None
        return values

    def _cell_error(self, j: int, cell: str, li: int) -> DataError:
        if j == li:
            return self._label_error(cell)
        what = "empty cell" if not cell.strip() else f"{cell!r} is not a number"
        return DataError(f"{self._where(self.header[j])}: {what}{looks_like(cell)}")

    def _checked(self, row: Sequence[str], values: list[float], li: int) -> list[float]:
        """`values`, a `nan` that stands for a missing cell filled in; or the error of
        the first value that is not finite, or too large."""
        for j, value in enumerate(values):
            if not math.isfinite(value):
                if j == li:
                    raise self._label_error(row[j])
                if self.fill is not None and is_missing(row[j]):
                    values[j] = self.fill
                    continue
                raise DataError(
                    f"{self._where(self.header[j])}: {row[j]!r} is not a finite number"
                    + looks_like(row[j])
                )
            if abs(value) >= MAX_MAGNITUDE:
                raise DataError(
                    f"{self._where(self.header[j])}: {row[j]!r} is too large: fedd needs "
                    "|value| < 2^62 (about 4.6e18) to sum features exactly across peers"
                )
        return values

    def _label_error(self, cell: str) -> DataError:
        return DataError(f"{self._where(self.label)}: the label must be 0 or 1, not {cell!r}")


def column_difference(expected: Sequence[str], got: Sequence[str]) -> str:
    """How the feature columns `got` differ from `expected` ('' when they are the same)."""
    if tuple(expected) == tuple(got):
        return ""
    missing = [f for f in expected if f not in got]
    extra = [f for f in got if f not in expected]
    if missing or extra:
        return f"missing {missing or 'none'}, extra {extra or 'none'}"
    return "the same columns in a different order"


def require_both_classes(data: Dataset, noun: str = "row") -> None:
    """Raise `DataError` unless `data` has rows labelled 0 and rows labelled 1.

    `noun` words the message ("row", "training row", "test row").
    """
    n_pos = data.n_positives
    if n_pos in (0, data.n_rows):
        raise DataError(
            f"{data.source}: every {noun} has label {int(n_pos > 0)} in column {data.label!r}; "
            "both classes (0 and 1) are needed"
        )


def header_line(features: Sequence[str], label: str) -> str:
    """The CSV header line for `features` then `label` (quoted where CSV needs it)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([*features, label])
    return buffer.getvalue()


def row_format(n_features: int, *, shortest: bool = False) -> str:
    """A %-format for one data line: `n_features` floats, then the 0/1 label.

    Either way a float reads back identically. By default `%.17g` (17
    significant digits always round-trip), which formats computed values,
    such as z-scores, about 1.6 times faster than `repr`. With `shortest`,
    `repr`'s shortest text that reads back to the float: for values copied
    from a file, which then come out as they went in (149.62, not
    149.62000000000001) and keep the file about its size.
    """
    return ("%r," if shortest else "%.17g,") * n_features + "%d\n"
