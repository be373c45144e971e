"""Both models' scores of each held-out row, where one machine holds all the rows.

Only a simulation can write this file: `fedd demo` pools the peers' held-out
rows (as it pools their training rows for the baseline) and scores them with
the centralized model and with the federation's final model. With it, `fedd
report` compares the two on the same rows, pairing them (the paired
bootstrap of `learner.uncertainty`); a real federation never has it, since
no party sees another's rows.

`holdout_scores.csv`: a header, then one row per held-out row:

    round        the training round whose model `federated` is (the same on every row)
    label        0 or 1
    centralized  the centralized model's score (probability of fraud)
    federated    the federated model's score

Floats are written with `repr` (they read back exactly).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import atomic_text_writer
from fedd.learner.errors import DataError

__all__ = [
    "ROW_SCORES_FILE",
    "ROW_SCORES_HEADER",
    "RowScores",
    "read_row_scores",
    "write_row_scores",
]

ROW_SCORES_FILE = "holdout_scores.csv"
ROW_SCORES_HEADER = ("round", "label", "centralized", "federated")


@dataclass(frozen=True, slots=True)
class RowScores:
    """The rows' labels and both models' scores, and the federated model's round."""

    path: Path
    round: int
    labels: tuple[int, ...]
    centralized: tuple[float, ...]
    federated: tuple[float, ...]

    @property
    def positives(self) -> int:
        return sum(self.labels)


def write_row_scores(
    path: Path,
    round: int,
    labels: Sequence[int],
    centralized: Sequence[float],
    federated: Sequence[float],
) -> None:
    """Write the file atomically. Raises `DataError` if it cannot."""
    with atomic_text_writer(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(ROW_SCORES_HEADER)
        writer.writerows(
            (round, y, repr(c), repr(f))
            for y, c, f in zip(labels, centralized, federated, strict=True)
        )


def read_row_scores(path: Path) -> RowScores:
    """Read and validate the file. Raises `DataError` naming the file, the row (the
    header is row 1) and the column: a header other than `ROW_SCORES_HEADER`, no
    rows, a round that changes, a label other than 0 or 1, a score outside [0, 1]."""
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream, strict=True))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; `fedd demo` writes one") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the held-out rows' scores: {exc}") from None
    if not rows or tuple(rows[0]) != ROW_SCORES_HEADER:
        raise DataError(f"{path} row 1: the header must be {','.join(ROW_SCORES_HEADER)}")
    if len(rows) < 2:
        raise DataError(f"{path}: no rows")
    labels: list[int] = []
    centralized: list[float] = []
    federated: list[float] = []
    first = rows[1][0] if rows[1] else ""
    for number, row in enumerate(rows[1:], 2):
        if len(row) != len(ROW_SCORES_HEADER):
            raise DataError(f"{path} row {number}: {len(row)} cells, the header has 4")
        if row[0] != first:
            raise DataError(f"{path} row {number}, column 'round': {row[0]!r}, not {first!r}")
        if row[1] not in ("0", "1"):
            raise DataError(f"{path} row {number}, column 'label': {row[1]!r} is not 0 or 1")
        labels.append(int(row[1]))
        for column, cell, out in zip(
            ROW_SCORES_HEADER[2:], row[2:], (centralized, federated), strict=True
        ):
            try:
                score = float(cell)
            except ValueError:
                score = math.nan
            if not 0.0 <= score <= 1.0:
                raise DataError(
                    f"{path} row {number}, column {column!r}: {cell!r} is not a score in [0, 1]"
                )
            out.append(score)
    if not first.isdigit():
        raise DataError(f"{path} row 2, column 'round': {first!r} is not a round number")
    return RowScores(path, int(first), tuple(labels), tuple(centralized), tuple(federated))
