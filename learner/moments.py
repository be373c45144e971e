"""Federated feature statistics: exact sums on each peer, the global z-score from their totals.

Theory of operation
-------------------
Each feature value x becomes the integer q = round(x * 2^64). Values are
below 2^62 in magnitude (`dataset.MAX_MAGNITUDE`, checked when a file is
read), so |q| < 2^126 and nothing is ever clamped. A peer contributes its row
count, its count of positive labels and, per feature, S = sum q and
Q = sum q^2: Python integers, exact. The secure aggregate adds them up, still
exactly, so the hub holds the exact moments of the fixed-point values q / 2^64
over the union of the contributing peers' rows, and computes

    mean = S / (N 2^64)        var = (N Q - S^2) / (N^2 2^128)

in rational arithmetic. This is the numerical stability that the usual two
passes (means first, then squared deviations about them) buy, without the
second pass: with exact integers there is no cancellation, and a peer that
drops out cannot leave the two passes describing different peers. The only
errors are the fixed-point rounding of each value (at most 2^-65, so the mean
and the standard deviation each move by at most 2^-65) and one correctly
rounded conversion of each result to a float.

The standard deviation is the population one, as `learner.prepare` computes
it; a column with no variance gets std 1 and a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from operator import mul

from fedd.learner.dataset import Dataset
from fedd.learner.scaling import ZERO_VARIANCE_NOTE, ColumnStats

__all__ = ["FRACTION_BITS", "SQUARE_BITS", "SUM_BITS", "Moments", "local_moments", "statistics"]

FRACTION_BITS = 64
_SCALE = float(1 << FRACTION_BITS)
# Bound on one peer's rows, so that its sums have a known size.
MAX_ROWS = 1 << 40
# |S| < MAX_ROWS * 2^126 and 0 <= Q < MAX_ROWS * 2^252, with a sign bit.
SUM_BITS = 40 + 126 + 1
SQUARE_BITS = 40 + 252 + 1


@dataclass(frozen=True, slots=True)
class Moments:
    """Row and label counts and, per feature, the sums of q and of q^2 (exact integers)."""

    rows: int
    positives: int
    sums: tuple[int, ...]
    squares: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.sums) != len(self.squares):
            raise ValueError("one sum and one sum of squares per feature")
        if not 0 <= self.positives <= self.rows:
            raise ValueError("positives must be between 0 and the row count")
        if any(q < 0 for q in self.squares):
            raise ValueError("a sum of squares is never negative")


def local_moments(data: Dataset) -> Moments:
    """The exact moments of one peer's rows.

    Raises ValueError if `data` has more than MAX_ROWS rows.
    """
    if data.n_rows > MAX_ROWS:
        raise ValueError(f"more than {MAX_ROWS} rows")
    d = data.n_features
    sums, squares = [], []
    for j in range(d):
        # x * 2^64 is exact in binary floating point; round() then gives
        # the nearest integer exactly, as a Python int.
        q = list(map(round, map(_SCALE.__mul__, data.x[j::d])))
        sums.append(sum(q))
        squares.append(sum(map(mul, q, q)))
    return Moments(data.n_rows, data.n_positives, tuple(sums), tuple(squares))


def statistics(total: Moments, features: Sequence[str]) -> list[ColumnStats]:
    """Mean and population standard deviation of each feature from summed moments.

    Raises ValueError if there are no rows, the moments hold another number
    of features, or they are inconsistent (a negative variance: sums that
    cannot come from real rows).
    """
    if total.rows < 1:
        raise ValueError("no rows contributed to the statistics")
    if len(total.sums) != len(features):
        raise ValueError(f"moments of {len(total.sums)} features, expected {len(features)}")
    n = total.rows
    stats = []
    for name, s, q in zip(features, total.sums, total.squares, strict=True):
        mean = Fraction(s, n << FRACTION_BITS)
        numerator = n * q - s * s
        if numerator < 0:
            raise ValueError(f"{name}: the sums give a negative variance")
        variance = Fraction(numerator, (n * n) << (2 * FRACTION_BITS))
        # sqrt of the correctly rounded variance: one more rounding, relative 2^-53.
        std = math.sqrt(variance)
        if numerator == 0 or std == 0.0:
            stats.append(ColumnStats(name, float(mean), 1.0, ZERO_VARIANCE_NOTE))
        else:
            stats.append(ColumnStats(name, float(mean), std))
    return stats
