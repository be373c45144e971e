"""optimizer.csv and the strategy's replay: written with each round, checked, reconciled."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from fedd.daemon.errors import StateError
from fedd.daemon.state.csvfile import write_table
from fedd.daemon.state.hubfiles import OPTIMIZER
from fedd.daemon.state.replay import optimizer_rows
from fedd.daemon.state.store import HubStore
from fedd.learner.strategy import ServerState, Strategy, server_step
from tests.daemon._support import set_cell, snapshot
from tests.daemon.state._support import FEATURES, crash_before_the_model, make_commit

ADAM = Strategy("fedadam", server_lr=0.3)
MEANS = [(0.5, -1.25, 2.0, 1 / 3), (0.25, 0.5, -1.0, 0.0), (-0.125, 0.75, 0.5, 1e-9)]
NAMES = ("bias", *FEATURES)


def commit_mean(store: HubStore, r: int, mean: Sequence[float], **kw: object) -> None:
    """Commit round `r`, whose survivors' mean update is `mean`, as the hub does."""
    assert store.optimizer is not None
    step, _ = server_step(store.strategy, store.optimizer, mean)
    commit = make_commit(r, step, previous=store.model, **kw)  # type: ignore[arg-type]
    applied = commit.delta is not None
    store.commit(dataclasses.replace(commit, mean=tuple(mean) if applied else None))


def adam_run(state_dir: Path, rounds: int = 3) -> HubStore:
    store = HubStore.open(state_dir)
    store.start("run-1", FEATURES, {"mode": "plus", **ADAM.settings})
    for r, mean in enumerate(MEANS[:rounds], 1):
        commit_mean(store, r, mean)
    return store


def expected_state(rounds: int) -> ServerState:
    state = ServerState.initial(ADAM, len(NAMES))
    for mean in MEANS[:rounds]:
        _, state = server_step(ADAM, state, mean)
    return state


def test_each_training_round_rewrites_the_optimizer_state(tmp_path: Path) -> None:
    store = adam_run(tmp_path)
    assert store.strategy == ADAM and store.optimizer == expected_state(3)
    lines = (tmp_path / "optimizer.csv").read_text().splitlines()
    assert lines[0] == "round,parameter,momentum,second_moment,control"
    assert [line.split(",")[:2] for line in lines[1:]] == [["3", n] for n in NAMES]
    again = HubStore.open(tmp_path)
    assert (again.optimizer, again.model, again.reconciled) == (store.optimizer, store.model, [])
    # An aborted round leaves it alone.
    before = (tmp_path / "optimizer.csv").read_bytes()
    commit_mean(again, 4, MEANS[0], status="aborted", metrics=False)
    assert (tmp_path / "optimizer.csv").read_bytes() == before


def test_fedavg_keeps_no_optimizer_state(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path)
    store.start("run-1", FEATURES, {"mode": "plus"})
    commit_mean(store, 1, MEANS[0])
    assert not (tmp_path / "optimizer.csv").exists()
    assert store.model == list(MEANS[0])  # server_lr 1: the mean itself


def test_a_step_that_is_not_the_strategys_is_refused(tmp_path: Path) -> None:
    store = adam_run(tmp_path, rounds=1)
    commit = make_commit(2, MEANS[1], previous=store.model)  # FedAvg's step, not Adam's
    with pytest.raises(ValueError, match="the delta is not the step fedadam makes"):
        store.commit(commit)


def test_the_state_of_a_round_that_never_committed_is_rewritten_from_the_replay(
    tmp_path: Path,
) -> None:
    store = adam_run(tmp_path, rounds=2)
    committed = snapshot(tmp_path)
    # A crash after round 3's optimizer.csv replaced round 2's, before the model.
    crash_before_the_model(tmp_path, store, 3)
    write_table(tmp_path / "optimizer.csv", OPTIMIZER, optimizer_rows(3, NAMES, expected_state(3)))
    again = HubStore.open(tmp_path)
    assert again.optimizer == expected_state(2)
    assert snapshot(tmp_path) == committed
    assert (
        "optimizer.csv: the state of a round that never committed (a crash before its "
        in (again.reconciled[-1])
    )
    assert again.reconciled[-1].endswith("rewritten from the replay, as of round 2")


def test_the_state_of_a_first_round_that_never_committed_is_removed(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path)
    store.start("run-1", FEATURES, {"mode": "plus", **ADAM.settings})
    write_table(tmp_path / "optimizer.csv", OPTIMIZER, optimizer_rows(1, NAMES, expected_state(1)))
    again = HubStore.open(tmp_path, read_only=True)
    assert again.reconciled[-1].endswith("[read-only: not written]")
    assert (tmp_path / "optimizer.csv").exists()
    again = HubStore.open(tmp_path)
    assert again.reconciled[-1].endswith(": removed")
    assert not (tmp_path / "optimizer.csv").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: set_cell(d / "optimizer.csv", 3, "second_moment", "0.5"),
            r"optimizer.csv row 3, column 'second_moment': 0.5, but the replay of updates.csv "
            r"through fedadam \(server_lr 0.3, beta1 0.9, beta2 0.99, tau 0.1\) gives",
        ),
        (
            lambda d: set_cell(d / "optimizer.csv", 2, "round", "2"),
            "optimizer.csv row 2, column 'round': 2, but the replay",
        ),
        (
            lambda d: set_cell(d / "updates.csv", 6, "mean", "0.3"),
            r"updates.csv row 6, column 'delta': .*, but fedadam .* makes .* of the round's mean",
        ),
        (
            lambda d: (d / "optimizer.csv").unlink(),
            "optimizer.csv: missing, but round 3 trained the model with fedadam",
        ),
        (
            lambda d: set_cell(d / "run.csv", 9, "value", "0.5"),  # server_lr
            r"updates.csv row 2, column 'delta': .*, but fedadam \(server_lr 0.5",
        ),
        (
            lambda d: set_cell(d / "run.csv", 8, "value", "fedavg"),  # strategy
            r"run.csv: the run's strategy: beta1 is a setting of fedadam",
        ),
        (
            lambda d: set_cell(d / "run.csv", 8, "value", "fedavgm"),
            r"run.csv: the run's strategy: beta1 is a setting",
        ),
    ],
)
def test_optimizer_state_that_is_not_the_replay_is_refused(
    tmp_path: Path, edit: object, message: str
) -> None:
    adam_run(tmp_path)
    edit(tmp_path)  # type: ignore[operator]
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_optimizer_state_in_a_fedavg_run_is_refused(tmp_path: Path) -> None:
    store = adam_run(tmp_path / "adam")
    assert store.optimizer is not None
    fedavg = HubStore.open(tmp_path / "fedavg")
    fedavg.start("run-1", FEATURES, {"mode": "plus"})
    commit_mean(fedavg, 1, MEANS[0])
    shutil.copy(tmp_path / "adam" / "optimizer.csv", tmp_path / "fedavg" / "optimizer.csv")
    set_cell(tmp_path / "fedavg" / "optimizer.csv", 2, "round", "1")
    with pytest.raises(StateError, match="the run's strategy fedavg keeps no state"):
        HubStore.open(tmp_path / "fedavg")
