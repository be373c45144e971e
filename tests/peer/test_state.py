"""A peer's CSV state: its identity, its round log, the runs it gave its statistics to,
and what a crash or a stranger leaves."""

from __future__ import annotations

import errno
import math
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.hubfiles import PEER_FILES
from fedd.daemon.state.store import HubStore
from fedd.peer.state import (
    CONTROL,
    CONTROL_PENDING,
    IDENTITY,
    ROUNDS,
    STATISTICS,
    PeerRoundRow,
    PeerState,
)
from tests.crypto._support import FAST
from tests.daemon._support import mode, set_cell, snapshot

T0 = 1_700_000_000.5


def row(r: int = 0, *, auc: float = 0.75, status: str = "ok") -> PeerRoundRow:
    return PeerRoundRow(
        r, "training", "plus", status, "", 1000, 0.5, 0.25, 0.125, auc, 2048, 4096, T0 + r, 0.01
    )


def test_peer_files_are_the_ones_the_hub_refuses() -> None:
    tables = (IDENTITY, ROUNDS, STATISTICS, CONTROL, CONTROL_PENDING)
    assert tuple(table.name for table in tables) == PEER_FILES


def test_a_new_directory_gets_a_private_random_identity(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "peer"
    state = PeerState.open(state_dir)
    assert re.fullmatch(r"peer-[0-9a-f]{8}", state.peer_id)
    assert state.notes == [f"identity.csv: new identity {state.peer_id!r}"]
    assert mode(state_dir) == 0o700
    assert (state_dir / "identity.csv").read_text() == (
        f"key,value\npeer_id,{state.peer_id}\ncreated_at,{state.created_at!r}\n"
    )
    assert (state_dir / "rounds.csv").read_text() == ",".join(ROUNDS.header) + "\n"
    assert ROUNDS.header == tuple(PeerRoundRow.__dataclass_fields__)
    assert (state_dir / "statistics.csv").read_text() == "run,round,rows,sent_at\n"
    assert {p.name: mode(p) for p in state_dir.iterdir()} == {
        "identity.csv": 0o600,
        "rounds.csv": 0o600,
        "statistics.csv": 0o600,
    }
    again = PeerState.open(state_dir)
    assert (again.peer_id, again.created_at, again.notes) == (state.peer_id, state.created_at, [])
    assert PeerState.open(tmp_path / "other").peer_id != state.peer_id


def test_a_given_peer_id_is_used_and_replaces_a_different_one(tmp_path: Path) -> None:
    first = PeerState.open(tmp_path, peer_id="bank-a")
    assert first.peer_id == "bank-a"
    first.log_round(row(0))
    assert PeerState.open(tmp_path, peer_id="bank-a").notes == []
    assert PeerState.open(tmp_path).peer_id == "bank-a"
    changed = PeerState.open(tmp_path, peer_id="bank-b")
    assert changed.peer_id == "bank-b"
    assert changed.notes == [
        "identity.csv: peer id changed from 'bank-a' to 'bank-b' as asked; "
        "the 1 earlier row(s) of rounds.csv were logged as 'bank-a'"
    ]
    assert "peer_id,bank-b\n" in (tmp_path / "identity.csv").read_text()
    assert PeerState.open(tmp_path).peer_id == "bank-b"


@pytest.mark.parametrize("bad", ["", "has space", "comma,id", "x" * 65, "quote'd"])
def test_an_unusable_peer_id_is_a_config_error_before_anything_is_made(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(ConfigError, match=r"is not a usable peer id: peer id must be 1-64"):
        PeerState.open(tmp_path / "peer", peer_id=bad)
    assert not (tmp_path / "peer").exists()


def test_rounds_are_appended_and_read_back(tmp_path: Path) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    rows = [row(0), row(1, auc=math.nan, status="aborted"), row(1), row(0)]  # repeats are legal
    for r in rows:
        state.log_round(r)
    lines = (tmp_path / "rounds.csv").read_text().splitlines()
    assert lines[1] == "0,training,plus,ok,,1000,0.5,0.25,0.125,0.75,2048,4096,1700000000.5,0.01"
    # An undefined ROC-AUC (a single-class shard) is an empty cell on disk, nan in memory.
    assert lines[2] == "1,training,plus,aborted,,1000,0.5,0.25,0.125,,2048,4096,1700000001.5,0.01"
    read = PeerState.open(tmp_path).rounds()
    assert len(read) == 4 and math.isnan(read[1].local_roc_auc)
    assert [read[i] for i in (0, 2, 3)] == [rows[i] for i in (0, 2, 3)]
    assert read[1].values()[:9] == rows[1].values()[:9]
    assert all(a is b for a, b in zip(state.rounds(), rows, strict=True))


def test_statistics_given_to_a_run_are_recorded_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    assert not state.statistics_given("run-1")
    monkeypatch.setattr(time, "time", lambda: T0)
    state.record_statistics("run-1", 1, 800)
    state.record_statistics("run-2", 4, 0)
    assert state.statistics_given("run-1") and state.statistics_given("run-2")
    assert not state.statistics_given("run-3")
    assert (tmp_path / "statistics.csv").read_text() == (
        "run,round,rows,sent_at\nrun-1,1,800,1700000000.5\nrun-2,4,0,1700000000.5\n"
    )
    again = PeerState.open(tmp_path)
    assert again.notes == []
    assert [again.statistics_given(run) for run in ("run-1", "run-2", "run-3")] == [
        True,
        True,
        False,
    ]
    assert again.rounds() == []  # the two logs are apart


def test_an_adopted_control_variate_is_read_back_bit_for_bit_after_a_restart(
    tmp_path: Path,
) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    names = ("bias", "V1", "V2")
    assert state.control("run-1", 3) == (0.0, 0.0, 0.0)  # none adopted yet
    assert not (tmp_path / "control.csv").exists()
    first, second = (0.1, -1e-300, 2.0 / 3.0), (0.1 + 2e-17, 5e-324, -7.25)
    state.adopt_control("run-1", 2, names, first)
    state.adopt_control("run-1", 5, names, second)  # replaces the first: one variate kept
    assert (tmp_path / "control.csv").read_text() == (
        "run,round,parameter,value\n"
        + "".join(f"run-1,5,{n},{v!r}\n" for n, v in zip(names, second, strict=True))
    )
    assert mode(tmp_path / "control.csv") == 0o600
    again = PeerState.open(tmp_path)
    assert again.notes == []
    assert again.control("run-1", 3) == second  # exact: repr round-trips floats
    assert again.control("run-2", 3) == (0.0, 0.0, 0.0)  # a new run starts from zeros
    with pytest.raises(
        ValueError, match=r"control\.csv holds 3 parameters for run run-1, its model has 4"
    ):
        again.control("run-1", 4)


def test_a_pending_control_variate_waits_across_restarts_for_its_round_end(
    tmp_path: Path,
) -> None:
    """Held before the vector leaves; adopted only by its own round's end, and only
    if the sum held it; any end of its round, or of another run, empties the file."""
    names = ("bias", "V1")
    adopted, new = (0.5, -0.25), (0.75, 1e-310)
    state = PeerState.open(tmp_path, peer_id="p1")
    assert state.unsettled == 0
    state.adopt_control("run-1", 3, names, adopted)
    state.hold_control("run-1", 4, names, new)
    pending = tmp_path / "control_pending.csv"
    assert pending.read_text() == (
        "run,round,parameter,value\nrun-1,4,bias,0.75\nrun-1,4,V1,1e-310\n"
    )
    again = PeerState.open(tmp_path)  # a restart before the round's end
    assert again.unsettled == 4
    assert again.notes == [
        "control_pending.csv: the control variate of round 4 of run run-1 waits for the hub "
        "to say whether that round's sum held it"
    ]
    assert not again.settle_control("run-1", 5, included=True)  # another round's end
    assert not again.settle_control("run-1", 3, included=True)
    assert again.unsettled == 4 and again.control("run-1", 2) == adopted
    assert again.settle_control("run-1", 4, included=True)
    assert again.control("run-1", 2) == new
    assert pending.read_text() == "run,round,parameter,value\n"
    assert PeerState.open(tmp_path).control("run-1", 2) == new  # exact, bit for bit

    for end in (("run-1", 6, False), ("run-2", 6, True)):  # left out; a new run
        again.hold_control("run-1", 6, names, adopted)
        assert not again.settle_control(end[0], end[1], included=end[2])
        assert again.unsettled == 0 and again.control("run-1", 2) == new
        assert PeerState.open(tmp_path).unsettled == 0


def test_a_control_file_of_two_rounds_is_refused(tmp_path: Path) -> None:
    PeerState.open(tmp_path, peer_id="p1")
    (tmp_path / "control.csv").write_text(
        "run,round,parameter,value\nrun-1,2,bias,0.5\nrun-1,3,V1,0.25\n"
    )
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=r"control.csv row 3, column 'run'.*one control variate"):
        PeerState.open(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("local_roc_auc", 1.5, r"local_roc_auc must be in \[0.0, 1.0\]"),
        ("train_loss", math.inf, "train_loss must be a finite number"),
        ("n_samples", -1, "n_samples must be in"),
        ("status", "OK!", "status 'OK!' does not match"),
        ("reason", "a\nb", "holds a control character"),
        ("finished_at", "now", "finished_at must be a number"),
    ],
)
def test_round_rows_check_their_fields(field: str, value: object, message: str) -> None:
    values = dict(zip(ROUNDS.header, row().values(), strict=True))
    values[field] = value
    with pytest.raises(ValueError, match=message):
        PeerRoundRow(**values)  # type: ignore[arg-type]


