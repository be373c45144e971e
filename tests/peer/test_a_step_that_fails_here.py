"""What a round throws on the peer's side never ends the peer: it says why in one
line, sits the round out (telling the hub), and the federation runs to its end."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fedd.daemon.errors import ConfigError
from fedd.peer import work
from fedd.peer.state import PeerState
from tests.daemon.hostile import InProcessFederation, squeeze_evaluations

P1 = InProcessFederation.routing("p1")
# What a one-class peer on raw rows got from the loss formula before it was clamped.
ROUNDED_BELOW_ZERO = -1.5547566199420472e-15


def errors_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("secagg", ["off", "full"])
def test_a_value_the_round_log_cannot_hold_costs_one_line_not_the_peer(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    secagg: str,
) -> None:
    real_train: Callable[..., Any] = work.train

    def rounding_below_zero(*args: Any, **kwargs: Any) -> Any:
        params, stats = real_train(*args, **kwargs)
        return params, dataclasses.replace(stats, final_loss=ROUNDED_BELOW_ZERO)

    monkeypatch.setattr(work, "train", rounding_below_zero)
    with InProcessFederation(tmp_path, peers=3, rounds=2, secagg=secagg) as fed:
        outcome = fed.outcome()
        logged = fed.agents[P1].state.rounds()
    assert outcome[:3] == [("statistics", "ok", 3), ("training", "ok", 3), ("training", "ok", 3)]
    # The training rounds are not in rounds.csv: their rows could not be written.
    kinds = squeeze_evaluations((r.kind, r.status) for r in logged)
    assert kinds == [("statistics", "ok"), ("evaluation", "ok")]
    lines = errors_of(caplog)
    assert len(lines) == 2 * 3  # two training rounds, three peers, one line each
    assert all(
        line.startswith(("round 2: not logged in rounds.csv: ", "round 3: not logged"))
        and "train_loss must be in [0.0, inf]" in line
        for line in lines
    )
    assert all(line.count("\n") == 0 for line in lines)


def test_a_peer_that_cannot_record_its_statistics_declines_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record comes before the statistics leave; a disk that refuses it keeps
    them here, and the hub goes on with the others."""
    record = PeerState.record_statistics

    def full_disk_for_p1(state: PeerState, run: str, round: int, rows: int) -> None:
        if state.peer_id == "p1":
            raise ConfigError(f"{state.state_dir}/statistics.csv: cannot write: No space left")
        record(state, run, round, rows)

    monkeypatch.setattr(PeerState, "record_statistics", full_disk_for_p1)
    options = {"min_peers": 2, "secagg_threshold": 2}
    with InProcessFederation(tmp_path, peers=3, rounds=1, secagg="off", hub_options=options) as fed:
        outcome = fed.outcome()
        logged = fed.agents[P1].state.rounds()
    assert outcome[:2] == [("statistics", "ok", 2), ("training", "ok", 3)]
    assert (logged[0].kind, logged[0].status) == ("statistics", "failed")
    assert "No space left" in logged[0].reason
    [line] = errors_of(caplog)
    assert line.startswith("round 1: ConfigError: ") and "sits the round out" in line


@pytest.mark.parametrize("secagg", ["off", "plus"])
def test_a_job_that_fails_tells_the_hub_which_goes_on_without_waiting_for_it(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    secagg: str,
) -> None:
    """Not a silence the hub would wait out until its training time-out."""
    real_train: Callable[..., Any] = work.train
    calls: list[int] = []

    def first_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("the rows hold one class")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(work, "train", first_fails)
    # A time-out no round of this test reaches: only a Decline lets the round end.
    options = {"min_peers": 2, "secagg_threshold": 2, "train_timeout": 3600.0}
    with InProcessFederation(
        tmp_path, peers=3, rounds=1, secagg=secagg, hub_options=options
    ) as fed:
        outcome = fed.outcome()
    assert outcome[:2] == [("statistics", "ok", 3), ("training", "ok", 2)]
    declined = [m for m in (r.getMessage() for r in caplog.records) if " declined: " in m]
    assert len(declined) == 1
    assert declined[0].endswith("declined: local training failed: the rows hold one class")
    [line] = errors_of(caplog)
    assert line.endswith(
        ": local training failed: the rows hold one class; this peer sits the round out"
    )
