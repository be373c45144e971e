"""For comparison only: the union of the institutions' rows, pooled.

A federation never does this; it is what the centralized baseline needs when
one machine holds every institution's file (`fedd data split`, the demo):
the union of the peers' training rows to train on, and the union of their
held-out rows to score both models on, each peer's rows split by the very
function its peer uses (`learner.holdout.split_holdout`), so that the rows
match the federation's exactly.

`write_pooled` writes them raw (`train.csv`, `holdout.csv`); `fedd train
centralized --standardize` z-scores them with the pooled training rows'
statistics, which the federation's secure sums reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import DATA_FILE_MODE, atomic_text_writer
from fedd.learner.dataset import Dataset, column_difference, header_line, read_dataset, row_format
from fedd.learner.errors import DataError
from fedd.learner.holdout import concat, split_holdout
from fedd.learner.shards import shard_numbers, shard_path

__all__ = ["Pooled", "pool_clients", "write_pooled"]


@dataclass(frozen=True, slots=True)
class Pooled:
    """Every peer's training rows, and every peer's held-out rows, in peer order."""

    train: Dataset
    holdout: Dataset
    peers: int


def pool_clients(
    clients: Path,
    *,
    label: str = "Class",
    fill_missing: float | None = None,
    holdout: float = 0.2,
    seed: int = 42,
) -> Pooled:
    """Pool the `peer_<k>.csv` files of `clients` as their peers split them (their
    missing cells read as `fill_missing`, as `read_dataset` says).

    Raises `DataError` for a directory without peer files, an unusable file,
    files with different columns, or no held-out rows at all.
    """
    numbers = shard_numbers(clients)
    if not numbers:
        raise DataError(f"{clients}: no peer_<k>.csv files; run `fedd data split` first")
    splits = [
        split_holdout(
            read_dataset(shard_path(clients, k), label, fill_missing=fill_missing), holdout, seed
        )
        for k in numbers
    ]
    first, features = shard_path(clients, numbers[0]), splits[0].train.features
    for k, s in zip(numbers, splits, strict=True):
        detail = column_difference(features, s.train.features)
        if detail:
            raise DataError(f"{shard_path(clients, k)}: other columns than {first} ({detail})")
    held = [s.holdout for s in splits if s.holdout is not None]
    if not held:
        raise DataError(f"{clients}: no held-out rows (holdout {holdout:g}): nothing to score on")
    return Pooled(
        concat([s.train for s in splits], "the peers' training rows"),
        concat(held, "the peers' held-out rows"),
        len(numbers),
    )


def write_pooled(pooled: Pooled, out_dir: Path) -> tuple[Path, Path]:
    """Write `out_dir/train.csv` and `out_dir/holdout.csv`, raw; returns their paths."""
    paths = out_dir / "train.csv", out_dir / "holdout.csv"
    for data, path in zip((pooled.train, pooled.holdout), paths, strict=True):
        line = row_format(data.n_features, shortest=True)
        with atomic_text_writer(path, mode=DATA_FILE_MODE) as stream:
            stream.write(header_line(data.features, data.label))
            for i in range(data.n_rows):
                stream.write(line % (*data.row(i), data.y[i]))
    return paths
