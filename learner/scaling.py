"""Feature scaling: the z-score of each feature, and a check for data that has none.

Logistic regression trained by SGD needs features on comparable scales: raw
finance columns (amounts in the thousands, timestamps in the hundreds of
thousands) make the loss explode and the model useless. Statistics come
either from pooled rows (`learner.prepare`, for simulations and the
centralized baseline) or from the federation's secure sums
(`learner.moments`); both are applied here.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle
from operator import sub, truediv

from fedd.learner.dataset import Dataset

__all__ = [
    "UNSCALED_MEAN",
    "UNSCALED_STD",
    "ZERO_VARIANCE_NOTE",
    "ColumnStats",
    "standardize",
    "unscaled_columns",
]

ZERO_VARIANCE_NOTE = "zero variance in the training rows; std set to 1"

# A feature this far from standard scale was clearly not standardized.
UNSCALED_MEAN = 3.0
UNSCALED_STD = 10.0


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """Standardization of one feature: `(value - mean) / std`."""

    name: str
    mean: float
    std: float
    note: str = ""


def standardize(data: Dataset, stats: Sequence[ColumnStats]) -> Dataset:
    """`data` with every feature z-scored by `stats` (one per feature, same names, in order).

    Raises ValueError if the statistics name other features.
    """
    if tuple(s.name for s in stats) != data.features:
        raise ValueError("the statistics are for other feature columns")
    means = cycle([s.mean for s in stats])
    stds = cycle([s.std for s in stats])
    x = array("d", map(truediv, map(sub, data.x, means), stds))
    return Dataset(data.source, data.features, data.label, x, data.y)


def unscaled_columns(data: Dataset) -> list[str]:
    """The features whose mean or spread shows they were not standardized.

    A feature counts as unscaled when |mean| > 3 or its population standard
    deviation exceeds 10 over `data`'s rows; each comes with its figures.
    """
    d, n = data.n_features, data.n_rows
    found = []
    for j, name in enumerate(data.features):
        column = data.x[j::d]
        mean = math.fsum(column) / n
        std = math.dist(column, [mean] * n) / math.sqrt(n)
        if abs(mean) > UNSCALED_MEAN or std > UNSCALED_STD:
            found.append(f"{name} (mean {mean:.4g}, std {std:.4g})")
    return found
