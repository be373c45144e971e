"""The hub's state files: their tables (columns, in order) and their rows.

Each row class checks its fields when built (`ValueError` naming the field),
so that nothing `daemon.state.store` writes fails to read back; the tables are what
`daemon.state.csvfile` reads and writes. The file formats are described in
`daemon.state.store`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fedd.crypto.secagg.fields import MAX_ROUND
from fedd.daemon.state.columns import (
    Table,
    float_column,
    int_column,
    key_value_table,
    normalize_fields,
    peer_column,
    text_column,
)

__all__ = [
    "CLIENT_PERF",
    "HUB_TABLES",
    "LOGS",
    "METRICS_LOG",
    "MODEL",
    "PEERS",
    "PEER_FILES",
    "PERF_LOG",
    "ROUND_LOG",
    "ROUND_STATUSES",
    "RUN",
    "STAGES",
    "TIMESTAMP",
    "UPDATES",
    "WORD",
    "ClientPerfRow",
    "Commit",
    "MetricsRow",
    "PeerRow",
    "PerfRow",
    "RoundRow",
    "UpdateRow",
]

STAGES = (
    "train_upload",
    "advertise-keys",
    "share-keys",
    "masked-input",
    "consistency-check",
    "unmask",
    "decode",
)
ROUND_STATUSES = ("ok", "aborted")
# Modes and peer statuses are short lowercase words chosen by the hub (off, full, plus;
# alive, gone, left): checked for shape, not against a list this module would have to track.
WORD = re.compile(r"[a-z0-9][a-z0-9_+.-]{0,31}")
# peer.state's files: daemon/ never imports peer/, and a test keeps the two in step.
PEER_FILES = ("identity.csv", "rounds.csv")

_round = int_column("round", 0, MAX_ROUND)
_STAGE_COLUMNS = tuple(float_column(stage.replace("-", "_") + "_s") for stage in STAGES)

RUN = key_value_table("run.csv")
TIMESTAMP = float_column("created_at")  # Unix seconds
MODEL = Table(
    "global_model.csv",
    (_round, text_column("parameter"), float_column("value", -math.inf, math.inf)),
    appended=False,
)
ROUND_LOG = Table(
    "round_log.csv",
    (
        _round,
        text_column("mode", pattern=WORD),
        float_column("started_at"),
        float_column("duration_s"),
        int_column("participants"),
        int_column("survivors"),
        int_column("dropped"),
        text_column("status", choices=ROUND_STATUSES),
        text_column("reason", allow_empty=True),
    ),
    appended=True,
)
METRICS_LOG = Table(
    "metrics_log.csv",
    (
        _round,
        *(float_column(n, 0.0, 1.0) for n in ("roc_auc", "pr_auc", "precision", "recall", "f1")),
        float_column("logloss"),
    ),
    appended=True,
)
PERF_LOG = Table(
    "perf_log.csv",
    (
        _round,
        float_column("duration_s"),
        float_column("cpu_s"),
        *_STAGE_COLUMNS,
        float_column("evaluate_s"),
        int_column("bytes_in"),
        int_column("bytes_out"),
    ),
    appended=True,
)
CLIENT_PERF = Table(
    "client_perf.csv",
    (
        _round,
        peer_column("peer"),
        int_column("n_samples"),
        float_column("train_s"),
        float_column("cpu_s"),
        int_column("upload_bytes"),
    ),
    appended=True,
)
PEERS = Table(
    "peers.csv",
    (
        peer_column("peer"),
        peer_column("public_key", allow_empty=True),
        float_column("first_seen"),
        float_column("last_seen"),
        int_column("shard"),
        text_column("status", pattern=WORD),
    ),
    appended=False,
)
UPDATES = Table(
    "updates.csv",
    (_round, text_column("parameter"), float_column("delta", -math.inf, math.inf)),
    appended=True,
)
LOGS = (ROUND_LOG, METRICS_LOG, PERF_LOG, CLIENT_PERF, UPDATES)
HUB_TABLES = (RUN, MODEL, *LOGS, PEERS)


@dataclass(frozen=True, slots=True)
class RoundRow:
    """One round as round_log.csv records it. Times are Unix seconds."""

    round: int
    mode: str
    started_at: float
    duration_s: float
    participants: int
    survivors: int
    dropped: int
    status: str  # "ok" or "aborted"
    reason: str  # why it aborted; empty when ok

    def __post_init__(self) -> None:
        normalize_fields(self, ROUND_LOG.columns)
        if self.survivors > self.participants or self.dropped > self.participants:
            raise ValueError("survivors and dropped cannot exceed participants")

    def values(self) -> tuple[object, ...]:
        """The row's cells in round_log.csv's column order."""
        return tuple(getattr(self, name) for name in ROUND_LOG.header)


@dataclass(frozen=True, slots=True)
class MetricsRow:
    """The global model's scores on the hub's test CSV after one round."""

    round: int
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    logloss: float

    def __post_init__(self) -> None:
        normalize_fields(self, METRICS_LOG.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in metrics_log.csv's column order."""
        return tuple(getattr(self, name) for name in METRICS_LOG.header)


