"""A peer's state directory (default `state/peer`): who it is, what each round did.

Files (CSV, UTF-8, header first; conventions in `daemon.state.csvfile`):

    identity.csv  key,value   `peer_id` and `created_at` (Unix seconds);
                              replaced atomically, mode 0600
    rounds.csv    round,kind,mode,status,reason,n_samples,train_s,cpu_s,train_loss,
                  local_roc_auc,bytes_up,bytes_down,finished_at,protocol_cpu_s
                              one row per round the peer took part in,
                              appended and fsynced; `cpu_s` is the CPU time
                              of its local work (statistics, scoring,
                              training), `protocol_cpu_s` the rest of the
                              process's over the round (messages, keys,
                              masks, shares, the event loop)
    statistics.csv  run,round,rows,sent_at
                              each run this peer gave its feature statistics
                              to, written (fsynced) before they leave it: a
                              peer contributes them once per run
    control.csv   run,round,parameter,value
                              SCAFFOLD's control variate of this peer for run
                              `run` (bias first, then the features), as
                              adopted when round `round` committed with this
                              peer's vector in its sum; replaced atomically,
                              absent until then. A new run starts from zeros.
    control_pending.csv  run,round,parameter,value
                              the control variate of a SCAFFOLD round whose
                              vector left this peer and whose end it has not
                              heard, written (replaced atomically) before the
                              vector leaves: adopted into control.csv if the
                              round's sum held it, emptied once the peer
                              learns how the round ended, even across a
                              restart of either side (`unsettled`)

`local_roc_auc` is undefined when the peer's shard holds a single class, and
`train_loss` when the round ended before local training did (the hub stopped
or aborted the round, or training failed). Such a value is nan in memory and
an empty cell on disk, which reads back as nan: an empty cell is what
spreadsheets and CSV readers take for a missing value, while not all of them
read the text `nan`. Every other cell must hold a value.

Round numbers may repeat down rounds.csv, and may go back: a hub restarted
after a crash runs its uncommitted round again under the same number, and a
new run starts again from round 0. The log keeps what happened, in order.

Hardening is that of the hub's store (`daemon.state.store`): every file is fully
validated when opened; a last line of rounds.csv without its line end is an
append a crash cut short, and is dropped (with an atomic rewrite and a line in
`notes`); anything else that is not as fedd writes it raises `StateError`
naming the file, the row and the column, before anything is written.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import MAX_ROUND, check_peer_id
from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.state.columns import (
    Table,
    float_column,
    int_column,
    key_value_table,
    normalize_fields,
    text_column,
)
from fedd.daemon.state.csvfile import (
    Contents,
    append_rows,
    decode_cell,
    key_values,
    read_table,
    state_error,
    write_table,
)
from fedd.daemon.state.hubfiles import HUB_TABLES, TIMESTAMP, WORD
from fedd.daemon.state.statedir import open_state_dir, remove_leftovers

__all__ = [
    "CONTROL",
    "CONTROL_PENDING",
    "IDENTITY",
    "ROUNDS",
    "STATISTICS",
    "PeerRoundRow",
    "PeerState",
    "read_peer_id",
]

IDENTITY = key_value_table("identity.csv")
_IDENTITY_KEYS = ("peer_id", "created_at")
ROUNDS = Table(
    "rounds.csv",
    (
        int_column("round", 0, MAX_ROUND),
        text_column("kind", pattern=WORD),
        text_column("mode", pattern=WORD),
        text_column("status", pattern=WORD),
        text_column("reason", allow_empty=True),
        int_column("n_samples"),
        float_column("train_s"),
        float_column("cpu_s"),
        float_column("train_loss", nan_as_empty=True),
        float_column("local_roc_auc", 0.0, 1.0, nan_as_empty=True),
        int_column("bytes_up"),
        int_column("bytes_down"),
        float_column("finished_at"),
        float_column("protocol_cpu_s"),
    ),
    appended=True,
)
STATISTICS = Table(
    "statistics.csv",
    (
        text_column("run"),
        int_column("round", 0, MAX_ROUND),
        int_column("rows"),
        float_column("sent_at"),
    ),
    appended=True,
)

CONTROL = Table(
    "control.csv",
    (
        text_column("run"),
        int_column("round", 0, MAX_ROUND),
        text_column("parameter"),
        float_column("value", -math.inf, math.inf),
    ),
    appended=False,
)
CONTROL_PENDING = Table("control_pending.csv", CONTROL.columns, appended=False)


@dataclass(frozen=True, slots=True)
class PeerRoundRow:
    """One round as this peer saw it. `status` and `mode` are short lowercase
    words (ok, aborted, ...; off, full, plus); `train_loss` and `local_roc_auc`
    may be nan (no training finished; a single class)."""

    round: int
    kind: str
    mode: str
    status: str
    reason: str
    n_samples: int
    train_s: float
    cpu_s: float
    train_loss: float
    local_roc_auc: float
    bytes_up: int
    bytes_down: int
    finished_at: float
    protocol_cpu_s: float

    def __post_init__(self) -> None:
        normalize_fields(self, ROUNDS.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in rounds.csv's column order."""
        return tuple(getattr(self, name) for name in ROUNDS.header)


