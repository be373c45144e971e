"""The run's federated feature statistics: stats.csv, and where they came from.

stats.csv has the columns of `fedd data prepare`'s processed/stats.csv
(`column,mean,std,note`, one row per feature in order; every std above 0).
Where the figures came from (the round, and how many peers, rows and
positives contributed) is kept in run.csv (`daemon.state.runfile`),
written in the same commit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fedd.daemon.state.columns import Table, float_column, text_column
from fedd.daemon.state.csvfile import Contents, state_error
from fedd.learner.scaling import ColumnStats

__all__ = ["STATS", "Statistics", "read_columns", "stats_row"]

STATS = Table(
    "stats.csv",
    (
        text_column("column"),
        float_column("mean", -math.inf, math.inf),
        float_column("std", math.ulp(0.0)),
        text_column("note", allow_empty=True),
    ),
    appended=False,
)


@dataclass(frozen=True, slots=True)
class Statistics:
    """The run's federated feature statistics, and where they came from.

    `columns` are stats.csv's rows (one per feature, in order); they came
    from round `round`, from `peers` peers holding `rows` training rows of
    which `positives` positive. Each column is checked as stats.csv's
    columns check a cell and stored normalized (a mean given as an int
    becomes a float).
    """

    columns: tuple[ColumnStats, ...]
    round: int
    peers: int
    rows: int
    positives: int

    def __post_init__(self) -> None:
        columns = []
        for stat in self.columns:
            try:
                columns.append(stats_row(stat.name, stat.mean, stat.std, stat.note))
            except ValueError as exc:
                raise ValueError(f"Statistics {stat.name!r}: {exc}") from None
        object.__setattr__(self, "columns", tuple(columns))
        if not self.columns:
            raise ValueError("statistics need at least one column")
        for name, value in (("round", self.round), ("peers", self.peers), ("rows", self.rows)):
            if type(value) is not int or value < 1:
                raise ValueError(f"Statistics.{name} must be an integer >= 1")
        if type(self.positives) is not int or not 0 <= self.positives <= self.rows:
            raise ValueError("Statistics.positives must be an integer in [0, rows]")

    def values(self) -> list[tuple[object, ...]]:
        """stats.csv's rows, in its column order."""
        return [(s.name, s.mean, s.std, s.note) for s in self.columns]


def stats_row(*values: object) -> ColumnStats:
    """One row of stats.csv, each cell checked by its column (`ValueError` naming
    the column): what `read_table` makes of stats.csv's rows."""
    checked = []
    for column, value in zip(STATS.columns, values, strict=True):
        try:
            checked.append(column.check(value))
        except ValueError as exc:
            raise ValueError(f"{column.name} {exc}") from None
    name, mean, std, note = checked
    return ColumnStats(name, mean, std, note)


def read_columns(
    contents: Contents[ColumnStats], features: Sequence[str]
) -> tuple[ColumnStats, ...]:
    """stats.csv's rows; StateError, naming the row, unless they are `features` in order."""
    for index, (number, stat) in enumerate(contents.rows):
        want = features[index] if index < len(features) else None
        if stat.name != want:
            expected = f"feature {want!r}" if want else "no more rows"
            raise state_error(
                contents.path,
                f"expected {expected} (run.csv's features, in order), found {stat.name!r}",
                row=number,
                column="column",
            )
    if len(contents.rows) != len(features):
        raise state_error(
            contents.path,
            f"{len(contents.rows)} rows for run.csv's {len(features)} features: rows are missing",
        )
    return tuple(stat for _, stat in contents.rows)
