"""The hub's state files: their tables (columns, in order) and their rows.

Each row class checks its fields when built (`ValueError` naming the field),
so that nothing `daemon.state.store` writes fails to read back; the tables are what
`daemon.state.csvfile` reads and writes. The file formats are described in
`daemon.state.store`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
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
from fedd.daemon.state.survivors import SURVIVORS

__all__ = [
    "CLIENT_PERF",
    "HUB_TABLES",
    "KINDS",
    "LOGS",
    "METRICS_LOG",
    "METRIC_SOURCES",
    "MODEL",
    "OPTIMIZER",
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
# What a round aggregates (daemon.transport.contribution.KINDS; state does not import transport).
KINDS = ("statistics", "training", "evaluation")
# Where a metrics row's figures come from: the peers' held-out rows, or the hub's test CSV.
METRIC_SOURCES = ("federated", "test")
# Modes and peer statuses are short lowercase words chosen by the hub (off, full, plus;
# alive, gone, left): checked for shape, not against a list this module would have to track.
WORD = re.compile(r"[a-z0-9][a-z0-9_+.-]{0,31}")
# peer.state's files: daemon/ never imports peer/, and a test keeps the two in step.
PEER_FILES = (
    "identity.csv",
    "rounds.csv",
    "statistics.csv",
    "control.csv",
    "control_pending.csv",
)

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
        text_column("kind", choices=KINDS),
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
_unit = ("roc_auc", "roc_auc_bound", "pr_auc", "pr_auc_bound", "precision", "recall", "f1")
METRICS_LOG = Table(
    "metrics_log.csv",
    (
        _round,
        text_column("source", choices=METRIC_SOURCES),
        int_column("committed_in", 0, MAX_ROUND),
        int_column("peers"),
        int_column("rows"),
        int_column("positives"),
        *(float_column(n, 0.0, 1.0) for n in _unit),
        float_column("threshold", 0.0, 1.0),
        float_column("best_threshold", 0.0, 1.0),
        float_column("best_f1", 0.0, 1.0),
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
_real = (-math.inf, math.inf)
UPDATES = Table(
    "updates.csv",
    (
        _round,
        text_column("parameter"),
        float_column("delta", *_real),
        float_column("mean", *_real),
        float_column("control", *_real, nan_as_empty=True),
    ),
    appended=True,
)
OPTIMIZER = Table(
    "optimizer.csv",
    (
        _round,
        text_column("parameter"),
        float_column("momentum", *_real),
        float_column("second_moment", *_real),
        float_column("control", *_real),
    ),
    appended=False,
)
LOGS = (ROUND_LOG, METRICS_LOG, PERF_LOG, CLIENT_PERF, UPDATES, SURVIVORS)
HUB_TABLES = (RUN, MODEL, *LOGS, PEERS, OPTIMIZER)


@dataclass(frozen=True, slots=True)
class RoundRow:
    """One round as round_log.csv records it. Times are Unix seconds."""

    round: int
    kind: str  # what it aggregated: statistics, training or evaluation
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
    """The scores of the global model of training round `round`.

    `source` is `federated` (the peers' held-out rows, through secure sums:
    `peers` peers and `rows` rows, the AUCs within their bounds) or `test`
    (the hub's own test CSV, exact: bounds 0). The row was written by the
    commit of round `committed_in` (the round itself for `test`; a later one
    for `federated`, whose scores travel with later rounds). Precision,
    recall and F1 are at probability `threshold`; `best_f1` is the best F1 at
    any threshold the counts resolve, reached at `best_threshold`.
    """

    round: int
    source: str
    committed_in: int
    peers: int
    rows: int
    positives: int
    roc_auc: float
    roc_auc_bound: float
    pr_auc: float
    pr_auc_bound: float
    precision: float
    recall: float
    f1: float
    threshold: float
    best_threshold: float
    best_f1: float
    logloss: float

    def __post_init__(self) -> None:
        normalize_fields(self, METRICS_LOG.columns)
        if self.committed_in < self.round:
            raise ValueError("a model's scores are committed with its round or after it")
        if self.positives > self.rows:
            raise ValueError("MetricsRow.positives cannot exceed rows")

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
    """One parameter of an ok training round: the `delta` the round added to the
    global model (the strategy's step), the survivors' weighted `mean` update it
    made it of, and their mean control variate change (SCAFFOLD; nan otherwise)."""

    round: int
    parameter: str
    delta: float
    mean: float
    control: float

    def __post_init__(self) -> None:
        normalize_fields(self, UPDATES.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in updates.csv's column order."""
        return (self.round, self.parameter, self.delta, self.mean, self.control)


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
