"""The run's federated feature statistics: stats.csv, and where they came from.

stats.csv has the columns of `fedd data prepare`'s processed/stats.csv
(`column,mean,std,note`, one row per feature in order). Where the figures
came from (the round, and how many peers, rows and positives contributed)
is kept in run.csv, written in the same commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedd.daemon.state.columns import Table, float_column, text_column
from fedd.learner.scaling import ColumnStats

__all__ = ["STATS", "Statistics"]

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
    which `positives` positive.
    """

    columns: tuple[ColumnStats, ...]
    round: int
    peers: int
    rows: int
    positives: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        for stat in self.columns:
            for column, value in zip(
                STATS.columns, (stat.name, stat.mean, stat.std, stat.note), strict=True
            ):
                try:
                    column.check(value)
                except ValueError as exc:
                    raise ValueError(f"Statistics {stat.name!r}: {column.name} {exc}") from None
        if not self.columns:
            raise ValueError("statistics need at least one column")
        for name, value in (("round", self.round), ("peers", self.peers), ("rows", self.rows)):
            if type(value) is not int or value < 1:
                raise ValueError(f"Statistics.{name} must be an integer >= 1")
        if type(self.positives) is not int or not 0 <= self.positives <= self.rows:
            raise ValueError("Statistics.positives must be an integer in [0, rows]")
