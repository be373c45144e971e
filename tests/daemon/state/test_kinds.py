"""Rounds of three kinds on disk: the statistics and the crashes that cut them short,
scores committed after their round, and the replay of updates across kinds."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

import fedd.daemon.state.store
from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.csvfile import append_rows
from fedd.daemon.state.hubfiles import METRICS_LOG
from fedd.daemon.state.store import HubStore
from tests.daemon._support import set_cell, snapshot
from tests.daemon.state._support import (
    commit_next,
    metrics_row,
    started,
    statistics,
    with_kinds,
)


def crash_before(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the store's rewrites stop just before they write `name`, as a crash would."""
    real = fedd.daemon.state.store.write_table

    def crash_or_write(path: Path, table: object, rows: object, **options: object) -> None:
        if path.name == name:
            raise ConfigError(f"{path}: the machine went down")
        real(path, table, rows, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(fedd.daemon.state.store, "write_table", crash_or_write)


def drop_lines(*numbers: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        return "".join(line for n, line in enumerate(lines, 1) if n not in numbers)

    return edit


# --- the statistics -----------------------------------------------------------------------


@pytest.mark.parametrize("unwritten", ["run.csv", "global_model.csv"])
def test_statistics_of_a_round_that_never_committed_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwritten: str
) -> None:
    store = started(tmp_path)
    committed = snapshot(tmp_path)
    crash_before(monkeypatch, unwritten)
    with pytest.raises(ConfigError, match="went down"):
        commit_next(store, 1, kind="statistics")
    monkeypatch.undo()
    assert (tmp_path / "stats.csv").exists()
    crashed = snapshot(tmp_path)
    never = "which never committed (a crash before its model was written)"
    statistics_notes = (
        [
            f"run.csv: dropped the provenance of the statistics of round 1, {never}",
            f"stats.csv: removed, the statistics of round 1, {never}",
        ]
        if unwritten == "global_model.csv"
        else [
            "stats.csv: removed, without its provenance in run.csv: the statistics of a round "
            "that never committed (a crash before its model was written)"
        ]
    )
    reader = HubStore.open(tmp_path, read_only=True)
    assert snapshot(tmp_path) == crashed
    assert (reader.statistics, reader.committed_round, reader.recent_rounds(5)) == (None, -1, [])
    assert reader.reconciled[4:] == [f"{n} [read-only: not written]" for n in statistics_notes]
    again = HubStore.open(tmp_path)
    assert again.reconciled == [
        f"round_log.csv: dropped 1 row(s) of round 1, {never}",
        f"perf_log.csv: dropped 1 row(s) of round 1, {never}",
        f"client_perf.csv: dropped 2 row(s) of round 1, {never}",
        f"survivors.csv: dropped 2 row(s) of round 1, {never}",
        *statistics_notes,
    ]
    assert again.statistics is None and again.settings == store.settings
    assert snapshot(tmp_path) == committed
    commit_next(again, 1, kind="statistics")
    final = HubStore.open(tmp_path)
    assert (final.reconciled, final.statistics) == ([], statistics(1))


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "stats.csv",
            lambda t: t.replace("\nV1,", "\nV2,"),
            r"stats.csv row 3, column 'column': expected feature 'V1' \(run.csv's features, in "
            r"order\), found 'V2'",
        ),
        (
            "stats.csv",
            drop_lines(4),
            "stats.csv: 2 rows for run.csv's 3 features: rows are missing",
        ),
        (
            "stats.csv",
            lambda t: t + "Extra,0.0,1.0,\n",
            "stats.csv row 5, column 'column': expected no more rows .* found 'Extra'",
        ),
        (
            "stats.csv",
            lambda t: t.replace(",47488.25,", ",0.0,"),
            r"stats.csv row 2, column 'std': must be in \[5e-324, inf\], got 0.0",
        ),
        (
            "stats.csv",
            lambda t: t.replace(",47488.25,", ",-2.5,"),
            r"stats.csv row 2, column 'std': must be in \[5e-324, inf\], got -2.5",
        ),
        (
            "stats.csv",
            lambda t: t.replace(",88.25,", ",nan,"),
            "stats.csv row 4, column 'mean': 'nan' is not a number",
        ),
        ("stats.csv", lambda t: t.replace("std", "sd"), "stats.csv row 1: the header must be"),
        ("stats.csv", lambda t: t[:-1], "stats.csv: the file is cut short"),
        (
            "run.csv",
            drop_lines(11),
            "run.csv row 8, column 'key': 'statistics_round' without 'statistics_positives'",
        ),
        (
            "run.csv",
            lambda t: t.replace("statistics_positives,15", "statistics_positives,901"),
            "run.csv row 11, column 'value': 901 positives among 900 rows",
        ),
        (
            "run.csv",
            lambda t: t.replace("statistics_round,1", "statistics_round,0"),
            r"run.csv row 8, column 'value': must be in \[1, ",
        ),
        (
            "run.csv",
            lambda t: t.replace("statistics_peers,3", "statistics_peers,x"),
            "run.csv row 9, column 'value': 'x' is not an integer",
        ),
        (
            "run.csv",
            lambda t: t + "statistics_rows,5\n",
            r"run.csv row 12, column 'key': 'statistics_rows' appears again \(first at row 10\)",
        ),
        # Provenance of another round than round_log's ok statistics round.
        (
            "run.csv",
            lambda t: t.replace("statistics_round,1", "statistics_round,2"),
            "round_log.csv row 2, column 'status': round 1 is an ok statistics round, but "
            "run.csv records those of round 2: a run's statistics come from one round",
        ),
        (
            "round_log.csv",
            lambda t: t.replace(",ok,\n", ",aborted,too few\n", 1),
            "run.csv row 8, column 'value': statistics of round 1, which is not an ok statistics "
            "round of round_log.csv",
        ),
        # The files of a committed statistics round are gone.
        (
            "run.csv",
            drop_lines(8, 9, 10, 11),
            "round_log.csv row 2, column 'status': round 1 is an ok statistics round, but "
            "run.csv records none",
        ),
    ],
)
def test_corrupt_statistics_are_refused(
    tmp_path: Path, name: str, edit: Callable[[str], str], message: str
) -> None:
    with_kinds(tmp_path)
    path = tmp_path / name
    path.write_text(edit(path.read_text()))
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path, read_only=True)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_missing_statistics_files_are_refused(tmp_path: Path) -> None:
    with_kinds(tmp_path)
    (tmp_path / "stats.csv").rename(tmp_path / "stats.csv.bak")
    with pytest.raises(
        StateError,
        match=r"run.csv row 8, column 'key': the statistics of round 1 are recorded, but "
        r"stats.csv is missing",
    ):
        HubStore.open(tmp_path)
    run = (tmp_path / "run.csv").read_text()
    (tmp_path / "run.csv").write_text(drop_lines(8, 9, 10, 11)(run))
    (tmp_path / "stats.csv.bak").rename(tmp_path / "stats.csv")
    # Not debris of an uncommitted round: round_log.csv says round 1 committed them.
    with pytest.raises(StateError, match=r"round 1 is an ok statistics round, but run.csv records"):
        HubStore.open(tmp_path)
    assert (tmp_path / "stats.csv").exists()
    (tmp_path / "run.csv").unlink()
    with pytest.raises(StateError, match=r"has client_perf.csv but no run.csv"):
        HubStore.open(tmp_path)
    for name in ("client_perf.csv", "global_model.csv", "metrics_log.csv", "perf_log.csv"):
        (tmp_path / name).unlink()
    for name in ("round_log.csv", "updates.csv"):
        (tmp_path / name).unlink()
    with pytest.raises(StateError, match=r"has stats.csv but no run.csv"):
        HubStore.open(tmp_path)


