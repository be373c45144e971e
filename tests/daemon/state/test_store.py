"""The hub's store: a fresh directory, start, commit's exact rows, peers, read-only opening."""

from __future__ import annotations

import dataclasses
import io
import math
import os
import shutil
import stat
from pathlib import Path

import pytest

from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.hubfiles import LOGS, PeerRow
from fedd.daemon.state.store import HubStore
from tests.daemon._support import mode, snapshot
from tests.daemon.state._support import (
    FEATURES,
    T0,
    commit_next,
    crash_before_the_model,
    make_commit,
    metrics_row,
    started,
    statistics,
)

# --- a fresh directory, start -----------------------------------------------------------


def test_open_creates_a_private_directory_and_writes_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "hub"
    store = HubStore.open(state_dir)
    assert mode(state_dir) == 0o700
    assert list(state_dir.iterdir()) == []
    assert (store.run_id, store.features, store.model) == (None, None, None)
    assert (store.committed_round, store.settings, store.reconciled) == (-1, {}, [])
    assert store.recent_rounds(5) == []
    assert store.load_peers() == []


def test_start_writes_run_csv_and_empty_logs(tmp_path: Path) -> None:
    store = started(tmp_path)
    lines = (tmp_path / "run.csv").read_text().splitlines()
    assert store.created_at is not None
    assert lines == [
        "key,value",
        "run_id,run-1",
        f"created_at,{store.created_at!r}",
        "feature,Time",
        "feature,V1",
        "feature,Amount",
        "secagg,plus",
        'eval_test,"data/test, v2.csv"',
    ]
    for table in LOGS:
        assert (tmp_path / table.name).read_text() == ",".join(table.header) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run.csv"] + [t.name for t in LOGS]
    )
    assert all(mode(p) == 0o600 for p in tmp_path.iterdir())
    again = HubStore.open(tmp_path)
    assert (again.run_id, again.features, again.created_at) == ("run-1", FEATURES, store.created_at)
    assert again.settings == {"secagg": "plus", "eval_test": "data/test, v2.csv"}
    assert (again.model, again.committed_round, again.reconciled) == (None, -1, [])


def test_start_only_on_a_fresh_directory(tmp_path: Path) -> None:
    store = started(tmp_path)
    with pytest.raises(StateError, match="already holds run 'run-1'"):
        store.start("run-2", FEATURES, {})
    with pytest.raises(StateError, match="already holds run 'run-1'"):
        HubStore.open(tmp_path).start("run-2", FEATURES, {})


@pytest.mark.parametrize(
    ("run_id", "features", "run_settings", "message"),
    [
        ("run 1", FEATURES, {}, "run id must be"),
        ("", FEATURES, {}, "run id must be"),
        ("run-1", (), {}, "at least one feature"),
        ("run-1", ("a", "a"), {}, "feature 2: feature 'a' appears twice"),
        ("run-1", ("a", "bias"), {}, "feature 2: 'bias' is the model's intercept"),
        ("run-1", ("a", ""), {}, "feature 2: feature name must not be empty"),
        ("run-1", ("a\nb",), {}, "control character"),
        ("run-1", FEATURES, {"run_id": "x"}, "setting 'run_id' is reserved"),
        ("run-1", FEATURES, {"feature": "x"}, "setting 'feature' is reserved"),
        ("run-1", FEATURES, {"statistics_round": "1"}, "setting 'statistics_round' is reserved"),
        ("run-1", FEATURES, {"statistics_rows": "9"}, "setting 'statistics_rows' is reserved"),
        ("run-1", FEATURES, {"note": "two\nlines"}, "setting 'note': .* control character"),
        ("run-1", FEATURES, {"rounds": 10}, "setting 'rounds': must be a string"),
        ("run-1", FEATURES, {"": "x"}, "setting '': must not be empty"),
    ],
)
def test_start_refuses_bad_arguments_and_writes_nothing(
    tmp_path: Path,
    run_id: str,
    features: tuple[str, ...],
    run_settings: dict[str, str],
    message: str,
) -> None:
    store = HubStore.open(tmp_path)
    with pytest.raises(ValueError, match=message):
        store.start(run_id, features, run_settings)
    assert list(tmp_path.iterdir()) == []
    assert store.run_id is None


