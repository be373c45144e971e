"""What `fedd report` computes: per-round performance figures, and the verdict on the
final model.

Pure computation over plain records (`RoundRecord`, `ClientRecord`) and the
centralized baseline's scores: `fedd.report.maker` reads the hub's CSV state
into those records, `fedd.report.decision` holds the equivalence decision,
`fedd.report.files` writes the CSV files and `fedd.report.plots` draws.

The federated scores are those of the last round that has them: an aborted
round leaves the model unchanged, so that is the final model.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fedd.report.decision import DEFAULT_TOLERANCE, Verdict, decide

__all__ = [
    "ClientRecord",
    "OverallPerformance",
    "PeerPerformance",
    "Report",
    "RoundPerformance",
    "RoundRecord",
    "build_report",
    "final_scores",
]


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One committed round as the hub logged it.

    `stage_s` maps protocol stage names to seconds, in the stages' order;
    `scores` maps metric names (at least `decision.SHOWN_METRICS`) to the global
    model's test scores after the round, or is None when it has none (an
    aborted round, or a hub without a test set).
    """

    round: int
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
    """Medians over the completed rounds (None when there are none); `aborted` counts the rest."""

    rounds: int
    aborted: int
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
            f"rounds       {self.rounds} completed, {self.aborted} aborted",
            f"round time   median {show(self.duration_s, '.3f')} s"
            + (f" ({stages})" if stages else ""),
            f"bytes/peer   median up {show(self.up_bytes_per_peer, ',.0f')} B, "
            f"down {show(self.down_bytes_per_peer, ',.0f')} B per round",
            f"local train  median {show(self.train_s, '.3f')} s per peer and round",
        ]


@dataclass(frozen=True, slots=True)
class PeerPerformance:
    """One peer across the run: rounds it reported in, median training seconds and upload."""

    peer: str
    rounds: int
    train_s: float
    upload_bytes: float


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows: the inputs, the figures and the verdict."""

    stages: tuple[str, ...]
    rounds: tuple[RoundRecord, ...]
    centralized: Mapping[str, float]
    verdict: Verdict
    per_round: tuple[RoundPerformance, ...]
    overall: OverallPerformance
    per_peer: tuple[PeerPerformance, ...]


def final_scores(rounds: Sequence[RoundRecord]) -> tuple[int, Mapping[str, float]] | None:
    """The last round that has scores and those scores; None if no round has any."""
    for record in reversed(rounds):
        if record.scores is not None:
            return record.round, record.scores
    return None


def _median(values: Iterable[float]) -> float | None:
    seen = list(values)
    return statistics.median(seen) if seen else None


def _per_peer(bytes_total: int, peers: int) -> float | None:
    return bytes_total / peers if peers else None


def _round_performance(record: RoundRecord, clients: Sequence[ClientRecord]) -> RoundPerformance:
    return RoundPerformance(
        round=record.round,
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
    ok = [r for r in per_round if r.status == "ok"]

    def med(values: Iterable[float | None]) -> float | None:
        return _median(v for v in values if v is not None)

    return OverallPerformance(
        rounds=len(ok),
        aborted=len(per_round) - len(ok),
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


def _peers(clients: Sequence[ClientRecord]) -> tuple[PeerPerformance, ...]:
    by_peer: dict[str, list[ClientRecord]] = {}
    for client in clients:
        by_peer.setdefault(client.peer, []).append(client)
    return tuple(
        PeerPerformance(
            peer=peer,
            rounds=len(rows),
            train_s=statistics.median(c.train_s for c in rows),
            upload_bytes=statistics.median(c.upload_bytes for c in rows),
        )
        for peer, rows in sorted(by_peer.items())
    )


def build_report(
    rounds: Sequence[RoundRecord],
    clients: Sequence[ClientRecord],
    centralized: Mapping[str, float],
    *,
    stages: Sequence[str],
    tolerance: float = DEFAULT_TOLERANCE,
) -> Report:
    """Compute the figures and the verdict of a run.

    `rounds` in round order; `clients` may be in any order; `stages` names the
    protocol stages in order (the columns of the performance file). Raises
    `ValueError` if there are no rounds, no round has scores, a client row
    belongs to no round, or `decide` refuses its arguments.
    """
    if not rounds:
        raise ValueError("no rounds to report on")
    final = final_scores(rounds)
    if final is None:
        raise ValueError("no round has test scores")
    numbers = {record.round for record in rounds}
    by_round: dict[int, list[ClientRecord]] = {}
    for client in clients:
        if client.round not in numbers:
            raise ValueError(f"client row of peer {client.peer!r} for unknown round {client.round}")
        by_round.setdefault(client.round, []).append(client)
    per_round = tuple(_round_performance(r, by_round.get(r.round, [])) for r in rounds)
    return Report(
        stages=tuple(stages),
        rounds=tuple(rounds),
        centralized=dict(centralized),
        verdict=decide(centralized, final[1], tolerance, at_round=final[0]),
        per_round=per_round,
        overall=_overall(per_round, stages),
        per_peer=_peers(clients),
    )
