"""What the state-store tests of both daemons use to look at and damage files."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(state_dir: Path) -> dict[str, bytes]:
    """Every file of `state_dir` by name, to show that nothing changed."""
    return {p.name: p.read_bytes() for p in sorted(state_dir.iterdir())}


def set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Replace one cell (row 1 is the header) and write the file back as fedd would."""
    rows = list(csv.reader(path.read_text().splitlines()))
    rows[row - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())