# --- commit -----------------------------------------------------------------------------


def test_commit_writes_the_documented_rows(tmp_path: Path) -> None:
    store = started(tmp_path)
    store.commit(make_commit(0, (1.0, 2.0, 3.0, 0.1)))
    commit_next(store, 1, (0.0, -0.0, 0.0, 0.2), metrics=False)
    commit_next(store, 2, metrics=False, status="aborted")
    assert (store.committed_round, store.model) == (2, [1.0, 2.0, 3.0, 0.1 + 0.2])

    def read(name: str) -> list[str]:
        return (tmp_path / name).read_text().splitlines()[1:]

    assert read("round_log.csv") == [
        "0,training,plus,1700000000.25,0.5,3,2,1,ok,",
        "1,training,plus,1700000001.25,0.5,3,2,1,ok,",
        "2,training,plus,1700000002.25,0.5,3,2,1,aborted,too few",
    ]
    assert read("metrics_log.csv") == [
        "0,test,0,0,200,12,0.9,0.0,0.4,0.0,0.5,0.25,0.3333333333333333,0.5,0.375,0.4,0.1"
    ]
    # Stages a round did not report are written as 0.0, in the documented column order.
    assert read("perf_log.csv") == [
        f"{r},1.5,0.75,1.0,0.0,0.0,0.0,0.0,0.125,0.0,0.0625,1000,2000" for r in range(3)
    ]
    assert read("client_perf.csv") == [
        f"{r},{p},{n},0.5,0.25,4096" for r in range(3) for p, n in (("p1", 100), ("p2", 101))
    ]
    # The ok rounds' deltas, bias first; the aborted round applied none.
    assert read("updates.csv") == [
        "0,bias,1.0,1.0,",
        "0,Time,2.0,2.0,",
        "0,V1,3.0,3.0,",
        "0,Amount,0.1,0.1,",
        "1,bias,0.0,0.0,",
        "1,Time,-0.0,-0.0,",
        "1,V1,0.0,0.0,",
        "1,Amount,0.2,0.2,",
    ]
    assert (tmp_path / "global_model.csv").read_text().splitlines() == [
        "round,parameter,value",
        "2,bias,1.0",
        "2,Time,2.0",
        "2,V1,3.0",
        "2,Amount,0.30000000000000004",
    ]
    assert not (tmp_path / "stats.csv").exists()
    assert all(mode(p) == 0o600 for p in tmp_path.iterdir())


