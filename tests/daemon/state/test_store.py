"""The hub's CSV state: exact formats, restarts, crashes, and corrupt or foreign files."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fedd.daemon.state.store
from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.csvfile import append_rows, read_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    LOGS,
    METRICS_LOG,
    MODEL,
    PEERS,
    PERF_LOG,
    ROUND_LOG,
    RUN,
    STAGES,
    UPDATES,
    ClientPerfRow,
    Commit,
    MetricsRow,
    PeerRow,
    PerfRow,
    RoundRow,
    UpdateRow,
)
from fedd.daemon.state.store import HubStore
from fedd.learner.modelio import save_model
from tests.crypto._support import FAST
from tests.daemon._support import mode, set_cell, snapshot

FEATURES = ("Time", "V1", "Amount")
T0 = 1_700_000_000.25


DELTA = (0.5, -1.25, 2.0, 1 / 3)


def make_commit(
    r: int,
    delta: Sequence[float] = DELTA,
    *,
    previous: Sequence[float] | None = None,
    metrics: bool = True,
    peers: Sequence[str] = ("p1", "p2"),
    status: str = "ok",
) -> Commit:
    """Round `r`, applying `delta` to `previous` (zeros if None); an aborted round applies none."""
    base = list(previous) if previous is not None else [0.0] * len(delta)
    applied = None if status == "aborted" else tuple(delta)
    model = base if applied is None else [m + d for m, d in zip(base, applied, strict=True)]
    return Commit(
        round=RoundRow(
            r,
            "plus",
            T0 + r,
            0.5,
            len(peers) + 1,
            len(peers),
            1,
            status,
            "" if status == "ok" else "too few",
        ),
        model=model,
        metrics=MetricsRow(r, 0.9, 0.4, 0.5, 0.25, 1 / 3, 0.1) if metrics else None,
        perf=PerfRow(r, 1.5, 0.75, {"train_upload": 1.0, "unmask": 0.125}, 0.0625, 1000, 2000),
        clients=[ClientPerfRow(r, p, 100 + i, 0.5, 0.25, 4096) for i, p in enumerate(peers)],
        delta=applied,
    )


def commit_next(store: HubStore, r: int, delta: Sequence[float] = DELTA, **kw: Any) -> None:
    """Commit round `r` on top of the store's model."""
    store.commit(make_commit(r, delta, previous=store.model, **kw))


def started(state_dir: Path, rounds: int = 0) -> HubStore:
    store = HubStore.open(state_dir)
    store.start("run-1", FEATURES, {"secagg": "plus", "eval_test": "data/test, v2.csv"})
    for r in range(rounds):
        commit_next(store, r, metrics=r != 1)
    return store


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
        "0,plus,1700000000.25,0.5,3,2,1,ok,",
        "1,plus,1700000001.25,0.5,3,2,1,ok,",
        "2,plus,1700000002.25,0.5,3,2,1,aborted,too few",
    ]
    assert read("metrics_log.csv") == ["0,0.9,0.4,0.5,0.25,0.3333333333333333,0.1"]
    # Stages a round did not report are written as 0.0, in the documented column order.
    assert read("perf_log.csv") == [
        f"{r},1.5,0.75,1.0,0.0,0.0,0.0,0.0,0.125,0.0,0.0625,1000,2000" for r in range(3)
    ]
    assert read("client_perf.csv") == [
        f"{r},{p},{n},0.5,0.25,4096" for r in range(3) for p, n in (("p1", 100), ("p2", 101))
    ]
    # The ok rounds' deltas, bias first; the aborted round applied none.
    assert read("updates.csv") == [
        "0,bias,1.0",
        "0,Time,2.0",
        "0,V1,3.0",
        "0,Amount,0.1",
        "1,bias,0.0",
        "1,Time,-0.0",
        "1,V1,0.0",
        "1,Amount,0.2",
    ]
    assert (tmp_path / "global_model.csv").read_text().splitlines() == [
        "round,parameter,value",
        "2,bias,1.0",
        "2,Time,2.0",
        "2,V1,3.0",
        "2,Amount,0.30000000000000004",
    ]
    assert all(mode(p) == 0o600 for p in tmp_path.iterdir())