class PeerState:
    """A peer's state directory. Build it with `open`; one writer at a time.

    Attributes: `peer_id`, `created_at` (of the identity), `notes` (what
    `open` created, changed or repaired, one line each, for the log).
    """

    def __init__(self, state_dir: Path, peer_id: str, created_at: float) -> None:
        """Private: use `PeerState.open`."""
        self.state_dir = state_dir
        self.peer_id = peer_id
        self.created_at = created_at
        self.notes: list[str] = []
        self._rounds: list[PeerRoundRow] = []
        self._statistics_runs: set[str] = set()
        self._control: tuple[str, tuple[float, ...]] | None = None  # (run, c_i)
        self._pending: _Control | None = None

    @classmethod
    def open(cls, state_dir: Path, *, peer_id: str | None = None) -> PeerState:
        """Open (creating it, mode 0700, if missing) and validate `state_dir`.

        The identity: the one in identity.csv, unless `peer_id` is given and
        differs, in which case `peer_id` replaces it (and a note says so); with
        no identity.csv, `peer_id` or else `peer-` and 8 random hex digits,
        written to a new identity.csv.

        Raises `ConfigError` if `peer_id` is not a valid peer id or the
        directory cannot be created, read or written; `StateError` (naming
        file, row and column) for corrupt or foreign state, before anything is
        written.
        """
        state_dir = Path(state_dir)
        if peer_id is not None:
            try:
                peer_id = check_peer_id(peer_id)
            except LocalProtocolError as exc:
                raise ConfigError(f"{peer_id!r} is not a usable peer id: {exc.reason}") from None
        names = open_state_dir(state_dir, read_only=False)
        foreign = sorted(names & {table.name for table in HUB_TABLES})
        if foreign:
            raise StateError(
                f"{state_dir}: holds {foreign[0]}, the hub's state; "
                "give the peer a state directory of its own"
            )
        identity = read_table(state_dir / IDENTITY.name, IDENTITY, IDENTITY.checked)
        rounds = read_table(state_dir / ROUNDS.name, ROUNDS, PeerRoundRow)
        given = read_table(state_dir / STATISTICS.name, STATISTICS, STATISTICS.checked)
        control = read_table(state_dir / CONTROL.name, CONTROL, CONTROL.checked)
        adopted = _control(control) if control is not None else None
        held = read_table(state_dir / CONTROL_PENDING.name, CONTROL_PENDING, CONTROL.checked)
        pending = _control(held) if held is not None else None
        known = None if identity is None else _identity(identity)
        # Everything is valid: only now touch the disk.
        if known is not None and (peer_id is None or peer_id == known[0]):
            state = cls(state_dir, *known)
        else:
            state = cls(state_dir, peer_id or "peer-" + os.urandom(4).hex(), time.time())
            rows = _identity_rows(state.peer_id, state.created_at)
            write_table(state_dir / IDENTITY.name, IDENTITY, rows)
            if known is None:
                state.notes.append(f"{IDENTITY.name}: new identity {state.peer_id!r}")
            else:
                earlier = len(rounds.rows) if rounds else 0
                state.notes.append(
                    f"{IDENTITY.name}: peer id changed from {known[0]!r} to {state.peer_id!r} "
                    f"as asked; the {earlier} earlier row(s) of {ROUNDS.name} were logged as "
                    f"{known[0]!r}"
                )
        state._repair_rounds(rounds)
        state._repair_statistics(given)
        state._control = None if adopted is None else (adopted.run, adopted.values)
        state._pending = pending
        if pending is not None:
            state.notes.append(
                f"{CONTROL_PENDING.name}: the control variate of round {pending.round} of run "
                f"{pending.run} waits for the hub to say whether that round's sum held it"
            )
        tables = (IDENTITY, ROUNDS, STATISTICS, CONTROL, CONTROL_PENDING)
        state.notes += remove_leftovers(state_dir, names, tables, dry_run=False)
        return state

    def _repair_rounds(self, rounds: Contents[PeerRoundRow] | None) -> None:
        path = self.state_dir / ROUNDS.name
        if rounds is None:
            write_table(path, ROUNDS, [])
            return
        self._rounds = [row for _, row in rounds.rows]
        if rounds.damage():
            write_table(path, ROUNDS, [row.values() for row in self._rounds])
            self.notes.append(rounds.damage())

    def _repair_statistics(self, given: Contents[tuple[object, ...]] | None) -> None:
        path = self.state_dir / STATISTICS.name
        if given is None:
            write_table(path, STATISTICS, [])
            return
        self._statistics_runs = {str(row[0]) for _, row in given.rows}
        if given.damage():
            write_table(path, STATISTICS, [row for _, row in given.rows])
            self.notes.append(given.damage())

    def statistics_given(self, run: str) -> bool:
        """Whether this peer already gave its feature statistics to `run`."""
        return run in self._statistics_runs

    def record_statistics(self, run: str, round: int, rows: int) -> None:
        """Append that this peer gives `run` its statistics, and fsync, before they are sent.

        Raises `ValueError` for a value the file cannot hold, `ConfigError` if it
        cannot write.
        """
        row = STATISTICS.checked(run, round, rows, time.time())  # ValueError before any write
        append_rows(self.state_dir / STATISTICS.name, STATISTICS, [row])
        self._statistics_runs.add(run)

    def control(self, run: str, size: int) -> tuple[float, ...]:
        """This peer's SCAFFOLD control variate for `run`: zeros until it adopts one.

        Raises `ValueError` if the adopted one is not of `size` parameters.
        """
        if self._control is None or self._control[0] != run:
            return (0.0,) * size
        values = self._control[1]
        if len(values) != size:
            raise ValueError(
                f"{CONTROL.name} holds {len(values)} parameters for run {run}, its model has {size}"
            )
        return values

    def adopt_control(
        self, run: str, round: int, names: tuple[str, ...], values: tuple[float, ...]
    ) -> None:
        """Replace control.csv with `values` (of the parameters `names`), adopted
        when round `round` of `run` committed. Raises `ValueError` for values the
        file cannot hold, `ConfigError` if it cannot write."""
        if len(names) != len(values):
            raise ValueError("one control variate value per parameter")
        rows = [CONTROL.checked(run, round, n, v) for n, v in zip(names, values, strict=True)]
        write_table(self.state_dir / CONTROL.name, CONTROL, rows)
        self._control = (run, tuple(values))

    @property
    def unsettled(self) -> int:
        """The round whose control variate waits in control_pending.csv; 0 for none."""
        return 0 if self._pending is None else self._pending.round

    def hold_control(
        self, run: str, round: int, names: tuple[str, ...], values: tuple[float, ...]
    ) -> None:
        """Replace control_pending.csv with round `round`'s new control variate,
        before the round's vector leaves: a peer that learns only after a restart
        that the round's sum held it still adopts it (`settle_control`). Raises
        `ValueError` for values the file cannot hold, `ConfigError` if it cannot write."""
        if len(names) != len(values):
            raise ValueError("one control variate value per parameter")
        rows = [CONTROL.checked(run, round, n, v) for n, v in zip(names, values, strict=True)]
        write_table(self.state_dir / CONTROL_PENDING.name, CONTROL_PENDING, rows)
        self._pending = _Control(run, round, tuple(names), tuple(values))

    def settle_control(self, run: str, round: int, *, included: bool) -> bool:
        """Round `round` of `run` ended: adopt the pending control variate if it is
        that round's and the round's sum held this peer's vector, and empty
        control_pending.csv; a pending one of another run goes too. Returns
        whether it adopted. Raises as `adopt_control`."""
        pending = self._pending
        if pending is None or (pending.run == run and pending.round != round):
            return False  # another round's: its own end settles it
        adopt = included and pending.run == run
        if adopt:
            self.adopt_control(run, round, pending.names, pending.values)
        write_table(self.state_dir / CONTROL_PENDING.name, CONTROL_PENDING, [])
        self._pending = None
        return adopt

    def log_round(self, row: PeerRoundRow) -> None:
        """Append `row` to rounds.csv and fsync it. Raises `ConfigError` if it cannot."""
        append_rows(self.state_dir / ROUNDS.name, ROUNDS, [row.values()])
        self._rounds.append(row)

    def rounds(self) -> list[PeerRoundRow]:
        """Every logged round, in the order logged."""
        return list(self._rounds)


