"""An institution's own rows, split into training rows and a held-out set.

A peer scores each new global model on rows it did not train on; the demo
and the tests rebuild the very same split from the same file, so the one
function below is the only definition of it.

The split is stratified and seeded: for each class present, round(n *
fraction) of its rows are held out (at most n - 1, so the training rows keep
every class the file has), chosen by a shuffle seeded with `seed` alone. Rows
keep their file order on both sides. A fraction of 0 holds nothing out.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from fedd.learner.dataset import Dataset

__all__ = ["Split", "concat", "select", "split_holdout"]


@dataclass(frozen=True, slots=True)
class Split:
    """Training rows and held-out rows of one file (`holdout` None at fraction 0)."""

    train: Dataset
    holdout: Dataset | None


def split_holdout(data: Dataset, fraction: float, seed: int = 42) -> Split:
    """Hold out `fraction` of each class of `data`, seeded.

    Raises ValueError unless 0 <= fraction < 1.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the holdout fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return Split(data, None)
    rng = random.Random(f"fedd-holdout-{seed}")
    held: list[int] = []
    for cls in (0, 1):
        members = [i for i, label in enumerate(data.y) if label == cls]
        k = min(round(len(members) * fraction), max(len(members) - 1, 0))
        rng.shuffle(members)
        held.extend(members[:k])
    if not held:
        return Split(data, None)
    held.sort()
    chosen = set(held)
    train = [i for i in range(data.n_rows) if i not in chosen]
    return Split(
        select(data, train, f"{data.source} (training rows)"),
        select(data, held, f"{data.source} (held-out rows)"),
    )


def select(data: Dataset, rows: Sequence[int], source: str) -> Dataset:
    """The given rows of `data`, in the order given, as a new dataset."""
    d = data.n_features
    x: array[float] = array("d")
    for i in rows:
        x.extend(data.x[i * d : (i + 1) * d])
    return Dataset(source, data.features, data.label, x, bytes(map(data.y.__getitem__, rows)))


def concat(parts: Sequence[Dataset], source: str) -> Dataset:
    """The rows of `parts` one after the other; every part must have the same columns.

    Raises ValueError for no parts or parts whose feature columns differ.
    """
    if not parts:
        raise ValueError("nothing to concatenate")
    features = parts[0].features
    if any(p.features != features for p in parts):
        raise ValueError("the datasets have different feature columns")
    x: array[float] = array("d")
    for p in parts:
        x.extend(p.x)
    return Dataset(source, features, parts[0].label, x, b"".join(p.y for p in parts))