def test_commit_refuses_bad_commits_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start"):
        HubStore.open(tmp_path).commit(make_commit(0))
    store = started(tmp_path, rounds=2)
    before = snapshot(tmp_path)
    model = store.model
    assert model is not None
    for bad, message in [
        (make_commit(1, previous=model), "round 1 is not after the last committed round 1"),
        (make_commit(0, previous=model), "round 0 is not after"),
        (make_commit(2, (1.0, 2.0)), "the model has 2 parameters; the bias and 3 features make 4"),
        # The model must be the committed one plus the delta, bit for bit.
        (make_commit(2), "not the previous model plus the round's delta"),
        (one_ulp_off(make_commit(2, previous=model)), "not the previous model plus"),
        (make_commit(2, status="aborted"), "an aborted round must leave the model as it was"),
    ]:
        with pytest.raises(ValueError, match=message):
            store.commit(bad)
    assert snapshot(tmp_path) == before
    commit_next(store, 5)  # increasing is enough: numbers may be skipped
    assert store.committed_round == 5


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


def crash_before_the_model(tmp_path: Path, store: HubStore, r: int, torn: str = "") -> None:
    """What a crash leaves between a round's appends and its model write."""
    c = make_commit(r, previous=store.model)
    append_rows(tmp_path / "round_log.csv", ROUND_LOG, [c.round.values()])
    assert c.metrics is not None
    append_rows(tmp_path / "metrics_log.csv", METRICS_LOG, [c.metrics.values()])
    append_rows(tmp_path / "perf_log.csv", PERF_LOG, [c.perf.values()])
    append_rows(tmp_path / "client_perf.csv", CLIENT_PERF, [x.values() for x in c.clients])
    assert c.delta is not None
    updates = zip(("bias", *FEATURES), c.delta, strict=True)
    append_rows(tmp_path / "updates.csv", UPDATES, [(r, n, d) for n, d in updates])
    if torn:
        with open(tmp_path / "client_perf.csv", "a") as f:
            f.write(torn)


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