@FAST
@given(data=st.data())
def test_any_valid_rows_read_back_identically(data: st.DataObject) -> None:
    seconds = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
    word = st.from_regex(r"[a-z0-9][a-z0-9_+.-]{0,31}", fullmatch=True)
    count = st.integers(0, 2**63 - 1)
    rows = data.draw(
        st.lists(
            st.builds(
                PeerRoundRow,
                st.integers(0, 2**31 - 1),
                word,
                word,
                word,
                st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
                count,
                seconds,
                seconds,
                seconds,
                st.floats(min_value=0, max_value=1),  # nan included
                count,
                count,
                seconds,
                seconds,
            ),
            max_size=8,
        )
    )
    with tempfile.TemporaryDirectory() as name:
        state = PeerState.open(Path(name), peer_id="p1")
        for r in rows:
            state.log_round(r)
        read = PeerState.open(Path(name)).rounds()
    # Compare cell by cell as written: nan != nan, but both render as an empty cell.
    assert [ROUNDS.cells(r.values()) for r in read] == [ROUNDS.cells(r.values()) for r in rows]
    assert [r.values()[:9] for r in read] == [r.values()[:9] for r in rows]


def test_a_torn_last_line_is_dropped_with_a_note(tmp_path: Path) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    state.log_round(row(0))
    whole = snapshot(tmp_path)
    with open(tmp_path / "rounds.csv", "a") as f:
        f.write("1,training,plus,ok,,10")
    again = PeerState.open(tmp_path)
    assert again.notes == [
        "rounds.csv: dropped a torn last line '1,training,plus,ok,,10' "
        "(a crash in the middle of an append)"
    ]
    assert snapshot(tmp_path) == whole
    assert mode(tmp_path / "rounds.csv") == 0o600
    again.log_round(row(1))
    assert PeerState.open(tmp_path).rounds() == [row(0), row(1)]


