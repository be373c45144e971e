"""`fedd data split`: cut one raw labelled CSV into K raw institution files.

Writes `out_dir/peer_1.csv` ... `out_dir/peer_K.csv`, the layout of
`learner.shards`, for trying a federation on one machine: each file stands
for one institution's own transactions. Nothing is scaled or held out; that
is the federation's business. Every input row lands in exactly one file and
keeps its input order there. Each file has the header as read, features in
input order and the label last (written 0/1), as `prepare`'s files have; each
value is written so that it reads back to the identical float.

One `random.Random(seed)` drives the partition, so the same input and
options give identical files.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import DATA_FILE_MODE, atomic_text_writer
from fedd.learner.dataset import header_line, read_dataset, require_both_classes, row_format
from fedd.learner.errors import DataError
from fedd.learner.partition import PartitionScheme, partition
from fedd.learner.progress import StagedProgress, stage
from fedd.learner.shards import (
    SplitSummary,
    check_shards,
    input_line,
    remove_stale,
    shard_path,
    stale_entries,
    summary_lines,
)

__all__ = ["SplitReport", "split"]


@dataclass(frozen=True, slots=True)
class SplitReport:
    """What `split` read and wrote."""

    input: Path
    rows: int
    positives: int
    features: int
    peers: tuple[SplitSummary, ...]
    notes: tuple[str, ...]

    def lines(self) -> list[str]:
        """A short human-readable summary, one line per file, then the notes."""
        out = [input_line(self.input, self.rows, self.features, self.positives)]
        out.extend(summary_lines(self.peers))
        out.extend(f"note: {note}" for note in self.notes)
        return out


def split(
    input_path: Path,
    peers: int,
    out_dir: Path,
    *,
    label: str = "Class",
    ignore: Collection[str] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
    scheme: PartitionScheme = "iid",
    alpha: float = 0.5,
    seed: int = 42,
    progress: StagedProgress | None = None,
) -> SplitReport:
    """Cut `input_path` into `peers` raw files in `out_dir` by `scheme`; remove stale ones.

    The columns named in `ignore` are left out of the files; the input's
    text is in `encoding`, and its missing cells read as `fill_missing`
    (see `read_dataset`).

    Raises `DataError`, before writing anything, when `out_dir` holds a file
    fedd did not write (see `learner.shards.stale_entries`), when the input
    is unusable (see `read_dataset`) or has one class, has fewer rows than
    `peers`, or when a peer would get no rows; also when the outputs cannot
    be written. `ValueError` for bad arguments. `progress` hears the reading
    and the writing of the rows.
    """
    if peers < 1:
        raise ValueError("peers must be >= 1")
    stale = stale_entries(out_dir, peers)
    data = read_dataset(
        input_path,
        label,
        stage(progress, f"read {input_path.name}"),
        ignore=ignore,
        encoding=encoding,
        fill_missing=fill_missing,
    )
    require_both_classes(data)
    if data.n_rows < peers:
        raise DataError(
            f"{input_path}: {data.n_rows} rows cannot give {peers} peers a row each: "
            f"use --peers {data.n_rows} or fewer"
        )
    shards = partition(data.y, range(data.n_rows), peers, scheme, random.Random(seed), alpha=alpha)
    notes = check_shards(data.y, shards, scheme, alpha)

    header = header_line(data.features, data.label)
    line_format = row_format(data.n_features, shortest=True)
    written = stage(progress, "write shards")
    done = 0
    summaries = []
    for k, shard in enumerate(shards, 1):
        path = shard_path(out_dir, k)
        with atomic_text_writer(path, mode=DATA_FILE_MODE) as stream:
            stream.write(header)
            for number, i in enumerate(shard, done + 1):
                stream.write(line_format % (*data.row(i), data.y[i]))
                if written is not None and number % 4096 == 0:
                    written(number, data.n_rows)
        done += len(shard)
        positives = sum(map(data.y.__getitem__, shard))
        summaries.append(SplitSummary(f"peer_{k}", path, len(shard), positives))
    if written is not None:
        written(data.n_rows, data.n_rows)

    notes += remove_stale(stale)
    return SplitReport(
        input=input_path,
        rows=data.n_rows,
        positives=data.n_positives,
        features=data.n_features,
        peers=tuple(summaries),
        notes=tuple(notes),
    )
