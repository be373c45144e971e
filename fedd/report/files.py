"""The report's CSV files, from a `fedd.report.compute.Report`.

Two files, each written atomically:

`performance_summary.csv`, one row per `scope`:

    round    one per committed round: its kind (statistics, training,
             evaluation), status, peers, wall-clock and CPU
             seconds, seconds per protocol stage and for evaluation, the hub's
             bytes in and out, and those bytes per participant (up = what the
             hub received, down = what it sent); `train_s` and `upload_bytes`
             are the median over the peers that reported that round.
    overall  the median of each per-round figure over the training rounds
             that completed (`status` ok; aborted rounds end in a time-out and
             would skew the figures); `rounds` counts them.
    peer     one per peer: `rounds` it reported in, its median local training
             seconds and median upload bytes, and `trained_in`: how many
             ok training rounds' committed sums hold its update
             (survivors.csv), the audit trail of whose rows shaped the model;
             empty for a state that does not know every round's survivors.

A figure that does not apply to a scope, or has nothing to take a median of,
is an empty cell.

`baseline_vs_fl.csv`: one row per metric (ROC-AUC and F1 are decided, PR-AUC
is shown only), then an `overall` row. Columns: metric, centralized,
federated, difference (federated - centralized), the 95% interval of the
difference (both sides scored on the same rows) or of each side (scored on
different rows), empty where there is none, tolerance, decision.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from fedd.learner.atomic import atomic_text_writer
from fedd.report.compute import Report
from fedd.report.decision import Verdict

__all__ = [
    "PERFORMANCE_FILE",
    "VERDICT_FILE",
    "VERDICT_HEADER",
    "performance_header",
    "performance_rows",
    "verdict_rows",
    "write_report_csvs",
]

PERFORMANCE_FILE = "performance_summary.csv"
VERDICT_FILE = "baseline_vs_fl.csv"
VERDICT_HEADER = (
    "metric", "centralized", "federated", "difference", "difference_low", "difference_high",
    "centralized_low", "centralized_high", "federated_low", "federated_high", "tolerance",
    "decision",
)  # fmt: skip


def _stage_column(stage: str) -> str:
    return stage.replace("-", "_") + "_s"


def performance_header(stages: Sequence[str]) -> tuple[str, ...]:
    """The columns of performance_summary.csv for these protocol stages."""
    return (
        "scope", "round", "kind", "peer", "status", "rounds", "participants", "survivors",
        "duration_s", "cpu_s", *map(_stage_column, stages), "evaluate_s",
        "bytes_in", "bytes_out", "up_bytes_per_peer", "down_bytes_per_peer",
        "train_s", "upload_bytes", "trained_in",
    )  # fmt: skip


def _cell(value: object) -> str:
    """Ints as written, floats with repr (exact), None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def performance_rows(report: Report) -> list[list[str]]:
    """The data rows of performance_summary.csv: rounds, then overall, then peers."""
    rows: list[list[object]] = []
    for r in report.per_round:
        rows.append([
            "round", r.round, r.kind, "", r.status, "", r.participants, r.survivors,
            r.duration_s, r.cpu_s, *(r.stage_s.get(s, 0.0) for s in report.stages),
            r.evaluate_s, r.bytes_in, r.bytes_out, r.up_bytes_per_peer,
            r.down_bytes_per_peer, r.train_s, r.upload_bytes, None,
        ])  # fmt: skip
    o = report.overall
    rows.append([
        "overall", "", "training", "", "ok", o.rounds, o.participants, o.survivors, o.duration_s,
        o.cpu_s, *(o.stage_s.get(s) for s in report.stages), o.evaluate_s, o.bytes_in,
        o.bytes_out, o.up_bytes_per_peer, o.down_bytes_per_peer, o.train_s, o.upload_bytes,
        None,
    ])  # fmt: skip
    blanks = [None] * (len(report.stages) + 9)  # participants .. down_bytes_per_peer
    for p in report.per_peer:
        rows.append([
            "peer", "", "", p.peer, "", p.rounds, *blanks, p.train_s, p.upload_bytes,
            p.trained_in,
        ])  # fmt: skip
    return [[_cell(v) for v in row] for row in rows]


def verdict_rows(verdict: Verdict) -> list[list[str]]:
    """The data rows of baseline_vs_fl.csv: one per metric, then `overall`."""
    rows: list[list[object]] = []
    for c in verdict.comparisons:
        difference = (c.interval.low, c.interval.high) if c.interval else (None, None)
        sides = [
            (side.low, side.high) if side is not None else (None, None)
            for side in c.sides or (None, None)
        ]
        rows.append([
            c.metric, c.centralized, c.federated, c.difference, *difference, *sides[0],
            *sides[1], verdict.tolerance, c.decision,
        ])  # fmt: skip
    rows.append(["overall", *[None] * 9, verdict.tolerance, verdict.decision])
    return [[_cell(v) for v in row] for row in rows]


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with atomic_text_writer(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_report_csvs(report: Report, metrics_dir: Path) -> tuple[Path, Path]:
    """Write `PERFORMANCE_FILE` and `VERDICT_FILE` into `metrics_dir`, each atomically.

    Returns their paths. Raises `DataError` if a file cannot be written.
    """
    performance = metrics_dir / PERFORMANCE_FILE
    verdict = metrics_dir / VERDICT_FILE
    _write_csv(performance, performance_header(report.stages), performance_rows(report))
    _write_csv(verdict, VERDICT_HEADER, verdict_rows(report.verdict))
    return performance, verdict