def test_a_failed_commit_stops_further_commits_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = started(tmp_path, rounds=1)
    committed = snapshot(tmp_path)
    real = fedd.daemon.state.store.append_rows

    def failing(path: Path, table: object, rows: object) -> None:
        if path.name == "perf_log.csv":
            raise ConfigError(f"{path}: cannot append: No space left on device")
        real(path, table, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(fedd.daemon.state.store, "append_rows", failing)
    with pytest.raises(ConfigError, match="No space left"):
        commit_next(store, 1)
    monkeypatch.setattr(fedd.daemon.state.store, "append_rows", real)
    with pytest.raises(StateError, match="an earlier commit failed midway"):
        commit_next(store, 2)
    assert store.committed_round == 0
    again = HubStore.open(tmp_path)
    assert snapshot(tmp_path) == committed
    assert len(again.reconciled) == 2  # round_log and metrics_log had the round's rows
    commit_next(again, 1)
    assert HubStore.open(tmp_path).committed_round == 1


@FAST
@given(data=st.data())
def test_any_valid_rounds_read_back_identically(data: st.DataObject) -> None:
    seconds = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
    unit = st.floats(min_value=0, max_value=1, allow_nan=False)
    # Bounded so that four rounds of deltas cannot overflow the model.
    weight = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
    count = st.integers(0, 2**63 - 1)
    text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
    rounds = sorted(data.draw(st.sets(st.integers(0, 2**31 - 1), min_size=1, max_size=4)))
    features = tuple(
        data.draw(
            st.lists(text.filter(lambda s: s and s != "bias"), min_size=1, max_size=4, unique=True)
        )
    )
    commits = []
    model = [0.0] * (len(features) + 1)
    for r in rounds:
        n = data.draw(st.integers(0, 50))
        status = data.draw(st.sampled_from(["ok", "aborted"]))
        delta = (
            None
            if status == "aborted"
            else data.draw(st.lists(weight, min_size=len(model), max_size=len(model)))
        )
        if delta is not None:
            model = [m + d for m, d in zip(model, delta, strict=True)]
        peers = data.draw(
            st.lists(
                st.from_regex(r"[A-Za-z0-9.:+=_-]{1,12}", fullmatch=True), max_size=3, unique=True
            )
        )
        commits.append(
            Commit(
                RoundRow(
                    r,
                    data.draw(st.sampled_from(["off", "full", "plus"])),
                    data.draw(seconds),
                    data.draw(seconds),
                    n + 2,
                    n,
                    2,
                    status,
                    data.draw(text),
                ),
                model,
                data.draw(
                    st.none()
                    | st.builds(MetricsRow, st.just(r), unit, unit, unit, unit, unit, seconds)
                ),
                PerfRow(
                    r,
                    data.draw(seconds),
                    data.draw(seconds),
                    data.draw(st.dictionaries(st.sampled_from(STAGES), seconds)),
                    data.draw(seconds),
                    data.draw(count),
                    data.draw(count),
                ),
                [
                    ClientPerfRow(
                        r,
                        p,
                        data.draw(count),
                        data.draw(seconds),
                        data.draw(seconds),
                        data.draw(count),
                    )
                    for p in peers
                ],
                delta,
            )
        )
    run_settings = data.draw(
        st.dictionaries(
            text.filter(lambda s: s not in ("", "run_id", "created_at", "feature")),
            text,
            max_size=3,
        )
    )
    with tempfile.TemporaryDirectory() as name:
        state_dir = Path(name)
        store = HubStore.open(state_dir)
        store.start("run-1", features, run_settings)
        for c in commits:
            store.commit(c)
        again = HubStore.open(state_dir)
        assert again.reconciled == []
        assert (again.features, again.settings) == (features, run_settings)
        assert again.model == list(commits[-1].model)  # float equality: -0.0 == 0.0, so also:
        assert [math.copysign(1, v) for v in again.model] == [
            math.copysign(1, v) for v in commits[-1].model
        ]
        assert again.committed_round == rounds[-1]
        assert again.recent_rounds(len(rounds)) == [(c.round, c.metrics, c.perf) for c in commits]
        clients = read_table(state_dir / "client_perf.csv", CLIENT_PERF, ClientPerfRow)
        assert clients is not None
        assert [row for _, row in clients.rows] == [x for c in commits for x in c.clients]
        updates = read_table(state_dir / "updates.csv", UPDATES, UpdateRow)
        assert updates is not None
        assert [row.values() for _, row in updates.rows] == [
            (c.round.round, name, d)
            for c in commits
            for name, d in zip(("bias", *features), c.delta or (), strict=False)
        ]


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
            r"global_model.csv row 3, column 'value': -2.5, but zeros plus the deltas of "
            r"updates.csv make -2.75: the model and its updates disagree",
        ),
        (
            "updates.csv",
            13,
            "delta",
            "7.000000000000001",
            "global_model.csv row 5, column .value.: 7.666666666666667, but .* 7.666666666666668",
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
            r"updates.csv: round 0, ok in round_log.csv, has 3 of its 4 parameter rows: "
            "rows are missing",
        ),
        (lambda t: t.splitlines()[0] + "\n", "round 0, ok in round_log.csv, has 0 of its 4"),
        (
            lambda t: t + "3,Extra,0.0\n",
            r"updates.csv row 14, column 'parameter': expected no more rows in round 3",
        ),
        (
            lambda t: t + "3,bias,0.25\n",
            r"updates.csv row 14, column 'round': round 3, parameter 'bias', appears again "
            r"\(first at row 10\)",
        ),
        (
            lambda t: t.replace("1,bias,0.5\n", "").replace(
                "3,bias,0.25\n", "3,bias,0.25\n1,bias,0.5\n"
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
    with pytest.raises(StateError, match=r"updates.csv: round 0, ok in round_log.csv, has 0 of"):
        HubStore.open(tmp_path)
    assert not (tmp_path / "updates.csv").exists()


# --- corrupt and foreign state ----------------------------------------------------------


@pytest.mark.parametrize("table", [RUN, MODEL, *LOGS, PEERS], ids=lambda t: t.name)
def test_a_wrong_header_is_refused(tmp_path: Path, table: object) -> None:
    store = started(tmp_path, rounds=1)
    store.save_peers([PeerRow("p1", "", T0, T0, 0, "alive")])
    path = tmp_path / table.name  # type: ignore[attr-defined]
    text = path.read_text()
    path.write_text(text.replace(",", ";", 1))
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=rf"{path.name} row 1: the header must be .*not fedd's"):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "row", "column", "value", "message"),
    [
        ("round_log.csv", 2, "status", "maybe", "'maybe' is not one of ok, aborted"),
        ("round_log.csv", 3, "participants", "-1", r"must be in \[0, "),
        ("round_log.csv", 3, "participants", "3.0", "'3.0' is not an integer"),
        ("round_log.csv", 3, "participants", "True", "'True' is not an integer"),
        ("round_log.csv", 2, "duration_s", "nan", "'nan' is not a number"),
        ("round_log.csv", 2, "duration_s", "1e999", "must be a finite number, got inf"),
        ("round_log.csv", 2, "duration_s", "", "'' is not a number"),
        ("round_log.csv", 2, "duration_s", " 1.5", "' 1.5' is not a number"),
        ("round_log.csv", 2, "round", "x", "'x' is not an integer"),
        ("metrics_log.csv", 2, "roc_auc", "1.5", r"must be in \[0.0, 1.0\], got 1.5"),
        ("perf_log.csv", 3, "unmask_s", "-0.5", "must be in"),
        (
            "client_perf.csv",
            4,
            "peer",
            "bad peer",
            "'bad peer' is not a valid id: it must be 1-64 printable ASCII",
        ),
        ("peers.csv", 2, "shard", "-3", "must be in"),
        ("global_model.csv", 3, "value", "inf", "'inf' is not a number"),
        ("global_model.csv", 3, "parameter", "V2", "expected parameter 'Time' .* found 'V2'"),
        ("global_model.csv", 4, "round", "0", "round 0 differs from row 2's round 1"),
        ("run.csv", 2, "value", "not an id", "run id must be"),
        ("run.csv", 3, "value", "yesterday", "'yesterday' is not a number"),
        ("run.csv", 5, "value", "bias", "'bias' is the model's intercept"),
        ("run.csv", 5, "value", "Time", "feature 'Time' appears twice"),
        ("run.csv", 7, "key", "run_id", "'run_id' appears again .first at row 2."),
    ],
)
def test_a_bad_cell_is_named_by_file_row_and_column(
    tmp_path: Path, name: str, row: int, column: str, value: str, message: str
) -> None:
    store = started(tmp_path, rounds=2)
    store.save_peers([PeerRow("p1", "", T0, T0, 0, "alive")])
    set_cell(tmp_path / name, row, column, value)
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=rf"{name} row {row}, column '{column}': {message}"):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "round_log.csv",
            lambda t: t + t.splitlines()[2] + "\n",
            r"row 4, column 'round': round 1 appears again \(first at row 3\)",
        ),
        (
            "client_perf.csv",
            lambda t: t + "1,p1,1,1.0,1.0,1\n",
            r"row 6, column 'round': round 1, peer 'p1', appears again \(first at row 4\)",
        ),
        (
            "perf_log.csv",
            lambda t: "\n".join([*t.splitlines()[:1], *t.splitlines()[:0:-1]]) + "\n",
            r"row 3, column 'round': round 0 after round 1: out of order",
        ),
        (
            "round_log.csv",
            lambda t: t.replace(",ok,\n", ",ok,,\n", 1),
            r"row 2: 10 cells; the header has 9",
        ),
        (
            "round_log.csv",
            lambda t: t + "\n",
            "row 4: an empty line",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("0,plus", '0,"pl\nus"', 1),
            "row 2: a quoted cell spans lines",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("0,plus", '0,"pl\nus', 1),
            r"row 2: not valid CSV \(unexpected end of data\)",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("plus", "pl\0us", 1),
            r"row 2, column 'mode': 'pl\\x00us' holds a control",
        ),
        (
            "global_model.csv",
            lambda t: t[:-3],
            "the file is cut short",
        ),
        (
            "global_model.csv",
            lambda t: t.rsplit("\n", 2)[0] + "\n",
            "3 parameters; the bias and run.csv's 3 features make 4",
        ),
        ("global_model.csv", lambda t: "", "the file is empty"),
        ("global_model.csv", lambda t: t.splitlines()[0] + "\n", "no parameter rows"),
        (
            "run.csv",
            lambda t: "\n".join(line for line in t.splitlines() if "created_at" not in line) + "\n",
            "no 'created_at' row",
        ),
        (
            "run.csv",
            lambda t: "\n".join(line for line in t.splitlines() if "feature" not in line) + "\n",
            "no 'feature' rows",
        ),
        (
            "peers.csv",
            lambda t: t + t.splitlines()[1] + "\n",
            r"row 3, column 'peer': peer 'p1' appears again",
        ),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, name: str, edit: object, message: str) -> None:
    store = started(tmp_path, rounds=2)
    store.save_peers([PeerRow("p1", "", T0, T0, 0, "alive")])
    path = tmp_path / name
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_not_utf8_is_refused_at_its_row(tmp_path: Path) -> None:
    started(tmp_path, rounds=2)
    path = tmp_path / "round_log.csv"
    path.write_bytes(path.read_bytes().replace(b"plus", b"pl\xffs", 2))
    with pytest.raises(StateError, match=r"round_log.csv row 2: not UTF-8 text"):
        HubStore.open(tmp_path)