@dataclass(frozen=True, slots=True)
class PerfRow:
    """Where one round's time and bytes went.

    `stage_s` maps stage names (`STAGES`) to seconds; stages a round did not
    run may be left out and read as 0.0. After construction it holds every
    stage, in `STAGES` order, read-only.
    """

    round: int
    duration_s: float
    cpu_s: float
    stage_s: Mapping[str, float]
    evaluate_s: float
    bytes_in: int
    bytes_out: int

    def __post_init__(self) -> None:
        normalize_fields(self, (c for c in PERF_LOG.columns if c not in _STAGE_COLUMNS))
        if not isinstance(self.stage_s, Mapping):
            raise ValueError("PerfRow.stage_s must be a mapping of stage names to seconds")
        unknown = set(self.stage_s) - set(STAGES)
        if unknown:
            raise ValueError(f"PerfRow.stage_s: unknown stage {sorted(map(str, unknown))[0]!r}")
        seconds = {}
        for stage, column in zip(STAGES, _STAGE_COLUMNS, strict=True):
            try:
                seconds[stage] = column.check(self.stage_s.get(stage, 0.0))
            except ValueError as exc:
                raise ValueError(f"PerfRow.stage_s[{stage!r}] {exc}") from None
        object.__setattr__(self, "stage_s", MappingProxyType(seconds))

    def values(self) -> tuple[object, ...]:
        """The row's cells in perf_log.csv's column order."""
        return (
            self.round,
            self.duration_s,
            self.cpu_s,
            *self.stage_s.values(),
            self.evaluate_s,
            self.bytes_in,
            self.bytes_out,
        )

    @classmethod
    def from_values(cls, *values: Any) -> PerfRow:
        """The inverse of `values`."""
        end = 3 + len(STAGES)
        stages = dict(zip(STAGES, values[3:end], strict=True))
        return cls(values[0], values[1], values[2], stages, *values[end:])


@dataclass(frozen=True, slots=True)
class ClientPerfRow:
    """One peer's share of a round, as it reported it."""

    round: int
    peer: str
    n_samples: int
    train_s: float
    cpu_s: float
    upload_bytes: int

    def __post_init__(self) -> None:
        normalize_fields(self, CLIENT_PERF.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in client_perf.csv's column order."""
        return tuple(getattr(self, name) for name in CLIENT_PERF.header)


@dataclass(frozen=True, slots=True)
class UpdateRow:
    """One parameter's share of the mean delta a round applied to the global model."""

    round: int
    parameter: str
    delta: float

    def __post_init__(self) -> None:
        normalize_fields(self, UPDATES.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in updates.csv's column order."""
        return (self.round, self.parameter, self.delta)


@dataclass(frozen=True, slots=True)
class PeerRow:
    """A peer the hub has seen. `public_key` is its CURVE key (Z85), or empty."""

    peer: str
    public_key: str
    first_seen: float
    last_seen: float
    shard: int
    status: str

    def __post_init__(self) -> None:
        normalize_fields(self, PEERS.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in peers.csv's column order."""
        return tuple(getattr(self, name) for name in PEERS.header)


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one round leaves on disk; all rows carry the same round.

    `model` is the global model after the round, `[bias, w_1..w_d]`.
    `delta` is the mean delta the round applied to it, in the same order:
    given exactly when the round is ok, None when it aborted (the model is
    then unchanged). `HubStore.commit` checks that `model` is the previous
    model plus `delta`, so that updates.csv replays to global_model.csv.
    """

    round: RoundRow
    model: Sequence[float]
    metrics: MetricsRow | None
    perf: PerfRow
    clients: Sequence[ClientPerfRow]
    delta: Sequence[float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "clients", tuple(self.clients))
        number = self.round.round
        rounds = [self.perf.round, *(client.round for client in self.clients)]
        if self.metrics is not None:
            rounds.append(self.metrics.round)
        if any(round_ != number for round_ in rounds):
            raise ValueError(f"every row of a commit must be for round {number}")
        peers = [client.peer for client in self.clients]
        if len(set(peers)) != len(peers):
            raise ValueError("a peer appears twice among the commit's clients")
        object.__setattr__(self, "model", _finite("model", self.model))
        if (self.delta is None) != (self.round.status == "aborted"):
            raise ValueError(
                "an ok round commits the delta it applied; an aborted round commits none"
            )
        if self.delta is not None:
            delta = _finite("delta", self.delta)
            if len(delta) != len(self.model):
                raise ValueError(
                    f"Commit.delta has {len(delta)} values, the model {len(self.model)}"
                )
            object.__setattr__(self, "delta", delta)


def _finite(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """`values` as a tuple of finite floats; ValueError naming `Commit.<name>[i]`."""
    checked = []
    for index, value in enumerate(values):
        try:
            checked.append(MODEL.columns[2].check(value))
        except ValueError as exc:
            raise ValueError(f"Commit.{name}[{index}] {exc}") from None
    return tuple(checked)
