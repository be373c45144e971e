"""What `fedd report` computes: per-round performance figures, and the verdict on the
final model.

Pure computation over plain records (`RoundRecord`, `ClientRecord`) and the
centralized baseline's scores: `fedd.report.maker` reads the hub's CSV state
into those records, `fedd.report.decision` holds the equivalence decision,
`fedd.report.files` writes the CSV files and `fedd.report.plots` draws.

The federated scores are those of the last training round whose model has
them: an aborted round leaves the model unchanged, and statistics and
evaluation rounds never change it, so that is the final model. Its scores
come from the peers' held-out rows (`federated`, within the binning bounds)
or from the hub's own test CSV (`test`); `Scoring` says which, and on how
many peers and rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fedd.report.decision import DEFAULT_TOLERANCE, Verdict, decide
from fedd.report.rowscores import RowScores
from fedd.report.trust import assess

__all__ = [
    "ClientRecord",
    "OverallPerformance",
    "PeerPerformance",
    "Report",
    "RoundPerformance",
    "RoundRecord",
    "Scoring",
    "build_report",
    "final_scores",
]


@dataclass(frozen=True, slots=True)
class Scoring:
    """Where a model's scores came from: `federated` or `test`, how many peers
    (0 for test) and rows, the binning bounds of the AUCs (0 for test), and the
    decision threshold of precision, recall and F1."""

    source: str
    peers: int
    rows: int
    positives: int
    roc_auc_bound: float
    pr_auc_bound: float
    threshold: float

    def line(self) -> str:
        if self.source == "test":
            return f"scored on the hub's test CSV: {self.rows} rows, {self.positives} positive"
        return (
            f"scored by {self.peers} peers on their {self.rows} held-out rows "
            f"({self.positives} positive); binning bounds ROC-AUC ±{self.roc_auc_bound:.4f}, "
            f"PR-AUC ±{self.pr_auc_bound:.4f}"
        )


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One committed round as the hub logged it.

    `kind` is what it aggregated (statistics, training, evaluation);
    `stage_s` maps protocol stage names to seconds, in the stages' order;
    `scores` maps metric names (at least `decision.SHOWN_METRICS`) to the
    scores of the global model a training round left, or is None when it has
    none (an aborted round, a round of another kind, a model not scored);
    `scoring` says where they came from.
    """

    round: int
    kind: str
    status: str
    participants: int
    survivors: int
    duration_s: float
    cpu_s: float
    stage_s: Mapping[str, float]
    evaluate_s: float
    bytes_in: int
    bytes_out: int
    scores: Mapping[str, float] | None
    scoring: Scoring | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One peer's report for one round: its samples, training seconds, upload bytes."""

    round: int
    peer: str
    n_samples: int
    train_s: float
    upload_bytes: int


@dataclass(frozen=True, slots=True)
class RoundPerformance:
    """The performance figures of one round (see the module docstring)."""

    round: int
    kind: str
    status: str
    participants: int
    survivors: int
    duration_s: float
    cpu_s: float
    stage_s: Mapping[str, float]
    evaluate_s: float
    bytes_in: int
    bytes_out: int
    up_bytes_per_peer: float | None
    down_bytes_per_peer: float | None
    train_s: float | None
    upload_bytes: float | None