def test_a_torn_last_line_of_statistics_is_dropped_and_that_run_not_counted(
    tmp_path: Path,
) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    state.record_statistics("run-1", 1, 800)
    whole = snapshot(tmp_path)
    with open(tmp_path / "statistics.csv", "a") as f:
        f.write("run-2,1,8")
    again = PeerState.open(tmp_path)
    assert again.notes == [
        "statistics.csv: dropped a torn last line 'run-2,1,8' (a crash in the middle of an append)"
    ]
    assert snapshot(tmp_path) == whole
    assert mode(tmp_path / "statistics.csv") == 0o600
    assert again.statistics_given("run-1") and not again.statistics_given("run-2")
    again.record_statistics("run-2", 1, 800)
    assert PeerState.open(tmp_path).statistics_given("run-2")


def test_a_torn_header_and_leftover_temporaries_are_cleaned_up(tmp_path: Path) -> None:
    PeerState.open(tmp_path, peer_id="p1")
    (tmp_path / "rounds.csv").write_text("round,ki")
    (tmp_path / ".identity.csv.k2j_x9.tmp").write_text("peer_id,")
    again = PeerState.open(tmp_path)
    assert again.notes == [
        "rounds.csv: dropped a torn last line 'round,ki' (a crash in the middle of an append)",
        ".identity.csv.k2j_x9.tmp: removed, left over from an interrupted write",
    ]
    assert (tmp_path / "rounds.csv").read_text() == ",".join(ROUNDS.header) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "identity.csv",
        "rounds.csv",
        "statistics.csv",
    ]


