"""Restarts and crashes: the rounds the hub's store keeps, the repairs it makes,
and the replay of updates.csv to the model."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.hubfiles import (
    METRICS_LOG,
    PERF_LOG,
    ROUND_LOG,
)
from fedd.daemon.state.store import HubStore
from tests.daemon._support import mode, set_cell, snapshot
from tests.daemon.state._support import (
    FEATURES,
    commit_next,
    crash_before_the_model,
    make_commit,
    started,
)

# --- restarts and crashes ---------------------------------------------------------------


def test_a_restarted_hub_sees_exactly_the_committed_rounds(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=4)
    expected = store.recent_rounds(10)
    again = HubStore.open(tmp_path)
    assert again.reconciled == []
    assert (again.committed_round, again.model, again.features) == (3, store.model, FEATURES)
    assert again.recent_rounds(10) == expected
    assert [r.round for r, _, _ in expected] == [0, 1, 2, 3]
    assert [m is None for _, m, _ in expected] == [False, True, False, False]
    assert again.recent_rounds(2) == expected[2:]
    assert again.recent_rounds(0) == []
    with pytest.raises(ValueError, match="non-negative"):
        again.recent_rounds(-1)
    commit_next(again, 4)
    assert [r.round for r, _, _ in HubStore.open(tmp_path).recent_rounds(10)] == [0, 1, 2, 3, 4]


def test_rows_of_a_round_that_never_committed_are_dropped(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=3)
    committed = snapshot(tmp_path)
    crash_before_the_model(tmp_path, store, 3)
    assert snapshot(tmp_path) != committed
    again = HubStore.open(tmp_path)
    assert snapshot(tmp_path) == committed
    assert (again.committed_round, again.model) == (2, store.model)
    assert again.recent_rounds(10) == store.recent_rounds(10)
    assert len(again.reconciled) == 5  # the five logs
    assert all("row(s) of round 3, which never committed" in note for note in again.reconciled)
    commit_next(again, 3)
    final = HubStore.open(tmp_path)
    assert final.reconciled == []
    assert [r.round for r, _, _ in final.recent_rounds(10)] == [0, 1, 2, 3]
    assert all(mode(p) == 0o600 for p in tmp_path.iterdir())


def test_client_rows_are_those_of_committed_rounds(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=3)
    expected = [client for r in range(3) for client in make_commit(r).clients]
    assert store.client_rows() == expected
    crash_before_the_model(tmp_path, store, 3)
    reader = HubStore.open(tmp_path, read_only=True)
    assert reader.client_rows() == expected  # round 3 never committed
    pairs = [(c.round, c.peer) for c in reader.client_rows()]
    assert pairs[:3] == [(0, "p1"), (0, "p2"), (1, "p1")]


def test_a_torn_last_line_is_dropped_with_a_note(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=2)
    committed = snapshot(tmp_path)
    crash_before_the_model(tmp_path, store, 2, torn="2,p3,10")
    again = HubStore.open(tmp_path)
    assert snapshot(tmp_path) == committed
    assert any("torn last line '2,p3,10'" in note for note in again.reconciled)
    # A torn fragment alone (the crash hit the first append of the round) goes the same way.
    with open(tmp_path / "round_log.csv", "a") as f:
        f.write("2,plus,17")
    assert HubStore.open(tmp_path).reconciled == [
        "round_log.csv: dropped a torn last line '2,plus,17' (a crash in the middle of an append)"
    ]
    assert snapshot(tmp_path) == committed


def test_a_directory_without_survivors_csv_opens_not_knowing_its_survivors(
    tmp_path: Path,
) -> None:
    """As a directory written before survivors.csv existed: its rounds open, their
    survivors unknown (None), and the rounds after know theirs."""
    started(tmp_path, rounds=2)
    (tmp_path / "survivors.csv").unlink()
    again = HubStore.open(tmp_path)
    assert again.reconciled == [
        "survivors.csv: created; the survivors of earlier rounds are not known"
    ]
    commit_next(again, 2)
    assert [again.included(r, "p1") for r in (0, 1, 2, 3)] == [None, None, True, None]
    assert again.included(2, "p3") is False
    assert HubStore.open(tmp_path).reconciled == []


def test_an_interrupted_start_is_completed(tmp_path: Path) -> None:
    started(tmp_path)
    (tmp_path / "perf_log.csv").unlink()
    (tmp_path / "round_log.csv").write_text("round,mo")  # torn header
    (tmp_path / "metrics_log.csv").write_text("")
    again = HubStore.open(tmp_path)
    assert sorted(again.reconciled) == [
        "metrics_log.csv: was empty, without even its header",
        "perf_log.csv: created (missing after an interrupted start)",
        "round_log.csv: dropped a torn last line 'round,mo' (a crash in the middle of an append)",
    ]
    for table in (METRICS_LOG, PERF_LOG, ROUND_LOG):
        assert (tmp_path / table.name).read_text() == ",".join(table.header) + "\n"
        assert mode(tmp_path / table.name) == 0o600
    again.commit(make_commit(0))
    assert HubStore.open(tmp_path).committed_round == 0


def test_leftover_temporary_files_are_removed_and_others_kept(tmp_path: Path) -> None:
    started(tmp_path, rounds=1)
    (tmp_path / ".global_model.csv.abc_123.tmp").write_text("half")
    (tmp_path / "notes.txt").write_text("mine")
    again = HubStore.open(tmp_path)
    assert again.reconciled == [
        ".global_model.csv.abc_123.tmp: removed, left over from an interrupted write"
    ]
    assert not (tmp_path / ".global_model.csv.abc_123.tmp").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_failed_commit_stops_further_commits_until_reopened(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=1)
    committed = snapshot(tmp_path)
    # A directory where perf_log.csv was: its append fails after round_log's and
    # metrics_log's rows went out, and those are taken back.
    perf_log = tmp_path / "perf_log.csv"
    kept = perf_log.rename(tmp_path / "kept")
    perf_log.mkdir()
    with pytest.raises(ConfigError, match=r"perf_log\.csv: cannot append"):
        commit_next(store, 1)
    perf_log.rmdir()
    kept.rename(perf_log)
    with pytest.raises(StateError, match="an earlier commit failed midway"):
        commit_next(store, 2)
    assert store.committed_round == 0
    assert snapshot(tmp_path) == committed
    again = HubStore.open(tmp_path)
    assert again.reconciled == []
    commit_next(again, 1)
    assert HubStore.open(tmp_path).committed_round == 1


# --- updates.csv: the model replays from its deltas --------------------------------------


def with_an_aborted_round(state_dir: Path) -> HubStore:
    """Rounds 0 and 1 ok, 2 aborted, 3 ok: updates.csv holds rows 2-13, four per ok round."""
    store = started(state_dir, rounds=2)
    commit_next(store, 2, status="aborted")
    commit_next(store, 3, (0.25, 1e-300, -0.0, 7.0))
    return store


def test_the_committed_model_is_zeros_plus_the_updates_in_order(tmp_path: Path) -> None:
    store = with_an_aborted_round(tmp_path)
    with open(tmp_path / "updates.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["round"] for r in rows] == ["0"] * 4 + ["1"] * 4 + ["3"] * 4
    assert [r["parameter"] for r in rows] == ["bias", *FEATURES] * 3
    model = [0.0] * 4
    for i, row in enumerate(rows):
        model[i % 4] += float(row["delta"])
    with open(tmp_path / "global_model.csv", newline="") as f:
        committed = [r["value"] for r in csv.DictReader(f)]
    assert [repr(v) for v in model] == committed  # bit for bit, as written
    assert HubStore.open(tmp_path).model == store.model == model


def test_updates_of_a_round_cut_short_by_a_crash_are_dropped(tmp_path: Path) -> None:
    store = with_an_aborted_round(tmp_path)
    committed = snapshot(tmp_path)
    crash_before_the_model(tmp_path, store, 4)
    with open(tmp_path / "updates.csv", "a") as f:
        f.write("5,bi")  # and a torn line after them
    again = HubStore.open(tmp_path)
    assert snapshot(tmp_path) == committed
    assert (again.committed_round, again.model) == (3, store.model)
    assert [n for n in again.reconciled if n.startswith("updates.csv")] == [
        "updates.csv: dropped 4 row(s) of round 4, which never committed "
        "(a crash before its model was written)",
        "updates.csv: dropped a torn last line '5,bi' (a crash in the middle of an append)",
    ]
    commit_next(again, 4)
    assert HubStore.open(tmp_path).reconciled == []


@pytest.mark.parametrize(
    ("name", "row", "column", "value", "message"),
    [
        # Another valid number: only the replay can tell.
        (
            "updates.csv",
            3,
            "delta",
            "-1.5",
            r"updates.csv row 3, column 'delta': -1.5, but fedavg \(server_lr 1\) makes -1.25 "
            "of the round's mean: the delta and the mean disagree",
        ),
        (
            "updates.csv",
            13,
            "mean",
            "7.000000000000001",
            r"updates.csv row 13, column 'delta': 7.0, but .* makes 7.000000000000001",
        ),
        (
            "global_model.csv",
            3,
            "value",
            "-2.75",
            r"global_model.csv row 3, column 'value': -2.75, but zeros plus the deltas of "
            r"updates.csv make -2.5: the model and its updates disagree",
        ),
        (
            "global_model.csv",
            5,
            "value",
            "7.666666666666668",
            "global_model.csv row 5, column .value.: 7.666666666666668, but .* 7.666666666666667",
        ),
        ("updates.csv", 2, "delta", "x", "updates.csv row 2, column 'delta': 'x' is not a number"),
        ("updates.csv", 2, "delta", "1e999", "column 'delta': must be a finite number, got inf"),
        (
            "updates.csv",
            4,
            "parameter",
            "V2",
            "updates.csv row 4, column 'parameter': expected parameter 'V1' in round 0",
        ),
        (
            "updates.csv",
            10,
            "round",
            "2",
            "updates.csv row 10, column 'round': round 2 is aborted in round_log.csv",
        ),
        (
            "round_log.csv",
            3,
            "status",
            "aborted",
            "updates.csv row 6, column 'round': round 1 is aborted in round_log.csv",
        ),
    ],
)
def test_a_bad_update_cell_is_named_or_caught_by_the_replay(
    tmp_path: Path, name: str, row: int, column: str, value: str, message: str
) -> None:
    with_an_aborted_round(tmp_path)
    set_cell(tmp_path / name, row, column, value)
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def drop_line(number: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        return "".join(lines[: number - 1] + lines[number:])

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            drop_line(5),
            r"updates.csv: round 0, an ok training round in round_log.csv, has 3 of its 4 "
            "parameter rows: rows are missing",
        ),
        (
            lambda t: t.splitlines()[0] + "\n",
            "round 0, an ok training round in round_log.csv, has 0 of its 4",
        ),
        (
            lambda t: t + "3,Extra,0.0,0.0,\n",
            r"updates.csv row 14, column 'parameter': expected no more rows in round 3",
        ),
        (
            lambda t: t + "3,bias,0.25,0.25,\n",
            r"updates.csv row 14, column 'round': round 3, parameter 'bias', appears again "
            r"\(first at row 10\)",
        ),
        (
            lambda t: t.replace("1,bias,0.5,0.5,\n", "").replace(
                "3,bias,0.25,0.25,\n", "3,bias,0.25,0.25,\n1,bias,0.5,0.5,\n"
            ),
            r"updates.csv row 10, column 'round': round 1 after round 3: out of order",
        ),
    ],
)
def test_missing_extra_or_misplaced_update_rows_are_refused(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    with_an_aborted_round(tmp_path)
    path = tmp_path / "updates.csv"
    path.write_text(edit(path.read_text()))
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_missing_updates_file_is_refused_once_rounds_committed(tmp_path: Path) -> None:
    with_an_aborted_round(tmp_path)
    (tmp_path / "updates.csv").unlink()
    with pytest.raises(
        StateError, match=r"updates.csv: round 0, an ok training round in round_log.csv, has 0 of"
    ):
        HubStore.open(tmp_path)
    assert not (tmp_path / "updates.csv").exists()