@dataclass(frozen=True, slots=True)
class OverallPerformance:
    """Medians over the completed training rounds (None when there are none);
    `aborted` counts the training rounds that did not complete. `statistics_s`
    is the run's statistics round's time, `evaluation_rounds` and
    `evaluation_s` count the rounds that only scored models and their median
    time: what computing the statistics and the scores without pooling cost."""

    rounds: int
    aborted: int
    statistics_s: float | None
    evaluation_rounds: int
    evaluation_s: float | None
    participants: float | None
    survivors: float | None
    duration_s: float | None
    cpu_s: float | None
    stage_s: Mapping[str, float | None]
    evaluate_s: float | None
    bytes_in: float | None
    bytes_out: float | None
    up_bytes_per_peer: float | None
    down_bytes_per_peer: float | None
    train_s: float | None
    upload_bytes: float | None

    def lines(self) -> list[str]:
        """A short summary for people."""

        def show(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        stages = ", ".join(
            f"{name} {seconds:.3f}s" for name, seconds in self.stage_s.items() if seconds
        )
        return [
            f"rounds       {self.rounds} training rounds completed, {self.aborted} aborted",
            f"round time   median {show(self.duration_s, '.3f')} s"
            + (f" ({stages})" if stages else ""),
            f"statistics   {show(self.statistics_s, '.3f')} s, once; scoring only: "
            f"{self.evaluation_rounds} rounds, median {show(self.evaluation_s, '.3f')} s",
            f"bytes/peer   median up {show(self.up_bytes_per_peer, ',.0f')} B, "
            f"down {show(self.down_bytes_per_peer, ',.0f')} B per round",
            f"local train  median {show(self.train_s, '.3f')} s per peer and round",
        ]


@dataclass(frozen=True, slots=True)
class PeerPerformance:
    """One peer across the run: rounds it reported in, median training seconds and
    upload (None if it reported in none), and `trained_in`: the ok training rounds
    whose committed sum holds its update, the model's audit trail (None when the
    state does not know every such round's survivors)."""

    peer: str
    rounds: int
    train_s: float | None
    upload_bytes: float | None
    trained_in: int | None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows: the inputs, the figures and the verdict.

    `statistics` says where the run's feature statistics came from, and
    `training` how the federation trained: its strategy and settings (one
    line each); `budget` how much training each side had (lines,
    `fedd.report.budget`).
    """

    stages: tuple[str, ...]
    rounds: tuple[RoundRecord, ...]
    centralized: Mapping[str, float]
    verdict: Verdict
    statistics: str
    per_round: tuple[RoundPerformance, ...]
    overall: OverallPerformance
    per_peer: tuple[PeerPerformance, ...]
    training: str = ""
    budget: tuple[str, ...] = ()


def final_scores(rounds: Sequence[RoundRecord]) -> RoundRecord | None:
    """The last training round whose model has scores; None if no model has any."""
    for record in reversed(rounds):
        if record.kind == "training" and record.scores is not None:
            return record
    return None


def _median(values: Iterable[float]) -> float | None:
    seen = list(values)
    return statistics.median(seen) if seen else None


def _per_peer(bytes_total: int, peers: int) -> float | None:
    return bytes_total / peers if peers else None


def _round_performance(record: RoundRecord, clients: Sequence[ClientRecord]) -> RoundPerformance:
    return RoundPerformance(
        round=record.round,
        kind=record.kind,
        status=record.status,
        participants=record.participants,
        survivors=record.survivors,
        duration_s=record.duration_s,
        cpu_s=record.cpu_s,
        stage_s=dict(record.stage_s),
        evaluate_s=record.evaluate_s,
        bytes_in=record.bytes_in,
        bytes_out=record.bytes_out,
        up_bytes_per_peer=_per_peer(record.bytes_in, record.participants),
        down_bytes_per_peer=_per_peer(record.bytes_out, record.participants),
        train_s=_median(c.train_s for c in clients),
        upload_bytes=_median(c.upload_bytes for c in clients),
    )


def _overall(per_round: Sequence[RoundPerformance], stages: Sequence[str]) -> OverallPerformance:
    training = [r for r in per_round if r.kind == "training"]
    ok = [r for r in training if r.status == "ok"]
    statistics_rounds = [r for r in per_round if r.kind == "statistics" and r.status == "ok"]
    scoring = [r for r in per_round if r.kind == "evaluation" and r.status == "ok"]

    def med(values: Iterable[float | None]) -> float | None:
        return _median(v for v in values if v is not None)

    return OverallPerformance(
        rounds=len(ok),
        aborted=len(training) - len(ok),
        statistics_s=statistics_rounds[0].duration_s if statistics_rounds else None,
        evaluation_rounds=len(scoring),
        evaluation_s=med(r.duration_s for r in scoring),
        participants=med(r.participants for r in ok),
        survivors=med(r.survivors for r in ok),
        duration_s=med(r.duration_s for r in ok),
        cpu_s=med(r.cpu_s for r in ok),
        stage_s={stage: med(r.stage_s.get(stage, 0.0) for r in ok) for stage in stages},
        evaluate_s=med(r.evaluate_s for r in ok),
        bytes_in=med(r.bytes_in for r in ok),
        bytes_out=med(r.bytes_out for r in ok),
        up_bytes_per_peer=med(r.up_bytes_per_peer for r in ok),
        down_bytes_per_peer=med(r.down_bytes_per_peer for r in ok),
        train_s=med(r.train_s for r in ok),
        upload_bytes=med(r.upload_bytes for r in ok),
    )


def _peers(
    clients: Sequence[ClientRecord],
    rounds: Sequence[RoundRecord],
    survivors: Mapping[int, frozenset[str]],
) -> tuple[PeerPerformance, ...]:
    by_peer: dict[str, list[ClientRecord]] = {}
    for client in clients:
        by_peer.setdefault(client.peer, []).append(client)
    trained = [survivors.get(r.round) for r in rounds if r.ok and r.kind == "training"]
    held = [peers for peers in trained if peers is not None]
    known = len(held) == len(trained)
    out = []
    for peer in sorted(by_peer.keys() | {p for peers in held for p in peers}):
        rows = by_peer.get(peer, [])
        out.append(
            PeerPerformance(
                peer=peer,
                rounds=len(rows),
                train_s=_median(c.train_s for c in rows),
                upload_bytes=_median(c.upload_bytes for c in rows),
                trained_in=sum(peer in peers for peers in held) if known else None,
            )
        )
    return tuple(out)


def build_report(
    rounds: Sequence[RoundRecord],
    clients: Sequence[ClientRecord],
    centralized: Mapping[str, float],
    *,
    stages: Sequence[str],
    statistics: str = "",
    training: str = "",
    tolerance: float = DEFAULT_TOLERANCE,
    row_scores: RowScores | None = None,
    budget: Sequence[str] = (),
    survivors: Mapping[int, frozenset[str]] | None = None,
) -> Report:
    """Compute the figures and the verdict of a run.

    `rounds` in round order; `clients` may be in any order; `survivors` the peers
    each ok round's sum holds, by round (None, or a round missing: not known);
    `stages` names the protocol stages in order (the columns of the performance file);
    `row_scores` both models' scores of each held-out row, if known (the
    verdict's intervals are then paired); `budget` the lines on training
    budgets. Raises `ValueError` if there are no rounds, no round has scores,
    a client row belongs to no round, or `decide` refuses its arguments.
    """
    if not rounds:
        raise ValueError("no rounds to report on")
    final = final_scores(rounds)
    if final is None or final.scores is None:
        raise ValueError("no trained model has scores")
    numbers = {record.round for record in rounds}
    by_round: dict[int, list[ClientRecord]] = {}
    for client in clients:
        if client.round not in numbers:
            raise ValueError(f"client row of peer {client.peer!r} for unknown round {client.round}")
        by_round.setdefault(client.round, []).append(client)
    per_round = tuple(_round_performance(r, by_round.get(r.round, [])) for r in rounds)
    scoring = final.scoring
    scored_on = (scoring.rows, scoring.positives) if scoring is not None else None
    trust = assess(centralized, final.scores, scored_on, row_scores, tolerance)
    return Report(
        stages=tuple(stages),
        rounds=tuple(rounds),
        centralized=dict(centralized),
        verdict=decide(
            centralized,
            final.scores,
            tolerance,
            at_round=final.round,
            scored=scoring.line() if scoring is not None else "",
            trust=trust,
        ),
        per_round=per_round,
        overall=_overall(per_round, stages),
        per_peer=_peers(clients, rounds, survivors or {}),
        statistics=statistics,
        training=training,
        budget=tuple(budget),
    )