# --- scores committed after their round ---------------------------------------------------


def test_federated_scores_committed_later_read_back(tmp_path: Path) -> None:
    store = with_kinds(tmp_path)
    again = HubStore.open(tmp_path)
    assert again.reconciled == []
    assert [(m.round, m.source, m.committed_in) for m in again.metrics_rows()] == [
        (2, "test", 2),
        (2, "federated", 4),
        (5, "test", 5),
    ]
    assert again.metrics_rows() == store.metrics_rows()
    # The peers' scores win over the test CSV's; rounds that trained nothing have none.
    assert [(r.round, m) for r, m, _ in again.recent_rounds(10)] == [
        (1, None),
        (2, metrics_row(2, "federated", 4)),
        (3, None),
        (4, None),
        (5, metrics_row(5)),
    ]
    assert (again.training_rounds, again.committed_round) == (3, 5)
    commit_next(again, 6, kind="evaluation", scores=[5, 3])
    final = HubStore.open(tmp_path)
    assert [(r.round, m) for r, m, _ in final.recent_rounds(10)][-2:] == [
        (5, metrics_row(5, "federated", 6)),
        (6, None),
    ]
    assert final.metrics_rows()[-2:] == [
        metrics_row(5, "federated", 6),
        metrics_row(3, "federated", 6),
    ]