def read_peer_id(state_dir: Path) -> str:
    """The peer id in `state_dir`'s identity.csv, read without writing anything.

    Raises `ConfigError` when the directory or the file is missing (the peer
    has not started yet), `StateError` when identity.csv is corrupt.
    """
    open_state_dir(state_dir, read_only=True)
    identity = read_table(state_dir / IDENTITY.name, IDENTITY, IDENTITY.checked)
    if identity is None:
        raise ConfigError(f"{state_dir}: no {IDENTITY.name} yet; has the peer started?")
    return _identity(identity)[0]


def _identity(contents: Contents[tuple[str, str]]) -> tuple[str, float]:
    """The (peer_id, created_at) of a valid identity.csv; StateError otherwise."""
    entries = key_values(contents, required=_IDENTITY_KEYS, known=_IDENTITY_KEYS)
    [(number, peer_id)] = entries["peer_id"]
    try:
        checked = check_peer_id(peer_id)
    except LocalProtocolError as exc:
        raise state_error(contents.path, exc.reason, row=number, column="value") from None
    [(number, stamp)] = entries["created_at"]
    created_at: float = decode_cell(contents.path, number, TIMESTAMP, stamp, where="value")
    return checked, created_at


@dataclass(frozen=True, slots=True)
class _Control:
    """A control variate as control.csv and control_pending.csv hold it."""

    run: str
    round: int
    names: tuple[str, ...]
    values: tuple[float, ...]


def _control(contents: Contents[tuple[Any, ...]]) -> _Control | None:
    """The control variate a control file holds (None if empty); StateError unless
    its rows are of one run and round."""
    if not contents.rows:
        return None
    first_number, (run, round_, _, _) = contents.rows[0]
    for number, row in contents.rows:
        if (row[0], row[1]) != (run, round_):
            raise state_error(
                contents.path,
                f"run {row[0]!r}, round {row[1]}, but row {first_number} is of run {run!r}, "
                f"round {round_}: the file holds one control variate",
                row=number,
                column="run",
            )
    rows = [row for _, row in contents.rows]
    return _Control(run, round_, tuple(row[2] for row in rows), tuple(row[3] for row in rows))


def _identity_rows(peer_id: str, created_at: float) -> list[tuple[str, str]]:
    return [("peer_id", peer_id), ("created_at", repr(created_at))]
