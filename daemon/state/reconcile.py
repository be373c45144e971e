"""What `HubStore.open` makes of the files it read: checks, the replay, repairs.

Everything here follows from how `HubStore.commit` writes (the theory of
operation is in `daemon.state.store`): global_model.csv holds the bias and
run.csv's features, all of the last committed round; the round that wrote
a row (`_written_in`: its `round`, or a metrics row's `committed_in`) only
grows down a log; every committed round has its round_log and perf_log
rows; metrics rows score the models of committed training rounds; and
stats.csv with run.csv's provenance rows are the statistics of the run's
one ok statistics round. Rows written by a round after the committed one, a
torn last line, and statistics of an uncommitted round are what a crash
leaves: `repair` and `repair_statistics` remove them. Anything else that
breaks these rules is corruption: `StateError` naming the file, the row and
the column. The replay of updates.csv to the model and the strategy's state
is `daemon.state.replay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedd.daemon.errors import ConfigError
from fedd.daemon.state.columns import Table
from fedd.daemon.state.csvfile import Contents, state_error, write_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    METRICS_LOG,
    MODEL,
    PERF_LOG,
    ROUND_LOG,
    RUN,
    UPDATES,
    PeerRow,
    RoundRow,
)
from fedd.daemon.state.runfile import RunFile, run_entries
from fedd.daemon.state.statistics import STATS, Statistics, read_columns
from fedd.daemon.state.survivors import SURVIVORS
from fedd.learner.scaling import ColumnStats

__all__ = [
    "check_order",
    "committed_rows",
    "committed_statistics",
    "read_model",
    "repair",
    "repair_statistics",
    "unique_peers",
]

# What identifies a row among those of its round, for the logs that hold several per round.
_ROW_KEYS: dict[Table, str] = {
    CLIENT_PERF: "peer",
    UPDATES: "parameter",
    METRICS_LOG: "source",
    SURVIVORS: "peer",
}
# The field naming the round whose commit wrote a row, where it is not `round`.
_WRITTEN_BY: dict[Table, str] = {METRICS_LOG: "committed_in"}


def _written_in(table: Table, row: Any) -> int:
    """The round whose commit wrote `row` of `table`."""
    number: int = getattr(row, _WRITTEN_BY.get(table, "round"))
    return number


def read_model(
    model: Contents[tuple[Any, ...]], features: tuple[str, ...]
) -> tuple[int, list[float]]:
    """The committed round and the parameters that global_model.csv holds; StateError
    unless it holds the bias, then `features`, in order, all of one round."""
    expected = ("bias", *features)
    if not model.rows:
        raise state_error(model.path, "no parameter rows")
    first_number, (committed, _, _) = model.rows[0]
    for (number, (round_, name, _)), want in zip(model.rows, expected, strict=False):
        if round_ != committed:
            raise state_error(
                model.path,
                f"round {round_} differs from row {first_number}'s round {committed}",
                row=number,
                column="round",
            )
        if name != want:
            raise state_error(
                model.path,
                f"expected parameter {want!r} (bias, then run.csv's features), found {name!r}",
                row=number,
                column="parameter",
            )
    if len(model.rows) != len(expected):
        raise state_error(
            model.path,
            f"{len(model.rows)} parameters; the bias and run.csv's {len(features)} "
            f"features make {len(expected)}",
        )
    return committed, [value for _, (_, _, value) in model.rows]


def committed_rows(
    state_dir: Path, logs: Mapping[Table, Contents[Any] | None], committed: int
) -> dict[Table, list[Any]]:
    """Each log's rows written by rounds up to `committed`, the last committed one
    (-1 for none); StateError if any are missing or stray."""
    kept = {
        table: [row for _, row in contents.rows if _written_in(table, row) <= committed]
        if contents
        else []
        for table, contents in logs.items()
    }
    rounds = [row.round for row in kept[ROUND_LOG]]
    if committed >= 0 and (not rounds or rounds[-1] != committed):
        raise state_error(
            state_dir / ROUND_LOG.name,
            f"no row for round {committed}, which {MODEL.name} holds as committed: "
            "rows are missing",
        )
    missing = sorted(set(rounds) - {row.round for row in kept[PERF_LOG]})
    if missing:
        raise state_error(
            state_dir / PERF_LOG.name, f"no row for committed round {missing[0]}: rows are missing"
        )
    kinds = {row.round: row.kind for row in kept[ROUND_LOG]}
    for table in (METRICS_LOG, PERF_LOG, CLIENT_PERF, SURVIVORS):
        contents = logs[table]
        if contents is None:
            continue
        for number, row in contents.rows:
            if _written_in(table, row) > committed:
                continue
            for column in dict.fromkeys((_WRITTEN_BY.get(table, "round"), "round")):
                if getattr(row, column) not in kinds:
                    raise state_error(
                        contents.path,
                        f"round {getattr(row, column)} has no row in {ROUND_LOG.name}",
                        row=number,
                        column=column,
                    )
            if table is METRICS_LOG and kinds[row.round] != "training":
                raise state_error(
                    contents.path,
                    f"round {row.round} is of kind {kinds[row.round]!r} in {ROUND_LOG.name}: "
                    "only training rounds make models to score",
                    row=number,
                    column="round",
                )
    return kept


def repair(
    path: Path, table: Table, contents: Contents[Any] | None, kept: list[Any], *, read_only: bool
) -> list[str]:
    """Rewrite a log that holds uncommitted rows or a torn line, keeping the rows
    `kept`; create a missing one. Returns a note for each repair (marked, and not
    written, when `read_only`)."""
    notes = []
    if contents is None and table is SURVIVORS:  # the one log a directory of an older fedd lacks
        notes.append(f"{table.name}: created; the survivors of earlier rounds are not known")
    elif contents is None:
        notes.append(f"{table.name}: created (missing after an interrupted start)")
    else:
        written = {_written_in(table, row) for _, row in contents.rows}
        dropped = sorted(written - {_written_in(table, row) for row in kept})
        if dropped:
            notes.append(
                f"{table.name}: dropped {len(contents.rows) - len(kept)} row(s) of round "
                f"{', '.join(map(str, dropped))}, which never committed "
                "(a crash before its model was written)"
            )
        if contents.damage():
            notes.append(contents.damage())
    if not notes:
        return []
    if read_only:
        notes = [f"{note} [read-only: not written]" for note in notes]
    else:
        write_table(path, table, [row.values() for row in kept])
    return notes


def committed_statistics(
    state_dir: Path,
    run: RunFile,
    stats: Contents[ColumnStats] | None,
    round_log: Contents[RoundRow] | None,
    committed: int,
) -> tuple[Statistics | None, bool]:
    """The run's committed statistics (None if none), and whether stats.csv and
    run.csv's provenance rows are instead the debris of a statistics round that
    never committed (`repair_statistics` removes it).

    Debris is stats.csv without provenance, or provenance of a round after
    `committed`. StateError for provenance without stats.csv, stats.csv whose
    columns are not run.csv's features in order, or provenance that is not of
    round_log's one committed ok statistics round.
    """
    provenance = run.provenance
    columns = read_columns(stats, run.features) if stats is not None else None
    if provenance is not None and columns is None:
        raise state_error(
            state_dir / RUN.name,
            f"the statistics of round {provenance.round} are recorded, but {STATS.name} is missing",
            row=provenance.row,
            column="key",
        )
    debris = columns is not None and (provenance is None or provenance.round > committed)
    kept = None if debris else provenance
    found = False
    for number, row in round_log.rows if round_log else []:
        if row.round > committed or row.kind != "statistics" or row.status != "ok":
            continue
        if kept is None or row.round != kept.round:
            recorded = f"those of round {kept.round}" if kept else "none"
            raise state_error(
                state_dir / ROUND_LOG.name,
                f"round {row.round} is an ok statistics round, but {RUN.name} records "
                f"{recorded}: a run's statistics come from one round",
                row=number,
                column="status",
            )
        found = True
    if kept is None or columns is None:
        return None, debris
    if not found:
        raise state_error(
            state_dir / RUN.name,
            f"statistics of round {kept.round}, which is not an ok statistics round of "
            f"{ROUND_LOG.name}",
            row=kept.row,
            column="value",
        )
    return Statistics(columns, kept.round, kept.peers, kept.rows, kept.positives), False


def repair_statistics(state_dir: Path, run: RunFile, *, read_only: bool) -> list[str]:
    """Remove the debris of a statistics round that never committed: run.csv's
    provenance rows (if any), then stats.csv, in the reverse of the order a
    commit writes them, so that a crash in between leaves debris again.
    Returns a note for each (marked, and not written, when `read_only`)."""
    crash = "(a crash before its model was written)"
    if run.provenance is None:
        notes = [
            f"{STATS.name}: removed, without its provenance in {RUN.name}: the statistics "
            f"of a round that never committed {crash}"
        ]
    else:
        never = f"of round {run.provenance.round}, which never committed {crash}"
        notes = [
            f"{RUN.name}: dropped the provenance of the statistics {never}",
            f"{STATS.name}: removed, the statistics {never}",
        ]
    if read_only:
        return [f"{note} [read-only: not written]" for note in notes]
    if run.provenance is not None:
        entries = run_entries(run.run_id, run.created_at, run.features, run.settings)
        write_table(state_dir / RUN.name, RUN, entries)
    path = state_dir / STATS.name
    try:
        path.unlink()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot remove: {exc.strerror or exc}") from None
    return notes


def check_order(table: Table, contents: Contents[Any] | None) -> None:
    """The round that wrote a row (`_written_in`) only grows down a log, and a log
    holds one row per round, or per round and the field of `_ROW_KEYS`."""
    if contents is None:
        return
    key = _ROW_KEYS.get(table, "")
    order = _WRITTEN_BY.get(table, "round")
    seen: dict[tuple[int, str], int] = {}
    last = -1
    for number, row in contents.rows:
        name = getattr(row, key) if key else ""
        if (row.round, name) in seen:
            what = f"round {row.round}" + (f", {key} {name!r}," if key else "")
            raise state_error(
                contents.path,
                f"{what} appears again (first at row {seen[row.round, name]})",
                row=number,
                column="round",
            )
        if _written_in(table, row) < last:
            raise state_error(
                contents.path,
                f"{order} {_written_in(table, row)} after {order} {last}: out of order",
                row=number,
                column=order,
            )
        seen[row.round, name], last = number, _written_in(table, row)


def unique_peers(contents: Contents[PeerRow]) -> list[PeerRow]:
    """peers.csv's rows; StateError if a peer appears twice."""
    first: dict[str, int] = {}
    for number, row in contents.rows:
        if row.peer in first:
            raise state_error(
                contents.path,
                f"peer {row.peer!r} appears again (first at row {first[row.peer]})",
                row=number,
                column="peer",
            )
        first[row.peer] = number
    return [row for _, row in contents.rows]
