"""What `HubStore.open` makes of the files it read: checks, the replay, repairs.

Everything here follows from how `HubStore.commit` writes (the theory of
operation is in `daemon.state.store`): global_model.csv holds the bias and
run.csv's features, all of the last committed round; rounds only grow down
a log; every committed round has its round_log and perf_log rows; and zeros
plus the deltas of updates.csv, one full delta per committed ok round,
replay to the model bit for bit. Rows of a round after the committed one
and a torn last line are what a crash leaves: `repair` rewrites a log
without them. Anything else that breaks these rules is corruption:
`StateError` naming the file, the row and the column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedd.daemon.state.columns import Table
from fedd.daemon.state.csvfile import Contents, state_error, write_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    METRICS_LOG,
    MODEL,
    PERF_LOG,
    ROUND_LOG,
    UPDATES,
    PeerRow,
    UpdateRow,
)

__all__ = [
    "check_order",
    "check_updates",
    "committed_rows",
    "read_model",
    "repair",
    "same_float",
    "unique_peers",
]


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
    """Each log's rows of rounds up to `committed`, the last committed one (-1 for
    none); StateError if any are missing or stray."""
    kept = {
        table: [row for _, row in contents.rows if row.round <= committed] if contents else []
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
    known = set(rounds)
    for table in (METRICS_LOG, PERF_LOG, CLIENT_PERF):
        contents = logs[table]
        if contents is None:
            continue
        for number, row in contents.rows:
            if row.round <= committed and row.round not in known:
                raise state_error(
                    contents.path,
                    f"round {row.round} has no row in {ROUND_LOG.name}",
                    row=number,
                    column="round",
                )
    return kept


def check_updates(
    state_dir: Path,
    contents: Contents[UpdateRow] | None,
    kept: Mapping[Table, list[Any]],
    *,
    features: tuple[str, ...] | None,
    model: Sequence[float] | None,
    committed_round: int,
) -> None:
    """Each committed ok round (in `kept`, from `committed_rows`) has its full delta,
    no other round has one, and zeros plus the deltas replay to the committed
    `model` of `features`; StateError otherwise."""
    if features is None or model is None:
        return  # no committed round: no committed update rows either (see committed_rows)
    names = ("bias", *features)
    path = state_dir / UPDATES.name
    status = {row.round: row.status for row in kept[ROUND_LOG]}
    numbered = (
        [(n, row) for n, row in contents.rows if row.round <= committed_round] if contents else []
    )
    by_round: dict[int, list[tuple[int, UpdateRow]]] = {}
    for number, row in numbered:
        if status.get(row.round) != "ok":
            what = "has no row in" if row.round not in status else "is aborted in"
            raise state_error(
                path,
                f"round {row.round} {what} {ROUND_LOG.name}: it applied no update",
                row=number,
                column="round",
            )
        by_round.setdefault(row.round, []).append((number, row))
    replay = [0.0] * len(names)
    for round_, state in status.items():
        if state != "ok":
            continue
        rows = by_round.get(round_, [])
        for index, (number, row) in enumerate(rows):
            want = names[index] if index < len(names) else None
            if row.parameter != want:
                expected = f"parameter {want!r}" if want else "no more rows"
                raise state_error(
                    path,
                    f"expected {expected} in round {round_} (bias, then run.csv's "
                    f"features), found {row.parameter!r}",
                    row=number,
                    column="parameter",
                )
        if len(rows) != len(names):
            raise state_error(
                path,
                f"round {round_}, ok in {ROUND_LOG.name}, has {len(rows)} of its "
                f"{len(names)} parameter rows: rows are missing",
            )
        replay = [m + row.delta for m, (_, row) in zip(replay, rows, strict=True)]
    for index, (replayed, committed) in enumerate(zip(replay, model, strict=True)):
        if not same_float(replayed, committed):
            raise state_error(
                state_dir / MODEL.name,
                f"{committed!r}, but zeros plus the deltas of {UPDATES.name} make "
                f"{replayed!r}: the model and its updates disagree",
                row=index + 2,
                column="value",
            )


def repair(
    path: Path, table: Table, contents: Contents[Any] | None, kept: list[Any], *, read_only: bool
) -> list[str]:
    """Rewrite a log that holds uncommitted rows or a torn line, keeping the rows
    `kept`; create a missing one. Returns a note for each repair (marked, and not
    written, when `read_only`)."""
    notes = []
    if contents is None:
        notes.append(f"{table.name}: created (missing after an interrupted start)")
    else:
        dropped = sorted({row.round for _, row in contents.rows} - {row.round for row in kept})
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


def check_order(contents: Contents[Any] | None, *, key: str) -> None:
    """Rounds only grow down a log, one row per round, or per round and `key` field."""
    if contents is None:
        return
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
        if row.round < last:
            raise state_error(
                contents.path,
                f"round {row.round} after round {last}: out of order",
                row=number,
                column="round",
            )
        seen[row.round, name], last = number, row.round


def same_float(a: float, b: float) -> bool:
    """Bit for bit: unlike ==, tells -0.0 from 0.0 (the model file keeps the sign)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


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
