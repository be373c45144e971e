"""`fedd data prepare`: split, standardize and shard one labelled CSV.

Layout written under `out_root`:

    processed/train.csv      standardized training rows (every peer's rows)
    processed/test.csv       standardized held-out rows
    processed/stats.csv      column, mean, std, note: the training rows' statistics
    processed/partition.csv  peer, rows, positives
    clients/peer_1.csv ... clients/peer_K.csv

`clients/` is a shard directory of `learner.shards`: what a run with fewer
peers leaves stale there is removed, and a file fedd did not write there is
refused before anything is written.

Every input row lands in exactly one place: the test set or exactly one
peer's shard (and then also in `processed/train.csv`). Rows keep their input
order within each file. Features keep their column order, the label comes
last, written 0/1. Standardization is the z-score with the mean and the
population standard deviation of the training rows only; a column without
variance in the training rows gets std 1 and a note.

One `random.Random(seed)` drives the split and then the partition, so the
same input and options give identical files.
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from operator import sub, truediv
from pathlib import Path

from fedd.learner.atomic import DATA_FILE_MODE, atomic_text_writer
from fedd.learner.dataset import (
    Dataset,
    header_line,
    read_dataset,
    require_both_classes,
    row_format,
)
from fedd.learner.errors import DataError
from fedd.learner.partition import PartitionScheme, by_class, partition, stratified_split
from fedd.learner.progress import Progress, StagedProgress, stage
from fedd.learner.scaling import ZERO_VARIANCE_NOTE, ColumnStats
from fedd.learner.shards import (
    SplitSummary,
    check_shards,
    input_line,
    remove_stale,
    shard_path,
    stale_entries,
    summary_lines,
)

__all__ = ["PrepareReport", "column_stats", "prepare"]


@dataclass(frozen=True, slots=True)
class PrepareReport:
    """What `prepare` read and wrote."""

    input: Path
    rows: int
    positives: int
    features: int
    train: SplitSummary
    test: SplitSummary
    peers: tuple[SplitSummary, ...]
    stats_path: Path
    partition_path: Path
    notes: tuple[str, ...]

    def lines(self) -> list[str]:
        """A short human-readable summary, one line per file."""
        out = [input_line(self.input, self.rows, self.features, self.positives)]
        out.extend(summary_lines((self.train, self.test, *self.peers)))
        out.append(f"stats   {self.stats_path} (training rows only)")
        out.append(f"shards  {self.partition_path}")
        out.extend(f"note: {note}" for note in self.notes)
        return out


def column_stats(data: Dataset, rows: Sequence[int]) -> list[ColumnStats]:
    """Mean and population standard deviation of each feature over `rows`.

    A column whose values are all equal over `rows` gets std 1 and a note.
    """
    if not rows:
        raise ValueError("no rows to compute statistics on")
    d, n = data.n_features, len(rows)
    stats = []
    for j, name in enumerate(data.features):
        column = data.x[j::d]
        values = list(map(column.__getitem__, rows))
        mean = math.fsum(values) / n
        # The RMS distance from the mean, computed in C with extended precision.
        std = math.dist(values, [mean] * n) / math.sqrt(n)
        if std > 0.0:
            stats.append(ColumnStats(name, mean, std))
        else:
            stats.append(ColumnStats(name, mean, 1.0, ZERO_VARIANCE_NOTE))
    return stats


def prepare(
    input_path: Path,
    peers: int,
    out_root: Path,
    *,
    label: str = "Class",
    ignore: Collection[str] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
    test_size: float = 0.2,
    seed: int = 42,
    scheme: PartitionScheme = "iid",
    alpha: float = 0.5,
    progress: StagedProgress | None = None,
) -> PrepareReport:
    """Split `input_path` into train/test, standardize, cut `peers` shards, write all.

    The columns named in `ignore` are left out of every file; the input's
    text is in `encoding`, and its missing cells read as `fill_missing`
    (see `read_dataset`).

    Raises `DataError` when `out_root/clients` holds a file fedd did not write
    (before writing anything; see `learner.shards.stale_entries`), when the
    input is unusable (see `read_dataset`), has one class, has too few rows of
    a class for the split or for `peers` shards, or when a shard would get no
    rows, or when the outputs cannot be written; `ValueError` for bad
    arguments. `progress` hears the reading and the
    writing of the rows.
    """
    if peers < 1:
        raise ValueError("peers must be >= 1")
    if not 0.0 < test_size < 1.0:
        raise ValueError("test_size must be in (0, 1)")
    clients = out_root / "clients"
    stale = stale_entries(clients, peers)
    data = read_dataset(
        input_path,
        label,
        stage(progress, f"read {input_path.name}"),
        ignore=ignore,
        encoding=encoding,
        fill_missing=fill_missing,
    )
    _check_classes(data)
    rng = random.Random(seed)
    train, test = stratified_split(data.y, test_size, rng)
    _check_peers(data, train, peers)
    shards = partition(data.y, train, peers, scheme, rng, alpha=alpha)
    skew_notes = check_shards(data.y, shards, scheme, alpha, noun="training row")
    stats = column_stats(data, train)

    processed = out_root / "processed"
    paths = [processed / "test.csv", processed / "train.csv"]
    paths += [shard_path(clients, k) for k in range(1, peers + 1)]
    # Destination of each row: 0 = test, k >= 1 = peer k (and train).
    where = bytearray(data.n_rows)
    for k, shard in enumerate(shards, 1):
        for i in shard:
            where[i] = k
    _write_standardized(data, stats, where, paths, stage(progress, "write shards"))

    stats_path = processed / "stats.csv"
    with atomic_text_writer(stats_path, mode=DATA_FILE_MODE) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["column", "mean", "std", "note"])
        writer.writerows([s.name, s.mean, s.std, s.note] for s in stats)

    def summary(name: str, path: Path, indices: Sequence[int]) -> SplitSummary:
        return SplitSummary(name, path, len(indices), sum(map(data.y.__getitem__, indices)))

    peer_summaries = tuple(
        summary(f"peer_{k}", paths[k + 1], shard) for k, shard in enumerate(shards, 1)
    )
    partition_path = processed / "partition.csv"
    with atomic_text_writer(partition_path, mode=DATA_FILE_MODE) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["peer", "rows", "positives"])
        writer.writerows([p.name, p.rows, p.positives] for p in peer_summaries)

    notes = [f"{s.name}: {s.note}" for s in stats if s.note] + skew_notes
    notes += remove_stale(stale)
    return PrepareReport(
        input=input_path,
        rows=data.n_rows,
        positives=data.n_positives,
        features=data.n_features,
        train=summary("train", paths[1], train),
        test=summary("test", paths[0], test),
        peers=peer_summaries,
        stats_path=stats_path,
        partition_path=partition_path,
        notes=tuple(notes),
    )


def _check_classes(data: Dataset) -> None:
    require_both_classes(data)
    n_pos = data.n_positives
    for cls, count in ((0, data.n_rows - n_pos), (1, n_pos)):
        if count < 2:
            raise DataError(
                f"{data.source}: only 1 row has label {cls} in column {data.label!r}; "
                "a stratified train/test split needs at least 2 rows of each class"
            )


def _check_peers(data: Dataset, train: Sequence[int], peers: int) -> None:
    for cls, members in enumerate(by_class(data.y, train)):
        if len(members) < peers:
            raise DataError(
                f"{peers} peers need at least {peers} training rows of each class, but the "
                f"split leaves {len(members)} with label {cls}: use --peers {len(members)} "
                "or fewer, a smaller --test-size, or more data"
            )


def _write_standardized(
    data: Dataset,
    stats: Sequence[ColumnStats],
    where: bytearray,
    paths: Sequence[Path],
    progress: Progress | None,
) -> None:
    means = [s.mean for s in stats]
    stds = [s.std for s in stats]
    header = header_line(data.features, data.label)
    line_format = row_format(data.n_features)
    with contextlib.ExitStack() as stack:
        streams = [
            stack.enter_context(atomic_text_writer(path, mode=DATA_FILE_MODE)) for path in paths
        ]
        for stream in streams:
            stream.write(header)
        test, train, shards = streams[0], streams[1], streams[2:]
        rows = zip(data.rows(), where, data.y, strict=True)
        for number, (row, dest, cls) in enumerate(rows, 1):
            line = line_format % (*map(truediv, map(sub, row, means), stds), cls)
            if dest:
                train.write(line)
                shards[dest - 1].write(line)
            else:
                test.write(line)
            if progress is not None and number % 4096 == 0:
                progress(number, data.n_rows)
        if progress is not None:
            progress(data.n_rows, data.n_rows)