@pytest.mark.parametrize(
    ("name", "number", "column", "value", "message"),
    [
        ("rounds.csv", 2, "local_roc_auc", "nan", "'nan' is not a number"),
        ("rounds.csv", 2, "local_roc_auc", "1.01", r"must be in \[0.0, 1.0\]"),
        ("rounds.csv", 3, "train_loss", "inf", "'inf' is not a number"),
        ("rounds.csv", 3, "bytes_up", "2e3", "'2e3' is not an integer"),
        ("rounds.csv", 2, "round", "-1", "must be in"),
        ("rounds.csv", 3, "kind", "Training", "'Training' does not match"),
        ("statistics.csv", 2, "run", "", "must not be empty"),
        ("statistics.csv", 3, "round", "1.5", "'1.5' is not an integer"),
        ("statistics.csv", 2, "rows", "-800", "must be in"),
        ("statistics.csv", 3, "sent_at", "soon", "'soon' is not a number"),
        ("identity.csv", 2, "value", "p 1", "peer id must be 1-64"),
        ("identity.csv", 3, "value", "", "'' is not a number"),
        ("identity.csv", 3, "key", "peer_id", r"'peer_id' appears again \(first at row 2\)"),
        ("identity.csv", 3, "key", "secret", "unknown key 'secret'"),
    ],
)
def test_a_bad_cell_is_named_by_file_row_and_column(
    tmp_path: Path, name: str, number: int, column: str, value: str, message: str
) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    state.log_round(row(0))
    state.log_round(row(1))
    state.record_statistics("run-1", 1, 800)
    state.record_statistics("run-2", 1, 800)
    set_cell(tmp_path / name, number, column, value)
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=rf"{name} row {number}, column '{column}': {message}"):
        PeerState.open(tmp_path, peer_id="p2")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("rounds.csv", "round,mode\n", "rounds.csv row 1: the header must be"),
        ("rounds.csv", "round,mode,status\n0,off\n", "rounds.csv row 1: the header must be"),
        ("statistics.csv", "run,round,rows\n", "statistics.csv row 1: the header must be"),
        ("statistics.csv", "run,round,rows,sent_at\nr1,1,8\n", "statistics.csv row 2: 3 cells"),
        ("identity.csv", "peer_id,created_at\n", "identity.csv row 1: the header must be"),
        ("identity.csv", "key,value\npeer_id,p1\n", "identity.csv: no 'created_at' row"),
        ("identity.csv", "key,value\npeer_id,p1\ncreated_at,1.0", "cut short"),
        ("identity.csv", "", "identity.csv: the file is empty"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    PeerState.open(tmp_path, peer_id="p1").log_round(row(0))
    (tmp_path / name).write_text(text)
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=message):
        PeerState.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_hub_state_directory_is_foreign(tmp_path: Path) -> None:
    HubStore.open(tmp_path).start("run-1", ("a",), {})
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=r"holds client_perf\.csv, the hub's state"):
        PeerState.open(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_failed_append_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    state.log_round(row(0))
    whole = snapshot(tmp_path)
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", full)
        return real_write(fd, data[:7])  # part of the row reaches the file

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ConfigError, match=r"rounds\.csv: cannot append: No space left on device"):
        state.log_round(row(1))
    monkeypatch.setattr(os, "write", real_write)
    assert snapshot(tmp_path) == whole
    assert state.rounds() == [row(0)]
    state.log_round(row(2))
    assert PeerState.open(tmp_path).rounds() == [row(0), row(2)]


def test_appending_to_a_vanished_log_is_a_config_error(tmp_path: Path) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    (tmp_path / "rounds.csv").unlink()
    with pytest.raises(ConfigError, match=r"rounds\.csv: cannot append: No such file"):
        state.log_round(row(0))
    assert not (tmp_path / "rounds.csv").exists()


def test_recording_statistics_to_a_vanished_file_is_a_config_error_and_not_counted(
    tmp_path: Path,
) -> None:
    state = PeerState.open(tmp_path, peer_id="p1")
    (tmp_path / "statistics.csv").unlink()
    with pytest.raises(ConfigError, match=r"statistics\.csv: cannot append: No such file"):
        state.record_statistics("run-1", 1, 800)
    assert not state.statistics_given("run-1")
    assert not (tmp_path / "statistics.csv").exists()
