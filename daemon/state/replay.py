"""The model and the strategy's state, replayed from updates.csv.

Each ok training round left one row per parameter in updates.csv: the
survivors' weighted `mean` update, their mean `control` variate change
(SCAFFOLD only) and the `delta` the run's strategy (`learner.strategy`,
recorded in run.csv) made of them and added to the model. From zeros and
the strategy's initial state, `server_step` applied to each round's mean in
file order, with round_log.csv's survivors and participants, must give
each round's delta, and the deltas added to zeros (float addition) must
give global_model.csv, all bit for bit: `replay_updates` checks both and
returns the strategy's state after the last committed round, and the models
of the last `RECENT_MODELS` ok training rounds (a restarted hub still asks
the peers to score those they have not).

optimizer.csv (`OPTIMIZER`) holds that state, one row per parameter (the
momentum, the second moment and SCAFFOLD's control variate; what a strategy
does not use is 0), rewritten by the commit of each ok training round of a
strategy that keeps state, before the model. It must equal the replay, as
of the last committed ok training round. `replay` does both checks and
says whether optimizer.csv is instead the debris of a round that never
committed (`repair_optimizer` rewrites it from the replay); anything else
raises `StateError` naming the file, the row and the column.

`check_next_model` is the replay's step, which `HubStore.commit` checks
before it writes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedd.daemon.errors import ConfigError
from fedd.daemon.state.columns import Table
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.csvfile import Contents, state_error, write_table
from fedd.daemon.state.hubfiles import (
    MODEL,
    OPTIMIZER,
    ROUND_LOG,
    UPDATES,
    RoundRow,
    UpdateRow,
)
from fedd.learner.strategy import ServerState, Strategy, server_step

__all__ = [
    "RECENT_MODELS",
    "Replayed",
    "check_next_model",
    "optimizer_rows",
    "repair_optimizer",
    "replay",
    "same_float",
]


# The models of this many recent ok training rounds are rebuilt: as many as a
# peer keeps to score, so none that a peer could still score is forgotten.
RECENT_MODELS = 8


@dataclass(frozen=True, slots=True)
class Replayed:
    """What `replay` found: the strategy's `state` after the committed rounds, the
    last committed ok training round (None if none), whether optimizer.csv
    is the `debris` of a round that never committed, and the `models` of the
    last RECENT_MODELS ok training rounds, by round, bit for bit as committed."""

    state: ServerState
    last_training: int | None
    debris: bool
    models: dict[int, tuple[float, ...]]


def replay(
    state_dir: Path,
    updates: Contents[UpdateRow] | None,
    optimizer: Contents[tuple[Any, ...]] | None,
    kept: Mapping[Table, list[Any]],
    *,
    features: tuple[str, ...],
    model: Sequence[float] | None,
    committed_round: int,
    strategy: Strategy,
) -> Replayed:
    """Replay updates.csv (`kept`: the committed rows of the logs, from
    `committed_rows`) and check optimizer.csv against it; StateError as the
    module docstring says."""
    state, models = _replay_updates(
        state_dir,
        updates,
        kept,
        features=features,
        model=model,
        committed_round=committed_round,
        strategy=strategy,
    )
    last = _last_training_round(kept[ROUND_LOG])
    debris = _check_optimizer(
        state_dir,
        optimizer,
        state,
        names=("bias", *features),
        strategy=strategy,
        last_training=last,
        committed_round=committed_round,
    )
    return Replayed(state, last, debris, models)


def repair_optimizer(
    state_dir: Path, replayed: Replayed, features: tuple[str, ...], *, read_only: bool
) -> list[str]:
    """Rewrite optimizer.csv, debris of a round that never committed, from the
    replay (remove it before any training round); the note for the log (marked,
    and not written, when `read_only`)."""
    path = state_dir / OPTIMIZER.name
    note = (
        f"{OPTIMIZER.name}: the state of a round that never committed "
        "(a crash before its model was written)"
    )
    if read_only:
        return [f"{note} [read-only: not written]"]
    if replayed.last_training is None:
        try:
            path.unlink()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot remove: {exc.strerror or exc}") from None
        return [f"{note}: removed"]
    rows = optimizer_rows(replayed.last_training, ("bias", *features), replayed.state)
    write_table(path, OPTIMIZER, rows)
    return [f"{note}: rewritten from the replay, as of round {replayed.last_training}"]


def same_float(a: float, b: float) -> bool:
    """Bit for bit: unlike ==, tells -0.0 from 0.0 (the model file keeps the sign)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(map(same_float, a, b))


