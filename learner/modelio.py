"""Logistic-regression models as CSV.

Format (UTF-8, comma-separated, one header row):

    parameter,value
    bias,-8.417...
    Time,-0.0213...
    V1,0.0412...
    ...

The first data row is `bias`; then one row per feature, named as in the data
and in the data's column order. Values are written with `repr`, so a saved
model reads back to the identical floats. The parameter vector is the rows in
order: `[bias, w_1, ..., w_d]`.

Loading validates everything and raises `DataError` naming the file, the row
(the header is row 1) and the column: a wrong header, a first row that is not
`bias`, a duplicate or empty feature name, a ragged row, a value that is not a
finite number, no feature rows, or features that differ from the ones
expected.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import atomic_text_writer
from fedd.learner.errors import DataError

__all__ = ["HEADER", "Model", "load_model", "save_model"]

HEADER = ("parameter", "value")


@dataclass(frozen=True, slots=True)
class Model:
    """Feature names and the parameter vector `[bias, w_1..w_d]`, one weight per name."""

    features: tuple[str, ...]
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.params) != len(self.features) + 1:
            raise ValueError("params must hold the bias and one weight per feature")


def save_model(path: Path, features: Sequence[str], params: Sequence[float]) -> None:
    """Write the model atomically.

    Raises `ValueError` if the sizes or names are wrong, `DataError` if `path`
    cannot be written.
    """
    if len(params) != len(features) + 1:
        raise ValueError("params must hold the bias and one weight per feature")
    if len(set(features)) != len(features) or "bias" in features:
        raise ValueError("feature names must be unique and not 'bias'")
    with atomic_text_writer(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerow(["bias", repr(float(params[0]))])
        writer.writerows(
            [name, repr(float(value))] for name, value in zip(features, params[1:], strict=True)
        )


def load_model(path: Path, expected_features: Sequence[str] | None = None) -> Model:
    """Read and validate a model CSV; if given, its features must equal `expected_features`.

    Raises `DataError` (see the module docstring).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.reader(stream))
    except FileNotFoundError:
        raise DataError(f"{path}: no such model file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the model: {exc}") from None
    if not rows or tuple(cell.strip() for cell in rows[0]) != HEADER:
        raise DataError(f"{path} row 1: the header must be 'parameter,value'")
    names: list[str] = []
    params: list[float] = []
    for number, row in enumerate(rows[1:], 2):
        if row:  # blank lines are skipped
            name, value = _parameter(path, number, row, names)
            names.append(name)
            params.append(value)
    if len(params) < 2:
        raise DataError(f"{path}: no feature rows after 'bias'")
    features = tuple(names[1:])
    if expected_features is not None and features != tuple(expected_features):
        raise DataError(
            f"{path}: the model's features ({_brief(features)}) differ from the data's "
            f"({_brief(expected_features)})"
        )
    return Model(features=features, params=tuple(params))


def _parameter(
    path: Path, number: int, row: Sequence[str], seen: Sequence[str]
) -> tuple[str, float]:
    """Validate one `name,value` row; `seen` are the names of the rows before it."""
    if len(row) != 2:
        raise DataError(f"{path} row {number}: {len(row)} cells; expected 2 (parameter,value)")
    name = row[0].strip()
    first = not seen
    if first != (name == "bias"):
        what = "the first parameter must be 'bias'" if first else "'bias' appears twice"
        raise DataError(f"{path} row {number}, column 'parameter': {what}")
    if not name:
        raise DataError(f"{path} row {number}, column 'parameter': empty feature name")
    if name in seen:
        raise DataError(f"{path} row {number}, column 'parameter': {name!r} appears twice")
    try:
        value = float(row[1])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path} row {number}, column 'value': {row[1]!r} is not a finite number")
    return name, value


def _brief(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... {len(names)} in all" if len(names) > limit else shown
