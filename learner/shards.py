"""The one layout of peer shards, `DIR/peer_<k>.csv` (k from 1), and its upkeep.

Raw institution files (`fedd data split --out DIR`) and standardized shards
(`fedd data prepare --out-root ROOT` writes `ROOT/clients/peer_<k>.csv`) share
it, and `fedd start peer --shard auto --data-dir DIR` reads shard k from it.

A shard directory is fedd's own output. Before writing K shards a writer calls
`stale_entries`: it refuses, naming it, anything fedd would not have written
there, and lists what a run with K shards leaves stale, namely `peer_<k>.csv`
for k > K and the directories of the old layout (`peer_<k>/` holding only
fedd's `train.csv`). After writing, `remove_stale` removes those, so that
`--shard auto` cannot hand out a shard of an earlier run.

Also here: `check_shards`, the rule every writer applies to the cut (no empty
shard; a shard with one class is noted), and what the writers' summaries
share: `SplitSummary` (one written file of rows), `input_line` and
`summary_lines`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.errors import DataError
from fedd.learner.partition import PartitionScheme

__all__ = [
    "SplitSummary",
    "check_shards",
    "input_line",
    "remove_stale",
    "shard_numbers",
    "shard_path",
    "stale_entries",
    "summary_lines",
]

_SHARD_FILE = re.compile(r"peer_([1-9][0-9]*)\.csv")
_OLD_SHARD_DIR = re.compile(r"peer_[1-9][0-9]*")
_OLD_SHARD_FILE = "train.csv"


@dataclass(frozen=True, slots=True)
class SplitSummary:
    """One written file of rows: what it is, where, how many rows and positives."""

    name: str
    path: Path
    rows: int
    positives: int


def input_line(path: Path, rows: int, features: int, positives: int) -> str:
    """The summary's first line: what was read."""
    rate = 100.0 * positives / rows
    return f"input   {path}: {rows} rows, {features} features, {positives} positives ({rate:.3f}%)"


def summary_lines(files: Sequence[SplitSummary]) -> list[str]:
    """One aligned line per file: name, rows, positives, path."""
    width = max(len(f.name) for f in files)
    return [
        f"{f.name:<{width}}  {f.rows:>8} rows  {f.positives:>6} positives  -> {f.path}"
        for f in files
    ]


def shard_path(directory: Path, k: int) -> Path:
    """The file of shard `k` (1-based) in `directory`."""
    if k < 1:
        raise ValueError("shards are numbered from 1")
    return directory / f"peer_{k}.csv"


def shard_numbers(directory: Path) -> list[int]:
    """The numbers k of the `peer_<k>.csv` files in `directory`, ascending.

    Raises `DataError` when the directory is missing or cannot be listed.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise DataError(f"{directory}: no such directory") from None
    except NotADirectoryError:
        raise DataError(f"{directory}: not a directory") from None
    except OSError as exc:
        raise DataError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    return sorted(
        int(m.group(1))
        for name in names
        if (m := _SHARD_FILE.fullmatch(name)) and (directory / name).is_file()
    )


def stale_entries(directory: Path, peers: int) -> list[Path]:
    """What writing `peers` shards to `directory` leaves stale, to pass to `remove_stale`.

    Raises `DataError` naming the first entry fedd did not write (anything
    but a `peer_<k>.csv` file or an old-layout `peer_<k>/` directory holding
    at most its `train.csv`), or when the directory cannot be listed. A
    directory that does not exist yet holds nothing stale.
    """
    if peers < 1:
        raise ValueError("peers must be >= 1")
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise DataError(f"{directory}: not a directory; shards need a directory") from None
    except OSError as exc:
        raise DataError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    stale = []
    for entry in entries:
        if (m := _SHARD_FILE.fullmatch(entry.name)) and entry.is_file():
            if int(m.group(1)) > peers:
                stale.append(Path(entry.path))
        elif _OLD_SHARD_DIR.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            _check_old_shard_dir(directory, Path(entry.path))
            stale.append(Path(entry.path))
        else:
            raise _foreign(directory, entry.name)
    return stale


def _check_old_shard_dir(directory: Path, path: Path) -> None:
    try:
        inside = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{path}: cannot list: {exc.strerror or exc}") from None
    for entry in inside:
        if entry.name != _OLD_SHARD_FILE or not entry.is_file(follow_symlinks=False):
            raise _foreign(directory, f"{path.name}/{entry.name}")


def _foreign(directory: Path, name: str) -> DataError:
    return DataError(
        f"{directory} holds {name}, which fedd did not write: fedd keeps only its "
        f"peer_<k>.csv shards there and removes stale ones; move {name} away, or choose "
        "another directory"
    )


def remove_stale(stale: Sequence[Path]) -> list[str]:
    """Remove what `stale_entries` listed; return one note per removal.

    Raises `DataError` naming the entry that cannot be removed.
    """
    notes = []
    for path in stale:
        try:
            if path.is_dir() and not path.is_symlink():
                (path / _OLD_SHARD_FILE).unlink(missing_ok=True)
                path.rmdir()
                notes.append(f"removed {path}/: the old peer_<k>/train.csv layout")
            else:
                path.unlink(missing_ok=True)
                notes.append(f"removed {path}: left over from a run with more peers")
        except OSError as exc:
            raise DataError(f"{path}: cannot remove: {exc.strerror or exc}") from None
    return notes


def check_shards(
    labels: Sequence[int],
    shards: Sequence[Sequence[int]],
    scheme: PartitionScheme,
    alpha: float,
    *,
    noun: str = "row",
) -> list[str]:
    """Every shard needs rows; one holding a single class is allowed, with a note.

    Label skew is the point of --partition dirichlet: with a small alpha some
    institutions see no fraud at all, as real ones may. Such a peer still
    trains (it learns how normal transactions look), but its local ROC-AUC
    is undefined. `noun` words the messages ("row", "training row").
    Raises `DataError` for an empty shard.
    """
    notes = []
    for k, shard in enumerate(shards, 1):
        if not shard:
            raise DataError(
                f"peer_{k} would get no {noun}s at all under --partition {scheme} "
                f"--alpha {alpha}: use fewer peers, a larger --alpha, or --partition iid"
            )
        positives = sum(map(labels.__getitem__, shard))
        if positives in (0, len(shard)):
            only = 1 if positives else 0
            if scheme == "iid":
                why = f"fewer {noun}s with label {1 - only} than peers"
            else:
                kind = "label" if scheme == "dirichlet" else "size"
                why = f"{kind} skew of --partition {scheme} --alpha {alpha}"
            notes.append(
                f"peer_{k} holds only {noun}s with label {only} ({why}); "
                "it trains, but its local ROC-AUC is undefined"
            )
    return notes
