"""fedd.report.compute, .decision and .files: the equivalence decision, the performance
figures and the CSV files."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import pytest

from fedd.report.compute import ClientRecord, RoundRecord, build_report, final_scores
from fedd.report.decision import decide, within_tolerance
from fedd.report.files import (
    PERFORMANCE_FILE,
    VERDICT_FILE,
    VERDICT_HEADER,
    performance_header,
    write_report_csvs,
)

STAGES = ("train_upload", "advertise-keys", "unmask")
CENTRAL = {"roc_auc": 0.90, "pr_auc": 0.60, "precision": 0.7, "recall": 0.5, "f1": 0.80,
           "logloss": 0.01}  # fmt: skip


def scores(roc_auc: float, f1: float, pr_auc: float = 0.6) -> dict[str, float]:
    return {"roc_auc": roc_auc, "pr_auc": pr_auc, "precision": 0.5, "recall": 0.5, "f1": f1,
            "logloss": 0.02}  # fmt: skip


def record(
    number: int,
    *,
    status: str = "ok",
    duration: float = 1.0,
    stages: Mapping[str, float] | None = None,
    bytes_in: int = 3000,
    bytes_out: int = 6000,
    participants: int = 3,
    scored: dict[str, float] | None = None,
    kind: str = "training",
) -> RoundRecord:
    return RoundRecord(
        round=number,
        kind=kind,
        status=status,
        participants=participants,
        survivors=participants if status == "ok" else 1,
        duration_s=duration,
        cpu_s=duration / 2,
        stage_s=dict(stages or {"train_upload": duration * 0.75, "unmask": duration * 0.25}),
        evaluate_s=0.125,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        scores=scored if scored is not None else (scores(0.9, 0.8) if status == "ok" else None),
    )


# --- the decision ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("central", "federated", "expected"),
    [
        (0.90, 0.905, True),  # inside
        (0.90, 0.895, True),  # inside, below
        (0.90, 0.91, True),  # at: 0.91 - 0.90 is 0.010000000000000009 in doubles
        (0.91, 0.90, True),  # at, below
        (0.80, 0.79, True),  # at: 0.010000000000000009 again
        (0.50, 0.51, True),  # at: 0.010000000000000009
        (0.90, 0.9100001, False),  # just beyond
        (0.90, 0.8899999, False),  # just beyond, below
        (0.90, 0.92, False),  # beyond
    ],
)
def test_within_tolerance_is_inclusive_and_immune_to_float_noise(
    central: float, federated: float, expected: bool
) -> None:
    assert within_tolerance(federated - central, 0.01) is expected


def test_the_at_tolerance_case_really_carries_float_noise() -> None:
    # Without the rounding, the plain comparison would call these "beyond".
    assert abs(0.91 - 0.90) > 0.01
    assert abs(0.79 - 0.80) > 0.01


def test_zero_tolerance_means_equal_up_to_the_rounding() -> None:
    assert within_tolerance(0.0, 0.0)
    assert within_tolerance(1e-15, 0.0)
    assert not within_tolerance(1e-9, 0.0)


@pytest.mark.parametrize(
    ("difference", "tolerance"), [(math.nan, 0.01), (0.0, -0.01), (0.0, math.inf), (math.inf, 0.01)]
)
def test_within_tolerance_refuses_meaningless_arguments(
    difference: float, tolerance: float
) -> None:
    with pytest.raises(ValueError, match="finite"):
        within_tolerance(difference, tolerance)


def test_decide_per_metric_and_overall() -> None:
    both = decide(CENTRAL, scores(0.905, 0.81), 0.01, at_round=4)
    assert both.equivalent and both.decision == "equivalent" and both.round == 4
    assert [(c.metric, c.decision) for c in both.comparisons] == [
        ("roc_auc", "equivalent"), ("pr_auc", "shown only"), ("f1", "equivalent"),
    ]  # fmt: skip
    f1_off = decide(CENTRAL, scores(0.905, 0.78), 0.01, at_round=4)
    assert not f1_off.equivalent
    assert [c.equivalent for c in f1_off.comparisons] == [True, None, False]
    assert f1_off.comparisons[2].difference == pytest.approx(-0.02)
    roc_off = decide(CENTRAL, scores(0.85, 0.80), 0.01, at_round=4)
    assert not roc_off.equivalent and [c.equivalent for c in roc_off.comparisons] == [
        False, None, True,
    ]  # fmt: skip


def test_pr_auc_is_shown_but_never_decides() -> None:
    verdict = decide(CENTRAL, scores(0.9, 0.8, pr_auc=0.1), 0.01, at_round=1)
    assert verdict.equivalent
    assert verdict.comparisons[1].difference == pytest.approx(-0.5)


def test_a_wider_tolerance_turns_the_same_scores_equivalent() -> None:
    assert not decide(CENTRAL, scores(0.87, 0.8), 0.01, at_round=1).equivalent
    assert decide(CENTRAL, scores(0.87, 0.8), 0.03, at_round=1).equivalent


def test_verdict_lines_name_the_metrics_that_failed() -> None:
    text = "\n".join(decide(CENTRAL, scores(0.905, 0.75), 0.01, at_round=7).lines())
    assert "federated model of round 7" in text
    assert "verdict: NOT EQUIVALENT (F1 off by 0.0500; tolerance ±0.01)" in text
    assert "ROC-AUC        0.9000     0.9050     +0.0050  -                     equivalent" in text
    ok = "\n".join(decide(CENTRAL, scores(0.9, 0.8), 0.01, at_round=7).lines())
    assert "verdict: EQUIVALENT (ROC-AUC and F1 within ±0.01)" in ok


def test_decide_refuses_missing_or_broken_scores() -> None:
    partial = {"roc_auc": 0.9, "f1": 0.8}
    with pytest.raises(ValueError, match="pr_auc"):
        decide(CENTRAL, partial, 0.01, at_round=1)
    with pytest.raises(ValueError, match="finite"):
        decide(CENTRAL, scores(math.nan, 0.8), 0.01, at_round=1)
    with pytest.raises(ValueError, match="tolerance"):
        decide(CENTRAL, scores(0.9, 0.8), -1.0, at_round=1)


# --- figures ---------------------------------------------------------------------


def test_final_scores_skip_aborted_rounds_at_the_end() -> None:
    rounds = [record(1, scored=scores(0.8, 0.7)), record(2, scored=scores(0.85, 0.75)),
              record(3, status="aborted")]  # fmt: skip
    final = final_scores(rounds)
    assert final is not None and final.round == 2 and final.scores is not None
    assert final.scores["roc_auc"] == 0.85
    assert final_scores([record(1, status="aborted")]) is None
    # Rounds of other kinds never change the model: their scores, if any, are not the model's.
    later = [*rounds, record(4, kind="evaluation", scored=scores(0.5, 0.5))]
    assert final_scores(later) == final


def test_per_round_overall_and_per_peer_figures() -> None:
    rounds = [
        record(1, duration=1.0, bytes_in=3000, bytes_out=6000),
        record(2, duration=3.0, bytes_in=3300, bytes_out=6600, stages={"advertise-keys": 3.0}),
        record(3, status="aborted", duration=30.0, bytes_in=90, bytes_out=90),
        record(4, duration=2.0, bytes_in=3600, bytes_out=7200, participants=4,
               scored=scores(0.895, 0.805)),
    ]  # fmt: skip
    clients = [ClientRecord(r, p, 100, t, u) for r, p, t, u in [
        (1, "a", 0.5, 1000), (1, "b", 0.7, 1100), (1, "c", 0.9, 1200),
        (2, "a", 0.4, 1000), (2, "b", 0.6, 1000),
        (4, "a", 0.3, 900), (4, "c", 1.1, 1300),
    ]]  # fmt: skip
    report = build_report(rounds, clients, CENTRAL, stages=STAGES, tolerance=0.01)
    first, second, aborted, last = report.per_round
    assert (first.up_bytes_per_peer, first.down_bytes_per_peer) == (1000.0, 2000.0)
    assert (last.up_bytes_per_peer, last.down_bytes_per_peer) == (900.0, 1800.0)
    assert (first.train_s, first.upload_bytes) == (0.7, 1100)
    assert (second.train_s, second.upload_bytes) == (0.5, 1000)
    assert aborted.status == "aborted" and aborted.train_s is None and aborted.upload_bytes is None
    assert second.stage_s == {"advertise-keys": 3.0}
    overall = report.overall
    assert (overall.rounds, overall.aborted) == (3, 1)
    assert overall.duration_s == 2.0  # the median of 1, 3, 2: the aborted 30 s left out
    assert overall.up_bytes_per_peer == 1000.0  # of 1000, 1100, 900
    assert overall.train_s == 0.7  # of the round medians 0.7, 0.5, 0.7
    # Medians stage by stage, a stage a round did not run counting 0 s.
    assert overall.stage_s == {"train_upload": 0.75, "advertise-keys": 0.0, "unmask": 0.25}
    assert [(p.peer, p.rounds, p.upload_bytes) for p in report.per_peer] == [
        ("a", 3, 1000), ("b", 2, 1050.0), ("c", 2, 1250.0),
    ]  # fmt: skip
    assert [p.train_s for p in report.per_peer] == pytest.approx([0.4, 0.65, 1.0])
    # Without survivors.csv's word on every ok training round, nobody's count is known.
    assert [p.trained_in for p in report.per_peer] == [None, None, None]
    assert report.verdict.round == 4 and report.verdict.equivalent
    lines = "\n".join(overall.lines())
    assert "3 training rounds completed, 1 aborted" in lines and "median 2.000 s" in lines


def test_statistics_and_scoring_rounds_are_counted_apart() -> None:
    rounds = [
        record(1, kind="statistics", duration=0.5, scored={}),
        record(2, duration=1.0),
        record(3, duration=3.0),
        record(4, kind="evaluation", duration=0.25, scored={}),
        record(5, kind="evaluation", duration=0.75, scored={}),
    ]
    overall = build_report(rounds, [], CENTRAL, stages=STAGES).overall
    assert (overall.rounds, overall.aborted, overall.duration_s) == (2, 0, 2.0)
    assert (overall.statistics_s, overall.evaluation_rounds, overall.evaluation_s) == (
        0.5,
        2,
        0.5,
    )
    assert "statistics   0.500 s, once; scoring only: 2 rounds, median 0.500 s" in "\n".join(
        overall.lines()
    )


def test_all_rounds_aborted_but_one_gives_blank_medians_where_nothing_was_reported() -> None:
    report = build_report([record(1)], [], CENTRAL, stages=STAGES)
    assert report.per_round[0].train_s is None and report.overall.train_s is None
    assert report.per_peer == ()


def test_build_report_refuses_what_it_cannot_report() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        build_report([], [], CENTRAL, stages=STAGES)
    with pytest.raises(ValueError, match="no trained model has scores"):
        build_report([record(1, status="aborted")], [], CENTRAL, stages=STAGES)
    with pytest.raises(ValueError, match="unknown round 9"):
        build_report([record(1)], [ClientRecord(9, "a", 1, 0.1, 1)], CENTRAL, stages=STAGES)


# --- the CSV files ---------------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_the_csv_files_hold_every_figure_and_the_decision(tmp_path: Path) -> None:
    rounds = [record(1), record(2, status="aborted"), record(3, scored=scores(0.9101, 0.8))]
    clients = [ClientRecord(1, "a", 10, 0.5, 100), ClientRecord(3, "a", 10, 0.25, 300)]
    report = build_report(rounds, clients, CENTRAL, stages=STAGES, tolerance=0.01)
    performance, verdict = write_report_csvs(report, tmp_path / "metrics")
    assert (performance.name, verdict.name) == (PERFORMANCE_FILE, VERDICT_FILE)

    header, rows = read_csv(performance)
    assert tuple(header) == performance_header(STAGES)
    assert "advertise_keys_s" in header and "train_upload_s" in header
    assert [(r["scope"], r["round"], r["kind"], r["peer"], r["status"]) for r in rows] == [
        ("round", "1", "training", "", "ok"), ("round", "2", "training", "", "aborted"),
        ("round", "3", "training", "", "ok"), ("overall", "", "training", "", "ok"),
        ("peer", "", "", "a", ""),
    ]  # fmt: skip
    assert float(rows[0]["up_bytes_per_peer"]) == 1000.0
    assert rows[1]["train_s"] == ""  # nobody reported in the aborted round
    assert float(rows[3]["duration_s"]) == 1.0 and rows[3]["rounds"] == "2"
    assert float(rows[4]["train_s"]) == 0.375 and rows[4]["rounds"] == "2"
    assert rows[4]["duration_s"] == ""

    header, rows = read_csv(verdict)
    assert tuple(header) == VERDICT_HEADER
    assert [(r["metric"], r["decision"]) for r in rows] == [
        ("roc_auc", "not equivalent"), ("pr_auc", "shown only"), ("f1", "equivalent"),
        ("overall", "not equivalent"),
    ]  # fmt: skip
    assert float(rows[0]["difference"]) == pytest.approx(0.0101)
    assert float(rows[0]["federated"]) == 0.9101 and float(rows[0]["centralized"]) == 0.9
    assert {r["tolerance"] for r in rows} == {"0.01"}


def test_per_peer_audit_counts_the_training_sums_that_hold_each_peer() -> None:
    rounds = [
        record(0, kind="statistics"),
        record(1),
        record(2),
        record(3, status="aborted"),
        record(4, scored=scores(0.895, 0.805)),
    ]
    clients = [ClientRecord(r, p, 100, 0.5, 1000) for r, p in [(1, "a"), (1, "b"), (2, "a")]]
    held = {0: frozenset("abd"), 1: frozenset("ab"), 2: frozenset("a"), 4: frozenset("ad")}
    report = build_report(rounds, clients, CENTRAL, stages=STAGES, survivors=held)
    # d's stats never reached the hub, yet sums hold its update: it is listed, with
    # no medians. Statistics and aborted rounds shape no model and are not counted.
    assert [(p.peer, p.rounds, p.trained_in) for p in report.per_peer] == [
        ("a", 2, 3), ("b", 1, 1), ("d", 0, 1),
    ]  # fmt: skip
    assert report.per_peer[2].train_s is None and report.per_peer[2].upload_bytes is None
    # A training round whose survivors are not known (committed before survivors.csv).
    del held[2]
    report = build_report(rounds, clients, CENTRAL, stages=STAGES, survivors=held)
    assert [p.trained_in for p in report.per_peer] == [None, None, None]
