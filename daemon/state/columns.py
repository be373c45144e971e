"""Typed columns of the CSV state files, and the tables they make.

A `Column` checks a value, parses it from a cell and renders it back, by the
conventions of `daemon.state.csvfile` (exact integers, floats by `repr`, text
without control characters). A `Table` is a file's name, its columns in
header order and whether it is appended or rewritten. Row classes check
their fields against a table's columns with `normalize_fields`, so that
nothing written fails to read back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import check_peer_id

__all__ = [
    "MAX_COUNT",
    "MAX_TEXT",
    "Column",
    "Table",
    "float_column",
    "int_column",
    "key_value_table",
    "normalize_fields",
    "peer_column",
    "text_column",
]

MAX_COUNT = 2**63 - 1
MAX_TEXT = 4096  # longest text cell: a reason or a setting, never a document

_INT = re.compile(r"-?[0-9]{1,19}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV column: how a value is checked, read from a cell and written to one.

    `check(value)` returns the normalized value (an int stays an int, a number
    becomes a float) or raises `ValueError` with the reason; `parse(cell)`
    turns the cell's text into a value for `check`; `render(value)` writes a
    checked value.
    """

    name: str
    check: Callable[[object], Any]
    parse: Callable[[str], object]
    render: Callable[[Any], str]


def int_column(name: str, lo: int = 0, hi: int = MAX_COUNT) -> Column:
    """Exact integers (never a bool) in [lo, hi], written in decimal."""

    def check(value: object) -> int:
        if type(value) is not int:
            raise ValueError("must be an integer")
        if not lo <= value <= hi:
            raise ValueError(f"must be in [{lo}, {hi}], got {value}")
        return value

    def parse(cell: str) -> object:
        if _INT.fullmatch(cell) is None:
            raise ValueError(f"{_show(cell)} is not an integer")
        return int(cell)

    return Column(name, check, parse, str)


def float_column(
    name: str, lo: float = 0.0, hi: float = math.inf, *, nan_as_empty: bool = False
) -> Column:
    """Finite numbers in [lo, hi] as floats, written with `repr`.

    With `nan_as_empty`, nan also passes (an undefined value, such as the
    ROC-AUC of a single class) and is written as an empty cell, which reads
    back as nan: spreadsheets and CSV readers take an empty cell for a missing
    value, while not all of them read the text `nan`.
    """

    def check(value: object) -> float:
        if type(value) is bool or not isinstance(value, int | float):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("is too large for a float") from None
        if math.isnan(number) and nan_as_empty:
            return number
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, got {number!r}")
        if not lo <= number <= hi:
            raise ValueError(f"must be in [{lo!r}, {hi!r}], got {number!r}")
        return number

    def parse(cell: str) -> object:
        if cell == "" and nan_as_empty:
            return math.nan
        if _FLOAT.fullmatch(cell) is None:
            raise ValueError(f"{_show(cell)} is not a number")
        return float(cell)

    def render(value: float) -> str:
        return "" if math.isnan(value) else repr(value)

    return Column(name, check, parse, render)


def text_column(
    name: str,
    *,
    choices: Sequence[str] = (),
    pattern: re.Pattern[str] | None = None,
    allow_empty: bool = False,
    max_length: int = MAX_TEXT,
) -> Column:
    """Text without control characters (so one record stays one line).

    `choices` restricts it to those values; `pattern` must match it whole.
    """

    def check(value: object) -> str:
        if type(value) is not str:
            raise ValueError("must be a string")
        if not value and not allow_empty:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        if _CONTROL.search(value):
            raise ValueError(f"{_show(value)} holds a control character")
        if choices and value not in choices:
            raise ValueError(f"{_show(value)} is not one of {', '.join(choices)}")
        if value and pattern is not None and pattern.fullmatch(value) is None:
            raise ValueError(f"{_show(value)} does not match {pattern.pattern}")
        return value

    return Column(name, check, str, str)


def peer_column(name: str, *, allow_empty: bool = False) -> Column:
    """A peer id (`crypto.secagg.fields.check_peer_id`), or empty if allowed."""

    def check(value: object) -> str:
        if value == "" and allow_empty:
            return ""
        try:
            return str(check_peer_id(value, "it"))
        except LocalProtocolError as exc:
            shown = _show(value) if type(value) is str else type(value).__name__
            raise ValueError(f"{shown} is not a valid id: {exc.reason}") from None

    return Column(name, check, str, str)


def normalize_fields(obj: object, columns: Iterable[Column]) -> None:
    """Check the fields of a frozen dataclass named like `columns` and store the
    normalized values (an int given for a float becomes a float).

    Raises `ValueError` naming the field: for the row classes this is the
    caller passing a bad argument.
    """
    for column in columns:
        try:
            value = column.check(getattr(obj, column.name))
        except ValueError as exc:
            raise ValueError(f"{type(obj).__name__}.{column.name} {exc}") from None
        object.__setattr__(obj, column.name, value)


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file's name, its columns (the header, in order) and how it grows."""

    name: str
    columns: tuple[Column, ...]
    appended: bool

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def checked(self, *values: object) -> tuple[Any, ...]:
        """`values`, one per column, each after its column's check (`ValueError`)."""
        return tuple(
            column.check(value) for column, value in zip(self.columns, values, strict=True)
        )

    def cells(self, values: Sequence[object]) -> list[str]:
        """The cells of one row of checked values, in column order."""
        if len(values) != len(self.columns):
            raise ValueError(f"{self.name}: {len(values)} values for {len(self.columns)} columns")
        return [column.render(value) for column, value in zip(self.columns, values, strict=True)]


def key_value_table(name: str) -> Table:
    """A rewritten `key,value` file of text settings."""
    return Table(name, (text_column("key"), text_column("value", allow_empty=True)), appended=False)


def _show(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
