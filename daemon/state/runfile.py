"""The hub's run.csv: the run's id, when it began, its features, the hub's settings
and where the run's statistics came from.

run.csv is a `key,value` file (`daemon.state.hubfiles.RUN`): `run_id`,
`created_at`, one `feature` row per feature in order, then the hub's
settings, one row each. Once a statistics round has committed, four more
rows say where stats.csv came from: `statistics_round`,
`statistics_peers`, `statistics_rows` and `statistics_positives`
(`PROVENANCE_KEYS`). `run_entries` makes the rows, `read_run` reads them
back, and `check_features` is the rule a run's feature names follow, for
the hub to check them before it starts a run.

Features live in run.csv as well as in the model, so that a hub restarted
before its first commit still knows them, and so that a model file from
another run is recognised as foreign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import MAX_ROUND, check_run_id
from fedd.daemon.state.columns import MAX_COUNT, int_column
from fedd.daemon.state.csvfile import Contents, decode_cell, key_values, state_error
from fedd.daemon.state.hubfiles import RUN, TIMESTAMP
from fedd.daemon.state.statistics import Statistics

__all__ = [
    "PROVENANCE_KEYS",
    "Provenance",
    "RunFile",
    "check_features",
    "read_run",
    "run_entries",
]

PROVENANCE_KEYS = (
    "statistics_round",
    "statistics_peers",
    "statistics_rows",
    "statistics_positives",
)
_RESERVED_KEYS = ("run_id", "created_at", "feature", *PROVENANCE_KEYS)
_PROVENANCE_COLUMNS = (
    int_column("statistics_round", 1, MAX_ROUND),
    int_column("statistics_peers", 1, MAX_COUNT),
    int_column("statistics_rows", 1, MAX_COUNT),
    int_column("statistics_positives", 0, MAX_COUNT),
)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the run's statistics came from, as run.csv records it: round `round`,
    `peers` peers, `rows` training rows of which `positives` positive. `row` is
    the run.csv row of `statistics_round`, for errors that name it."""

    round: int
    peers: int
    rows: int
    positives: int
    row: int


@dataclass(frozen=True, slots=True)
class RunFile:
    """What run.csv holds: `provenance` is None until a statistics round commits."""

    run_id: str
    created_at: float
    features: tuple[str, ...]
    settings: dict[str, str]
    provenance: Provenance | None


def run_entries(
    run_id: str,
    created_at: float,
    features: tuple[str, ...],
    settings: Mapping[str, str],
    statistics: Statistics | None = None,
) -> list[tuple[str, str]]:
    """run.csv's rows, in order: for a new run, or with the provenance of `statistics`.

    Raises `ValueError` for a bad run id, feature list (empty, a duplicate,
    `bias`) or setting (a reserved key, not a string, a control character).
    """
    try:
        run_id = check_run_id(run_id)
    except LocalProtocolError as exc:
        raise ValueError(exc.reason) from None
    check_features(features)
    entries = [("run_id", run_id), ("created_at", repr(created_at))]
    entries += [("feature", name) for name in features]
    for key, value in settings.items():
        if key in _RESERVED_KEYS:
            raise ValueError(f"setting {key!r} is reserved")
        try:
            entries.append((RUN.columns[0].check(key), RUN.columns[1].check(value)))
        except ValueError as exc:
            raise ValueError(f"setting {key!r}: {exc}") from None
    if statistics is not None:
        figures = (statistics.round, statistics.peers, statistics.rows, statistics.positives)
        entries += [(key, str(value)) for key, value in zip(PROVENANCE_KEYS, figures, strict=True)]
    return entries


def read_run(run: Contents[tuple[str, str]]) -> RunFile:
    """What run.csv holds.

    Raises `StateError` naming the row and column of a bad entry, or the
    missing one (the provenance keys come all four or none).
    """
    entries = key_values(run, required=("run_id", "created_at"), repeatable="feature")
    features: list[str] = []
    for number, name in entries.pop("feature", []):
        problem = _feature_problem(name, features)
        if problem:
            raise state_error(run.path, problem, row=number, column="value")
        features.append(name)
    if not features:
        raise state_error(run.path, "no 'feature' rows: the run's features are unknown")
    [(number, run_id)] = entries.pop("run_id")
    try:
        run_id = check_run_id(run_id)
    except LocalProtocolError as exc:
        raise state_error(run.path, exc.reason, row=number, column="value") from None
    [(number, stamp)] = entries.pop("created_at")
    created_at: float = decode_cell(run.path, number, TIMESTAMP, stamp, where="value")
    provenance = _read_provenance(run, {key: entries.pop(key, []) for key in PROVENANCE_KEYS})
    settings = {key: value for key, [(_, value)] in entries.items()}
    return RunFile(run_id, created_at, tuple(features), settings, provenance)


def _read_provenance(
    run: Contents[tuple[str, str]], entries: Mapping[str, list[tuple[int, str]]]
) -> Provenance | None:
    """The provenance rows of run.csv (`key_values` left at most one of each key)."""
    present = [key for key in PROVENANCE_KEYS if entries[key]]
    if not present:
        return None
    if len(present) < len(PROVENANCE_KEYS):
        missing = next(key for key in PROVENANCE_KEYS if not entries[key])
        [(number, _)] = entries[present[0]]
        raise state_error(
            run.path,
            f"{present[0]!r} without {missing!r}: the provenance of the statistics "
            "takes all four statistics_ rows",
            row=number,
            column="key",
        )
    figures = []
    for column in _PROVENANCE_COLUMNS:
        [(number, cell)] = entries[column.name]
        figures.append(decode_cell(run.path, number, column, cell, where="value"))
    round_, peers, rows, positives = figures
    if positives > rows:
        [(number, _)] = entries["statistics_positives"]
        raise state_error(
            run.path,
            f"{positives} positives among {rows} rows",
            row=number,
            column="value",
        )
    [(row, _)] = entries["statistics_round"]
    return Provenance(round_, peers, rows, positives, row)


_FORMULA_STARTS = ("=", "+", "-", "@")


def check_features(features: Sequence[str]) -> None:
    """Raise ValueError, naming the first problem, unless `features` can name a
    run's model: at least one, each a non-empty string without control
    characters that a spreadsheet would not take for a formula, no
    duplicates, none called `bias`."""
    if not features:
        raise ValueError("a run needs at least one feature")
    for index, name in enumerate(features):
        problem = _feature_problem(name, features[:index])
        if problem:
            raise ValueError(f"feature {index + 1}: {problem}")


def _feature_problem(name: str, earlier: Sequence[str]) -> str:
    """Why `name` cannot follow `earlier` as a feature name ('' if it can)."""
    try:
        RUN.columns[0].check(name)  # a non-empty string without control characters
    except ValueError as exc:
        return f"feature name {exc}"
    if name.startswith(_FORMULA_STARTS):
        # The names come from the first peer's header and land in the hub's
        # CSV files, which people open in spreadsheets: no formula rides in.
        return (
            f"feature name {name!r} starts with {name[0]!r}, which a spreadsheet opening "
            "the hub's files would run as a formula; rename the column"
        )
    if name == "bias":
        return "'bias' is the model's intercept, not a feature name"
    if name in earlier:
        return f"feature {name!r} appears twice"
    return ""