def _share(row: RoundRow) -> float:
    """The fraction of the round's participants whose vectors its sum holds."""
    return row.survivors / max(row.participants, 1)


def check_next_model(
    commit: Commit,
    previous: Sequence[float] | None,
    names: tuple[str, ...],
    strategy: Strategy,
    state: ServerState,
) -> ServerState:
    """The strategy's state after `commit`; ValueError unless `commit.model` holds
    `names` (the bias and the features), `commit.delta` is the step `strategy`
    makes of `commit.mean` from `state`, and the model is the `previous` one
    (zeros if None) plus the delta, bit for bit, by the float additions of the
    replay; unchanged without a delta."""
    if len(commit.model) != len(names):
        raise ValueError(
            f"the model has {len(commit.model)} parameters; the bias and "
            f"{len(names) - 1} features make {len(names)}"
        )
    start = previous if previous is not None else [0.0] * len(names)
    if commit.delta is None or commit.mean is None:
        if _same(start, commit.model):
            return state
        aborted = commit.round.status == "aborted"
        what = "an aborted round" if aborted else f"a round of kind {commit.round.kind!r}"
        raise ValueError(f"{what} must leave the model as it was")
    step, after = server_step(strategy, state, commit.mean, commit.control, _share(commit.round))
    if not _same(step, commit.delta):
        raise ValueError(f"the delta is not the step {strategy.name} makes of the round's mean")
    if not _same(_add(start, commit.delta), commit.model):
        raise ValueError("the model is not the previous model plus the round's delta")
    return after


def _add(model: Sequence[float], delta: Sequence[float]) -> list[float]:
    """`model` plus `delta`: the one float addition of both `commit` and the replay."""
    return [m + d for m, d in zip(model, delta, strict=True)]


def _replay_updates(
    state_dir: Path,
    contents: Contents[UpdateRow] | None,
    kept: Mapping[Table, list[Any]],
    *,
    features: tuple[str, ...],
    model: Sequence[float] | None,
    committed_round: int,
    strategy: Strategy,
) -> tuple[ServerState, dict[int, tuple[float, ...]]]:
    """The strategy's state after the committed rounds (in `kept`, from
    `committed_rows`), replayed from updates.csv, and the models of the last
    RECENT_MODELS ok training rounds; StateError unless each
    committed ok training round has its full rows and no other round has
    any, each delta is the strategy's step of its mean, and zeros plus the
    deltas give the committed `model` (None: no round committed)."""
    names = ("bias", *features)
    state = ServerState.initial(strategy, len(names))
    if model is None:  # no committed round: no committed update rows either (committed_rows)
        return state, {}
    path = state_dir / UPDATES.name
    rounds: dict[int, RoundRow] = {row.round: row for row in kept[ROUND_LOG]}
    numbered = (
        [(n, row) for n, row in contents.rows if row.round <= committed_round] if contents else []
    )
    by_round: dict[int, list[tuple[int, UpdateRow]]] = {}
    for number, row in numbered:
        if not _applies(rounds.get(row.round)):
            what = _what(rounds.get(row.round))
            raise state_error(
                path,
                f"round {row.round} {what} {ROUND_LOG.name}: it applied no update",
                row=number,
                column="round",
            )
        by_round.setdefault(row.round, []).append((number, row))
    replay = [0.0] * len(names)
    recent: deque[tuple[int, tuple[float, ...]]] = deque(maxlen=RECENT_MODELS)
    for round_, round_row in rounds.items():
        if not _applies(round_row):
            continue
        rows = by_round.get(round_, [])
        _check_parameters(path, rows, names, round_)
        control = None
        if strategy.controls:
            control = [row.control for _, row in rows]
        for number, row in rows:
            if math.isnan(row.control) == strategy.controls:
                raise state_error(
                    path,
                    "a scaffold round has a control variate change, and only a scaffold round",
                    row=number,
                    column="control",
                )
        step, state = server_step(
            strategy, state, [row.mean for _, row in rows], control, _share(round_row)
        )
        for (number, row), value in zip(rows, step, strict=True):
            if not same_float(row.delta, value):
                raise state_error(
                    path,
                    f"{row.delta!r}, but {strategy.describe()} makes {value!r} of the "
                    f"round's mean: the delta and the mean disagree",
                    row=number,
                    column="delta",
                )
        replay = _add(replay, [row.delta for _, row in rows])
        recent.append((round_, tuple(replay)))
    for index, (replayed, committed) in enumerate(zip(replay, model, strict=True)):
        if not same_float(replayed, committed):
            raise state_error(
                state_dir / MODEL.name,
                f"{committed!r}, but zeros plus the deltas of {UPDATES.name} make "
                f"{replayed!r}: the model and its updates disagree",
                row=index + 2,
                column="value",
            )
    return state, dict(recent)


