"""The hub's run.csv: the run's id, when it began, its features and the hub's settings.

run.csv is a `key,value` file (`daemon.state.hubfiles.RUN`): `run_id`,
`created_at`, one `feature` row per feature in order, then the hub's
settings, one row each. `run_entries` makes its rows for a new run,
`read_run` reads them back, and `check_features` is the rule a run's
feature names follow, for the hub to check them before it starts a run.

Features live in run.csv as well as in the model, so that a hub restarted
before its first commit still knows them, and so that a model file from
another run is recognised as foreign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import check_run_id
from fedd.daemon.state.csvfile import Contents, decode_cell, key_values, state_error
from fedd.daemon.state.hubfiles import RUN, TIMESTAMP

__all__ = ["check_features", "read_run", "run_entries"]

_RESERVED_KEYS = ("run_id", "created_at", "feature")


def run_entries(
    run_id: str, created_at: float, features: tuple[str, ...], settings: Mapping[str, str]
) -> list[tuple[str, str]]:
    """run.csv's rows, in order, for a new run.

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
    return entries


def read_run(
    run: Contents[tuple[str, str]],
) -> tuple[str, float, tuple[str, ...], dict[str, str]]:
    """The run id, created_at, features and settings that run.csv holds.

    Raises `StateError` naming the row and column of a bad entry, or the
    missing one.
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
    settings = {key: value for key, [(_, value)] in entries.items()}
    return run_id, created_at, tuple(features), settings


def check_features(features: Sequence[str]) -> None:
    """Raise ValueError, naming the first problem, unless `features` can name a
    run's model: at least one, each a non-empty string without control
    characters, no duplicates, none called `bias`."""
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
    if name == "bias":
        return "'bias' is the model's intercept, not a feature name"
    if name in earlier:
        return f"feature {name!r} appears twice"
    return ""
