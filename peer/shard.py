"""Shards the hub assigns (`fedd start peer --shard auto`).

Identical peer replicas (`docker compose up --scale peer=N`) cannot each be
told which data to load; instead each asks the hub for a shard index k when
it registers and then loads shard k:

- from files: `DATA_DIR/peer_<k>.csv`, the one shard layout
  (`learner.shards`) that `fedd data split` and `fedd data prepare` write.
  The peer must announce its feature names in its Hello, before it knows k;
  it reads them from the header of the lowest-numbered shard file, since
  every shard of one split shares one header. Once k is known, the shard's
  own header must match what was announced.
- synthetic: `rows` transactions from `learner.synth` with seed `seed + k`,
  so shard k is the same wherever and however often it is made, and shards
  differ from each other. They are raw, like any institution's file: scaling
  is the federation's statistics stage, not the shard's.
"""

from __future__ import annotations

import csv
from array import array
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.dataset import Dataset, header_delimiter, read_dataset
from fedd.learner.errors import DataError
from fedd.learner.shards import shard_numbers, shard_path
from fedd.learner.synth import COLUMNS, KAGGLE_FRAUD_RATE, synth_rows

__all__ = ["SYNTH_LABEL", "ShardSource"]

SYNTH_LABEL = COLUMNS[-1]
_MAX_HEADER = 1 << 20


@dataclass(frozen=True)
class ShardSource:
    """Where shard k comes from: `data_dir`, or `synth_rows` synthetic rows."""

    data_dir: Path | None = None
    label: str = "Class"
    synth_rows: int = 0
    synth_seed: int = 42
    fraud_rate: float = KAGGLE_FRAUD_RATE

    def __post_init__(self) -> None:
        if (self.data_dir is None) == (self.synth_rows == 0):
            raise ValueError("a shard source is a data directory or a synthetic row count")
        if self.synth_rows < 0:
            raise ValueError("synth_rows must be positive")

    def describe(self, shard: int | None = None) -> str:
        if self.data_dir is None:
            which = f"shard {shard}" if shard else "shards"
            return f"synthetic {which} of {self.synth_rows} rows (seed {self.synth_seed}+k)"
        if shard:
            return str(self.path(shard))
        return f"{self.data_dir}/peer_<k>.csv"

    def path(self, shard: int) -> Path:
        """The file of shard `shard` (file-backed sources only)."""
        if self.data_dir is None:
            raise ValueError("a synthetic source has no files")
        return shard_path(self.data_dir, shard)

    def features(self) -> tuple[str, ...]:
        """The feature names every shard has, before any shard is loaded. Raises DataError."""
        if self.data_dir is None:
            return COLUMNS[:-1]
        first = self._first_file()
        header = _header(first)
        if self.label not in header:
            raise DataError(f"{first}: no label column {self.label!r} in the header")
        return tuple(name for name in header if name != self.label)

    def load(self, shard: int) -> Dataset:
        """Shard `shard` (1-based). Raises DataError when it is missing or unusable."""
        if shard < 1:
            raise ValueError("shards are numbered from 1")
        if self.data_dir is None:
            return self._synthetic(shard)
        path = self.path(shard)
        if not path.exists():
            raise DataError(
                f"the hub assigned shard {shard}, but {path} does not exist "
                f"(split or prepare at least {shard} shards, or limit the hub with --shards)"
            )
        return read_dataset(path, self.label)

    def _first_file(self) -> Path:
        assert self.data_dir is not None
        numbers = shard_numbers(self.data_dir)
        if not numbers:
            raise DataError(
                f"{self.data_dir}: no peer_<k>.csv shard files; run `fedd data split` or "
                "`fedd data prepare` first, or give the peer --synth-rows"
            )
        return self.path(numbers[0])

    def _synthetic(self, shard: int) -> Dataset:
        x: array[float] = array("d")
        y = bytearray()
        for time, v, amount, label in synth_rows(
            self.synth_rows, self.fraud_rate, self.synth_seed + shard
        ):
            x.append(float(time))
            x.extend(v)
            x.append(amount)
            y.append(label)
        return Dataset(f"synthetic shard {shard}", COLUMNS[:-1], SYNTH_LABEL, x, bytes(y))


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            line = f.readline(_MAX_HEADER)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    try:
        rows = list(csv.reader([line], delimiter=header_delimiter(line), strict=True))
    except csv.Error as exc:
        raise DataError(f"{path} row 1: malformed CSV header: {exc}") from None
    if not rows or not rows[0]:
        raise DataError(f"{path}: empty file (a header row is needed)")
    return [name.strip() for name in rows[0]]