def test_scores_of_a_round_that_never_committed_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = with_kinds(tmp_path)
    committed = snapshot(tmp_path)
    crash_before(monkeypatch, "global_model.csv")
    with pytest.raises(ConfigError):
        commit_next(store, 6, kind="evaluation", scores=[5])
    monkeypatch.undo()
    # A row committed in a round even later, without its round: dropped all the same.
    append_rows(
        tmp_path / "metrics_log.csv", METRICS_LOG, [metrics_row(3, "federated", 7).values()]
    )
    again = HubStore.open(tmp_path)
    never = "which never committed (a crash before its model was written)"
    assert again.reconciled == [
        f"round_log.csv: dropped 1 row(s) of round 6, {never}",
        f"metrics_log.csv: dropped 2 row(s) of round 6, 7, {never}",
        f"perf_log.csv: dropped 1 row(s) of round 6, {never}",
        f"client_perf.csv: dropped 2 row(s) of round 6, {never}",
        f"survivors.csv: dropped 2 row(s) of round 6, {never}",
    ]
    assert snapshot(tmp_path) == committed
    assert again.metrics_rows() == store.metrics_rows()


def swap_lines(a: int, b: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
        return "".join(lines)

    return edit


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "metrics_log.csv",
            lambda t: t.replace("\n2,federated,4,", "\n1,federated,4,"),
            "metrics_log.csv row 3, column 'round': round 1 is of kind 'statistics' in "
            "round_log.csv: only training rounds make models to score",
        ),
        (
            "metrics_log.csv",
            lambda t: t.replace("\n2,federated,4,", "\n4,federated,4,"),
            "metrics_log.csv row 3, column 'round': round 4 is of kind 'evaluation'",
        ),
        (
            "metrics_log.csv",
            lambda t: t.replace("\n2,federated,4,", "\n0,federated,4,"),
            "metrics_log.csv row 3, column 'round': round 0 has no row in round_log.csv",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("\n2,training,", "\n2,evaluation,"),
            "metrics_log.csv row 2, column 'round': round 2 is of kind 'evaluation'",
        ),
        (
            "metrics_log.csv",
            swap_lines(3, 4),
            "metrics_log.csv row 4, column 'committed_in': committed_in 4 after committed_in 5: "
            "out of order",
        ),
        (
            "metrics_log.csv",
            lambda t: (
                t + ",".join(METRICS_LOG.cells(metrics_row(2, "federated", 5).values())) + "\n"
            ),
            r"metrics_log.csv row 5, column 'round': round 2, source 'federated', appears again "
            r"\(first at row 3\)",
        ),
    ],
)
def test_scores_of_no_model_or_out_of_order_are_refused(
    tmp_path: Path, name: str, edit: Callable[[str], str], message: str
) -> None:
    with_kinds(tmp_path)
    path = tmp_path / name
    path.write_text(edit(path.read_text()))
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_scores_committed_in_a_round_not_in_the_round_log_are_refused(tmp_path: Path) -> None:
    store = with_kinds(tmp_path)
    commit_next(store, 7, kind="evaluation", scores=[5])
    set_cell(tmp_path / "metrics_log.csv", 5, "committed_in", "6")
    with pytest.raises(
        StateError,
        match=r"metrics_log.csv row 5, column 'committed_in': round 6 has no row in round_log.csv",
    ):
        HubStore.open(tmp_path)


# --- updates.csv across kinds ---------------------------------------------------------------


def test_only_ok_training_rounds_replay_to_the_model(tmp_path: Path) -> None:
    store = with_kinds(tmp_path)
    with open(tmp_path / "updates.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["round"] for r in rows] == ["2"] * 4 + ["5"] * 4
    model = [0.0] * 4
    for i, row in enumerate(rows):
        model[i % 4] += float(row["delta"])
    assert HubStore.open(tmp_path).model == store.model == model
    assert (tmp_path / "global_model.csv").read_text().splitlines()[1] == f"5,bias,{model[0]!r}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("\n", "\n1,bias,0.0,0.0,\n", 1),
            "updates.csv row 2, column 'round': round 1 is of kind 'statistics' in "
            "round_log.csv: it applied no update",
        ),
        (
            lambda t: t.replace("\n5,bias,", "\n3,bias,0.0,0.0,\n5,bias,"),
            "updates.csv row 6, column 'round': round 3 is aborted in round_log.csv",
        ),
        (
            lambda t: t.replace("\n5,bias,", "\n4,bias,0.0,0.0,\n5,bias,"),
            "updates.csv row 6, column 'round': round 4 is of kind 'evaluation' in round_log.csv",
        ),
    ],
)
def test_updates_of_rounds_that_train_nothing_are_refused(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    with_kinds(tmp_path)
    path = tmp_path / "updates.csv"
    path.write_text(edit(path.read_text()))
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before