@pytest.mark.parametrize(
    ("name", "keep", "message"),
    [
        # The committed round's row is cut away (at its start, or mid-line: a torn line).
        ("round_log.csv", 0, r"round_log.csv: no row for round 2, which global_model.csv holds"),
        ("round_log.csv", 7, r"round_log.csv: no row for round 2, which global_model.csv holds"),
        ("perf_log.csv", 0, r"perf_log.csv: no row for committed round 2: rows are missing"),
        ("perf_log.csv", 10, r"perf_log.csv: no row for committed round 2: rows are missing"),
    ],
)
def test_truncated_logs_of_committed_rounds_are_refused(
    tmp_path: Path, name: str, keep: int, message: str
) -> None:
    started(tmp_path, rounds=3)
    path = tmp_path / name
    text = path.read_text()
    start_of_last_row = len(text[:-1].rsplit("\n", 1)[0]) + 1
    path.write_text(text[: start_of_last_row + keep])
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        HubStore.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_truncated_log_with_no_committed_round_left_is_refused(tmp_path: Path) -> None:
    started(tmp_path, rounds=2)
    (tmp_path / "round_log.csv").write_text("")
    with pytest.raises(StateError, match=r"round_log.csv: no row for round 1"):
        HubStore.open(tmp_path)
    (tmp_path / "round_log.csv").unlink()
    with pytest.raises(StateError, match=r"round_log.csv: no row for round 1"):
        HubStore.open(tmp_path)


