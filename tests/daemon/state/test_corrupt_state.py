"""Corrupt and foreign hub state: refused, naming file, row and column, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.hubfiles import LOGS, MODEL, PEERS, RUN, PeerRow
from fedd.daemon.state.store import HubStore
from fedd.learner.modelio import save_model
from tests.daemon._support import set_cell, snapshot
from tests.daemon.state._support import FEATURES, T0, started


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


@pytest.mark.parametrize("table", [MODEL, *LOGS], ids=lambda t: t.name)
def test_a_header_with_columns_added_or_dropped_at_the_end_names_another_version(
    tmp_path: Path, table: object
) -> None:
    started(tmp_path, rounds=1)
    path = tmp_path / table.name  # type: ignore[attr-defined]
    header, _, rest = path.read_text().partition("\n")
    older = header.rsplit(",", 1)[0]
    for changed in (older, header + ",extra"):
        path.write_text(f"{changed}\n{rest}")
        with pytest.raises(
            StateError, match=r"row 1: .* written by another version of fedd"
        ) as err:
            HubStore.open(tmp_path)
        assert f"move {tmp_path} aside" in str(err.value)


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
        ("round_log.csv", 3, "kind", "learning", "'learning' is not one of statistics, training"),
        ("metrics_log.csv", 2, "roc_auc", "1.5", r"must be in \[0.0, 1.0\], got 1.5"),
        ("metrics_log.csv", 2, "source", "peers", "'peers' is not one of federated, test"),
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
        ("run.csv", 5, "value", "+cmd", "feature name '.cmd' starts with '.'"),
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
            r"row 2: 11 cells; the header has 10",
        ),
        (
            "round_log.csv",
            lambda t: t + "\n",
            "row 4: an empty line",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("training,plus", 'training,"pl\nus"', 1),
            "row 2: a quoted cell spans lines",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("training,plus", 'training,"pl\nus', 1),
            r"row 2: not valid CSV \(unexpected end of data\)",
        ),
        (
            "round_log.csv",
            lambda t: t.replace("plus", "pl\0us", 1),
            r"row 2, column 'mode': 'pl\\x00us' holds a control",
        ),
        (
            "metrics_log.csv",
            lambda t: t.replace("0,test,0,", "1,test,0,", 1),
            "row 2: a model's scores are committed with its round or after it",
        ),
        (
            "metrics_log.csv",
            lambda t: t.replace(",200,12,", ",200,201,", 1),
            "row 2: MetricsRow.positives cannot exceed rows",
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
    metrics.write_text(
        metrics.read_text() + "2,test,2,0,9,1,0.5,0.0,0.5,0.0,0.5,0.5,0.5,0.5,0.5,0.5,0.5\n"
    )
    with pytest.raises(
        StateError, match=r"row 4, column 'round': round 2, source 'test', appears again"
    ):
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
