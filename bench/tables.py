"""Printing and saving a benchmark's rows (dataclass instances, one kind per table)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any


def print_rows(rows: Sequence[Any]) -> None:
    """The rows as a right-aligned table under their field names."""
    names = [f.name for f in fields(rows[0])]
    cells = [[str(getattr(row, name)) for name in names] for row in rows]
    widths = [max(len(name), *(len(c[i]) for c in cells)) for i, name in enumerate(names)]
    print("  ".join(name.rjust(w) for name, w in zip(names, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


def write_csv(rows: Sequence[Any], path: str | Path) -> None:
    """The rows as CSV, a header of field names first; None is written as an empty cell."""
    names = [f.name for f in fields(rows[0])]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows([getattr(row, name) for name in names] for row in rows)