def test_commit_refuses_bad_commits_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start"):
        HubStore.open(tmp_path).commit(make_commit(0))
    other = HubStore.open(tmp_path / "other")
    other.start("run-1", ("Time", "V2", "Amount"), {})
    with pytest.raises(ValueError, match="the statistics are not of the run's features, in order"):
        other.commit(make_commit(1, kind="statistics"))
    shutil.rmtree(tmp_path / "other")
    store = started(tmp_path)
    commit_next(store, 1, kind="statistics")
    commit_next(store, 2)
    before = snapshot(tmp_path)
    model = store.model
    assert model is not None
    for bad, message in [
        (make_commit(2, previous=model), "round 2 is not after the last committed round 2"),
        (make_commit(0, previous=model), "round 0 is not after"),
        (make_commit(3, (1.0, 2.0)), "the model has 2 parameters; the bias and 3 features make 4"),
        # The model must be the committed one plus the delta, bit for bit.
        (make_commit(3), "not the previous model plus the round's delta"),
        (one_ulp_off(make_commit(3, previous=model)), "not the previous model plus"),
        (make_commit(3, status="aborted"), "an aborted round must leave the model as it was"),
        (make_commit(3, kind="evaluation"), "a round of kind 'evaluation' must leave the model"),
        (make_commit(3, kind="statistics"), "a round of kind 'statistics' must leave the model"),
        # Scores are of the model of a committed training round, once per source.
        (
            make_commit(3, previous=model, kind="evaluation", scores=[3]),
            "metrics of round 3, which is of kind 'evaluation': only training rounds make",
        ),
        (
            make_commit(4, previous=model, kind="evaluation", scores=[3]),
            "metrics of round 3, which is not a committed round the store holds",
        ),
        (
            make_commit(3, previous=model, scores=[2, 1]),
            "metrics of round 1, which is of kind 'statistics'",
        ),
        (
            dataclasses.replace(
                make_commit(3, previous=model), metrics=[metrics_row(2, "test", 3)]
            ),
            "round 2's model is already scored by 'test'",
        ),
        (
            make_commit(3, previous=model, kind="statistics"),
            "the run's statistics committed in round 1: a run computes them once",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            store.commit(bad)
    assert snapshot(tmp_path) == before
    commit_next(store, 5, scores=[2])  # increasing is enough: numbers may be skipped
    assert store.committed_round == 5


def test_a_statistics_commit_writes_stats_csv_then_its_provenance(tmp_path: Path) -> None:
    store = started(tmp_path)
    run_csv = (tmp_path / "run.csv").read_text()
    commit_next(store, 1, kind="statistics")
    assert (store.statistics, store.committed_round, store.training_rounds) == (statistics(1), 1, 0)
    assert (tmp_path / "stats.csv").read_text().splitlines() == [
        "column,mean,std,note",
        "Time,94813.5,47488.25,",
        "V1,0.0,1.0,zero variance",
        "Amount,88.25,250.5,",
    ]
    assert (tmp_path / "run.csv").read_text() == run_csv + (
        "statistics_round,1\nstatistics_peers,3\nstatistics_rows,900\nstatistics_positives,15\n"
    )
    # The model stays zeros: nothing in updates.csv, and no model to score.
    assert store.model == [0.0] * 4
    for name in ("updates.csv", "metrics_log.csv"):
        assert len((tmp_path / name).read_text().splitlines()) == 1
    assert all(mode(p) == 0o600 for p in tmp_path.iterdir())
    again = HubStore.open(tmp_path)
    assert (again.reconciled, again.statistics, again.committed_round) == ([], statistics(1), 1)
    assert again.settings == store.settings  # the provenance is not a setting
    assert again.recent_rounds(5) == store.recent_rounds(5)
    assert [(r.round, r.kind, m) for r, m, _ in again.recent_rounds(5)] == [(1, "statistics", None)]
    commit_next(again, 2)
    assert HubStore.open(tmp_path, read_only=True).statistics == statistics(1)


def one_ulp_off(commit: Commit) -> Commit:
    *head, last = commit.model
    return dataclasses.replace(commit, model=(*head, math.nextafter(last, math.inf)))


def test_the_sign_of_a_zero_counts_in_the_model_check(tmp_path: Path) -> None:
    store = started(tmp_path)
    # 0.0 + -0.0 is 0.0: a model of -0.0 is not zeros plus this delta, though -0.0 == 0.0.
    bad = make_commit(0, (0.0, -0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="not the previous model plus"):
        store.commit(dataclasses.replace(bad, model=(0.0, -0.0, 1.0, 1.0)))
    store.commit(bad)
    assert [math.copysign(1, v) for v in HubStore.open(tmp_path).model or []] == [1, 1, 1, 1]


def test_a_commit_fsyncs_its_rows_with_the_model_then_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rename is the commit point: every row and the model itself must be on
    # disk before it, and the directory flushed after it.
    store = started(tmp_path, rounds=1)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            events.append("directory")
        else:
            names = [p.name for p in tmp_path.iterdir() if p.stat().st_ino == info.st_ino]
            events.append("model" if names[0].startswith(".global_model.csv.") else names[0])
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(f"rename to {Path(dst).name}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    commit_next(store, 1)
    *before, rename, last = events
    assert sorted(before) == sorted([*(table.name for table in LOGS), "model"])
    assert (rename, last) == ("rename to global_model.csv", "directory")


# --- peers, read-only -------------------------------------------------------------------


def test_peers_round_trip_and_may_be_saved_before_start(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path)
    rows = [
        PeerRow("p1", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", T0, T0 + 5, 0, "alive"),
        PeerRow("p2", "", T0 + 0.1, T0 + 0.2, 3, "gone"),
    ]
    store.save_peers(rows)
    assert mode(tmp_path / "peers.csv") == 0o600
    again = HubStore.open(tmp_path)
    assert again.run_id is None and again.load_peers() == rows
    again.start("run-1", FEATURES, {})
    with pytest.raises(ValueError, match="appears twice"):
        again.save_peers([rows[0], rows[0]])
    again.save_peers(rows[1:])
    assert HubStore.open(tmp_path).load_peers() == rows[1:]


def test_peers_csv_is_not_rewritten_for_last_seen_alone(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path)
    path = tmp_path / "peers.csv"
    rows = [PeerRow("p1", "", T0, T0 + 5, 1, "alive"), PeerRow("p2", "", T0, T0 + 6, 2, "alive")]
    store.save_peers(rows)
    written = path.stat().st_ino  # an atomic rewrite is a new file
    later = [dataclasses.replace(row, last_seen=row.last_seen + 60) for row in rows]
    store.save_peers(later)
    assert path.stat().st_ino == written
    assert HubStore.open(tmp_path).load_peers() == rows
    changed = [later[0], dataclasses.replace(later[1], status="gone")]
    store.save_peers(changed)
    assert path.stat().st_ino != written
    assert HubStore.open(tmp_path).load_peers() == changed
    stopped = [dataclasses.replace(row, last_seen=row.last_seen + 1) for row in changed]
    store.save_peers(stopped, stopping=True)
    assert HubStore.open(tmp_path).load_peers() == stopped


def test_read_only_changes_nothing_and_sees_only_committed_rounds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such state directory"):
        HubStore.open(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
    store = started(tmp_path, rounds=2)
    crash_before_the_model(tmp_path, store, 2, torn="2,p")
    (tmp_path / ".run.csv.x1.tmp").write_text("")
    before = snapshot(tmp_path)
    reader = HubStore.open(tmp_path, read_only=True)
    assert snapshot(tmp_path) == before
    assert reader.recent_rounds(10) == store.recent_rounds(10)
    assert len(reader.reconciled) == 7
    assert all(
        note.endswith("[read-only: not written]") or note.endswith("[read-only: not removed]")
        for note in reader.reconciled
    )
    with pytest.raises(io.UnsupportedOperation):
        reader.commit(make_commit(2))
    with pytest.raises(io.UnsupportedOperation):
        reader.save_peers([])
    with pytest.raises(io.UnsupportedOperation):
        reader.start("run-2", FEATURES, {})
    assert snapshot(tmp_path) == before


def test_a_writing_hub_keeps_a_bounded_history_a_reader_keeps_all(tmp_path, monkeypatch):
    import fedd.daemon.state.store as store_module

    monkeypatch.setattr(store_module, "HISTORY", 3)
    store = HubStore.open(tmp_path)
    store.start("run-x", FEATURES, {})
    commit_next(store, 1, kind="statistics")
    for number in range(2, 7):
        commit_next(
            store, number, (0.0, 0.0, 0.0, float(number)), scores=[number - 1] if number > 2 else []
        )
    assert [r.round for r, _, _ in store.recent_rounds(10)] == [4, 5, 6]
    assert {row.round for row in store.client_rows()} <= {4, 5, 6}
    assert [(m.round, m.source) for m in store.metrics_rows()] == [
        (4, "test"), (4, "federated"), (5, "test"), (5, "federated"), (6, "test")
    ]  # fmt: skip
    # A score of a round no longer held cannot be checked: it is refused.
    with pytest.raises(ValueError, match="metrics of round 2, which is not a committed round"):
        commit_next(store, 7, kind="evaluation", scores=[2])
    assert store.training_rounds == 5
    reader = HubStore.open(tmp_path, read_only=True)
    assert [r.round for r, _, _ in reader.recent_rounds(10)] == [1, 2, 3, 4, 5, 6]
    assert len(reader.metrics_rows()) == 9 and reader.training_rounds == 5
    again = HubStore.open(tmp_path)
    assert [r.round for r, _, _ in again.recent_rounds(10)] == [4, 5, 6]
    assert again.metrics_rows() == store.metrics_rows() and again.training_rounds == 5
