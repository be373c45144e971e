"""The hub's rows and commits check and normalize their fields when built."""

from __future__ import annotations

import dataclasses
import math

import pytest

from fedd.daemon.state.commits import Commit
from fedd.daemon.state.hubfiles import (
    STAGES,
    ClientPerfRow,
    PeerRow,
    PerfRow,
    RoundRow,
)
from fedd.daemon.state.statistics import Statistics
from fedd.learner.scaling import ColumnStats
from tests.daemon.state._support import DELTA, T0, make_commit, metrics_row, statistics


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Commit(make_commit(1).round, (0.0,), [], make_commit(2).perf, []), "round 1"),
        (
            lambda: Commit(
                make_commit(1).round, (0.0,), [], make_commit(1).perf, make_commit(2).clients
            ),
            "round 1",
        ),
        (
            lambda: dataclasses.replace(make_commit(1), metrics=make_commit(0).metrics),
            "every metrics row of a commit is committed in round 1",
        ),
        (
            lambda: dataclasses.replace(make_commit(1), metrics=[metrics_row(1)] * 2),
            "a model's scores from one source appear twice",
        ),
        (lambda: make_commit(1, peers=("p1", "p1")), "appears twice"),
        (lambda: make_commit(1, (0.0, math.nan)), r"Commit.model\[1\] must be a finite"),
        (lambda: make_commit(1, (0.0, math.inf)), r"Commit.model\[1\] must be a finite"),
        (lambda: with_model((0.0, True)), r"Commit.model\[1\] must be a number"),
        (lambda: with_delta(None), "an ok training round commits the delta it applied"),
        (
            lambda: dataclasses.replace(make_commit(1, status="aborted"), delta=DELTA),
            "no other round commits one",
        ),
        (
            lambda: dataclasses.replace(make_commit(1, kind="evaluation"), delta=DELTA),
            "no other round commits one",
        ),
        (lambda: with_delta((0.0, 1.0)), "Commit.delta has 2 values, the model 4"),
        (lambda: with_delta((0.0, 1.0, math.nan, 0.0)), r"Commit.delta\[2\] must be a finite"),
        (lambda: with_delta((0.0, 1.0, 2.0, "3")), r"Commit.delta\[3\] must be a number"),
        (
            lambda: dataclasses.replace(make_commit(1, kind="statistics"), statistics=None),
            "an ok statistics round commits its statistics",
        ),
        (
            lambda: dataclasses.replace(make_commit(1), statistics=statistics(1)),
            "no other round does",
        ),
        (
            lambda: dataclasses.replace(
                make_commit(1, kind="statistics"), statistics=statistics(2)
            ),
            "the statistics of a commit come from round 1",
        ),
    ],
)
def test_inconsistent_commits_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def with_model(model: object) -> Commit:
    return dataclasses.replace(make_commit(1), model=model)


def with_delta(delta: object) -> Commit:
    return dataclasses.replace(make_commit(1), delta=delta)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: RoundRow(0, "training", "plus", T0, 1.0, 3, 3, 0, "maybe", ""),
            "RoundRow.status 'maybe'",
        ),
        (
            lambda: RoundRow(0, "training", "plus", T0, -1.0, 3, 3, 0, "ok", ""),
            "RoundRow.duration_s must be in",
        ),
        (
            lambda: RoundRow(0, "training", "plus", T0, math.nan, 3, 3, 0, "ok", ""),
            "duration_s must be a finite",
        ),
        (
            lambda: RoundRow(0, "training", "plus", T0, 1.0, 3, 4, 0, "ok", ""),
            "cannot exceed participants",
        ),
        (
            lambda: RoundRow(0, "training", "plus", T0, 1.0, True, 1, 0, "ok", ""),
            "participants must be an int",
        ),
        (
            lambda: RoundRow(-1, "training", "plus", T0, 1.0, 3, 3, 0, "ok", ""),
            "RoundRow.round must be in",
        ),
        (lambda: RoundRow(0, "training", "Plus Mode", T0, 1.0, 3, 3, 0, "ok", ""), "RoundRow.mode"),
        (
            lambda: RoundRow(0, "training", "plus", T0, 1.0, 3, 3, 0, "ok", "a\r\nb"),
            "control character",
        ),
        (lambda: RoundRow(0, "learning", "plus", T0, 1.0, 3, 3, 0, "ok", ""), "RoundRow.kind"),
        (
            lambda: dataclasses.replace(metrics_row(0), roc_auc=1.5),
            "MetricsRow.roc_auc must be in",
        ),
        (lambda: dataclasses.replace(metrics_row(0), source="peers"), "MetricsRow.source"),
        (
            lambda: metrics_row(3, "federated", committed_in=2),
            "committed with its round or after it",
        ),
        (lambda: dataclasses.replace(metrics_row(0), positives=201), "cannot exceed rows"),
        (
            lambda: Statistics((ColumnStats("a", 0.0, 0.0),), 1, 1, 1, 0),
            r"Statistics 'a': std must be in \[5e-324",
        ),
        (lambda: Statistics((), 1, 1, 1, 0), "at least one column"),
        (lambda: dataclasses.replace(statistics(1), round=0), "Statistics.round must be"),
        (lambda: dataclasses.replace(statistics(1), positives=901), "Statistics.positives"),
        (lambda: PerfRow(0, 1.0, 1.0, {"train": 1.0}, 0.0, 1, 1), "unknown stage 'train'"),
        (lambda: PerfRow(0, 1.0, 1.0, {"decode": -1.0}, 0.0, 1, 1), r"stage_s\['decode'\]"),
        (lambda: PerfRow(0, 1.0, 1.0, {}, 0.0, -1, 1), "PerfRow.bytes_in must be in"),
        (
            lambda: ClientPerfRow(0, "p 1", 1, 1.0, 1.0, 1),
            "ClientPerfRow.peer 'p 1' is not a valid id: it must be 1-64",
        ),
        (
            lambda: PeerRow("p1", "key with spaces", T0, T0, 0, "alive"),
            "PeerRow.public_key 'key with spaces' is not a valid id",
        ),
        (lambda: PeerRow("p1", "", T0, T0, 0, ""), "PeerRow.status must not be empty"),
    ],
)
def test_rows_check_their_fields(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_a_commit_takes_its_clients_from_any_iterable() -> None:
    made = make_commit(3)
    again = dataclasses.replace(made, clients=iter(made.clients))
    assert again.clients == made.clients == tuple(made.clients) and len(made.clients) == 2
    with pytest.raises(ValueError, match="appears twice"):
        dataclasses.replace(made, clients=iter(made.clients * 2))


def test_rows_normalize_numbers() -> None:
    row = RoundRow(0, "training", "off", 1, 2, 3, 3, 0, "ok", "")
    assert type(row.started_at) is float and type(row.duration_s) is float
    perf = PerfRow(0, 1, 1, {"decode": 2}, 0, 1, 1)
    assert list(perf.stage_s) == list(STAGES)
    assert perf.stage_s["decode"] == 2.0 and type(perf.stage_s["decode"]) is float
    with pytest.raises(TypeError):
        perf.stage_s["decode"] = 3.0  # type: ignore[index]