def test_rows_of_rounds_missing_from_the_round_log_are_refused(tmp_path: Path) -> None:
    started(tmp_path, rounds=3)
    path = tmp_path / "round_log.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))  # round 1 disappears from the middle
    with pytest.raises(
        StateError,
        match=r"perf_log.csv row 3, column 'round': round 1 has no row in round_log.csv",
    ):
        HubStore.open(tmp_path)
    path.write_text("".join(lines))
    metrics = tmp_path / "metrics_log.csv"
    metrics.write_text(metrics.read_text() + "2,0.5,0.5,0.5,0.5,0.5,0.5\n")
    with pytest.raises(StateError, match="round 2 appears again"):
        HubStore.open(tmp_path)


def test_a_peers_state_directory_is_foreign(tmp_path: Path) -> None:
    (tmp_path / "identity.csv").write_text("key,value\npeer_id,p1\n")
    with pytest.raises(StateError, match=r"holds identity.csv, a peer's state"):
        HubStore.open(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.csv"]


def test_hub_files_without_run_csv_are_foreign(tmp_path: Path) -> None:
    started(tmp_path, rounds=1)
    (tmp_path / "run.csv").unlink()
    with pytest.raises(StateError, match=r"has client_perf.csv but no run.csv"):
        HubStore.open(tmp_path)


def test_a_model_file_of_another_kind_is_foreign(tmp_path: Path) -> None:
    started(tmp_path, rounds=1)
    save_model(tmp_path / "global_model.csv", FEATURES, [0.0, 1.0, 2.0, 3.0])
    with pytest.raises(
        StateError, match=r"global_model.csv row 1: the header must be 'round,parameter,value'"
    ):
        HubStore.open(tmp_path)


def test_a_model_of_other_features_is_foreign(tmp_path: Path) -> None:
    store = started(tmp_path, rounds=1)
    other = tmp_path / "other"
    HubStore.open(other).start("run-2", ("a", "b", "c", "d"), {})
    (tmp_path / "run.csv").write_bytes((other / "run.csv").read_bytes())
    with pytest.raises(
        StateError, match=r"global_model.csv row 3, column 'parameter': expected parameter 'a'"
    ):
        HubStore.open(tmp_path)
    assert store.features == FEATURES


def test_the_state_dir_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        HubStore.open(tmp_path / "file")
    with pytest.raises(ConfigError, match="not a directory"):
        HubStore.open(tmp_path / "file" / "hub")


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
    for number in range(1, 6):
        commit_next(store, number, (0.0, 0.0, 0.0, float(number)), metrics=False)
    assert [r.round for r, _, _ in store.recent_rounds(10)] == [3, 4, 5]
    assert {row.round for row in store.client_rows()} <= {3, 4, 5}
    reader = HubStore.open(tmp_path, read_only=True)
    assert [r.round for r, _, _ in reader.recent_rounds(10)] == [1, 2, 3, 4, 5]
    again = HubStore.open(tmp_path)
    assert [r.round for r, _, _ in again.recent_rounds(10)] == [3, 4, 5]
