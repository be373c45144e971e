"""The hub's rows and commits check and normalize their fields when built."""

from __future__ import annotations

import dataclasses
import math

import pytest

from fedd.daemon.state.hubfiles import (
    STAGES,
    ClientPerfRow,
    Commit,
    MetricsRow,
    PeerRow,
    PerfRow,
    RoundRow,
)
from tests.daemon.state._support import DELTA, T0, make_commit


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Commit(make_commit(1).round, (0.0,), None, make_commit(2).perf, []), "round 1"),
        (
            lambda: Commit(
                make_commit(1).round, (0.0,), None, make_commit(1).perf, make_commit(2).clients
            ),
            "round 1",
        ),
        (
            lambda: Commit(
                make_commit(1).round, (0.0,), make_commit(0).metrics, make_commit(1).perf, []
            ),
            "round 1",
        ),
        (lambda: make_commit(1, peers=("p1", "p1")), "appears twice"),
        (lambda: make_commit(1, (0.0, math.nan)), r"Commit.model\[1\] must be a finite"),
        (lambda: make_commit(1, (0.0, math.inf)), r"Commit.model\[1\] must be a finite"),
        (lambda: with_model((0.0, True)), r"Commit.model\[1\] must be a number"),
        (lambda: with_delta(None), "an ok round commits the delta it applied"),
        (
            lambda: dataclasses.replace(make_commit(1, status="aborted"), delta=DELTA),
            "an aborted round commits none",
        ),
        (lambda: with_delta((0.0, 1.0)), "Commit.delta has 2 values, the model 4"),
        (lambda: with_delta((0.0, 1.0, math.nan, 0.0)), r"Commit.delta\[2\] must be a finite"),
        (lambda: with_delta((0.0, 1.0, 2.0, "3")), r"Commit.delta\[3\] must be a number"),
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
        (lambda: RoundRow(0, "plus", T0, 1.0, 3, 3, 0, "maybe", ""), "RoundRow.status 'maybe'"),
        (
            lambda: RoundRow(0, "plus", T0, -1.0, 3, 3, 0, "ok", ""),
            "RoundRow.duration_s must be in",
        ),
        (
            lambda: RoundRow(0, "plus", T0, math.nan, 3, 3, 0, "ok", ""),
            "duration_s must be a finite",
        ),
        (lambda: RoundRow(0, "plus", T0, 1.0, 3, 4, 0, "ok", ""), "cannot exceed participants"),
        (lambda: RoundRow(0, "plus", T0, 1.0, True, 1, 0, "ok", ""), "participants must be an int"),
        (lambda: RoundRow(-1, "plus", T0, 1.0, 3, 3, 0, "ok", ""), "RoundRow.round must be in"),
        (lambda: RoundRow(0, "Plus Mode", T0, 1.0, 3, 3, 0, "ok", ""), "RoundRow.mode"),
        (lambda: RoundRow(0, "plus", T0, 1.0, 3, 3, 0, "ok", "a\r\nb"), "control character"),
        (lambda: MetricsRow(0, 1.5, 0.5, 0.5, 0.5, 0.5, 0.1), "MetricsRow.roc_auc must be in"),
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
    row = RoundRow(0, "off", 1, 2, 3, 3, 0, "ok", "")
    assert type(row.started_at) is float and type(row.duration_s) is float
    perf = PerfRow(0, 1, 1, {"decode": 2}, 0, 1, 1)
    assert list(perf.stage_s) == list(STAGES)
    assert perf.stage_s["decode"] == 2.0 and type(perf.stage_s["decode"]) is float
    with pytest.raises(TypeError):
        perf.stage_s["decode"] = 3.0  # type: ignore[index]