def _check_parameters(
    path: Path, rows: list[tuple[int, UpdateRow]], names: tuple[str, ...], round_: int
) -> None:
    """StateError unless `rows` are one per parameter of `names`, in order."""
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
            f"round {round_}, an ok training round in {ROUND_LOG.name}, has {len(rows)} of its "
            f"{len(names)} parameter rows: rows are missing",
        )


def _applies(row: RoundRow | None) -> bool:
    """Whether round `row` applied a delta to the model: an ok training round."""
    return row is not None and row.kind == "training" and row.status == "ok"


def _what(row: RoundRow | None) -> str:
    """What round_log.csv says of a round that applied no delta."""
    if row is None:
        return "has no row in"
    return "is aborted in" if row.status == "aborted" else f"is of kind {row.kind!r} in"


def _last_training_round(rounds: Sequence[RoundRow]) -> int | None:
    """The last ok training round among `rounds` (None if there is none)."""
    return next((row.round for row in reversed(rounds) if _applies(row)), None)


def optimizer_rows(
    number: int, names: tuple[str, ...], state: ServerState
) -> list[tuple[Any, ...]]:
    """optimizer.csv's rows for `state`, as of round `number`."""
    return [
        (number, name, m, v, c)
        for name, m, v, c in zip(
            names, state.momentum, state.second_moment, state.control, strict=True
        )
    ]


def _check_optimizer(
    state_dir: Path,
    contents: Contents[tuple[Any, ...]] | None,
    replayed: ServerState,
    *,
    names: tuple[str, ...],
    strategy: Strategy,
    last_training: int | None,
    committed_round: int,
) -> bool:
    """Whether optimizer.csv is the debris of a round after `committed_round`
    (to be rewritten from `replayed`, or removed before any training round).

    StateError for optimizer.csv in a run whose strategy keeps no state, one
    missing after an ok training round, one of another round than the last
    ok training round `last_training`, of other parameters than `names`, or
    not equal to `replayed` bit for bit.
    """
    path = state_dir / OPTIMIZER.name
    if contents is None:
        if strategy.keeps_state and last_training is not None:
            raise state_error(
                path,
                f"missing, but round {last_training} trained the model with "
                f"{strategy.name}, whose state it holds",
            )
        return False
    if not strategy.keeps_state:
        raise state_error(path, f"the run's strategy {strategy.name} keeps no state")
    if not contents.rows:
        raise state_error(path, "no parameter rows")
    first_row, (first, *_) = contents.rows[0]
    if first > committed_round:
        return True
    if last_training is None:
        raise state_error(
            path,
            f"round {first}, but no ok training round has committed",
            row=first_row,
            column="round",
        )
    expected = optimizer_rows(last_training, names, replayed)
    for (number, row), want in zip(contents.rows, expected, strict=False):
        for column, value, wanted in zip(OPTIMIZER.header, row, want, strict=True):
            differs = not same_float(value, wanted) if type(value) is float else value != wanted
            if differs:
                raise state_error(
                    path,
                    f"{value!r}, but the replay of {UPDATES.name} through "
                    f"{strategy.describe()} gives {wanted!r}",
                    row=number,
                    column=column,
                )
    if len(contents.rows) != len(names):
        raise state_error(
            path,
            f"{len(contents.rows)} parameter rows; the bias and the features make {len(names)}",
        )
    return False
