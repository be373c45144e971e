"""What the verdict rests on: the test rows, their positives, and intervals.

With both models' scores of each held-out row (`fedd demo` writes them, see
`fedd.report.rowscores`) the two sides were scored on the same rows, and the
intervals are those of the differences, by the paired bootstrap. Without
them (a real federation: its scores are secure sums of binned counts, and
the baseline was scored on a file of its own) the report says so and gives
each side's own interval from its counts (`learner.uncertainty`).

What one transaction moves F1 by is computed at each side's confusion
matrix: from the rows, from the centralized metrics' counts, or for the
federation from its precision and recall and the number of positives (when
it catches no fraud, its false positives are unknown, and the figure is the
largest it can be: as if it flagged nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from fedd.learner.metrics import Confusion, confusion
from fedd.learner.uncertainty import (
    RESAMPLES,
    Interval,
    auc_interval,
    f1_interval,
    f1_step,
    paired_intervals,
)
from fedd.report.decision import Trust
from fedd.report.rowscores import RowScores

__all__ = ["assess"]


def assess(
    centralized: Mapping[str, float],
    federated: Mapping[str, float],
    scored_on: tuple[int, int] | None,
    row_scores: RowScores | None,
    tolerance: float,
) -> Trust:
    """The `Trust` of comparing `federated` (the final model's scores, on `scored_on`:
    its rows and their positives) with `centralized` (its metrics file's values),
    paired when `row_scores` is given."""
    threshold = federated.get("threshold", centralized.get("threshold", 0.5))
    if row_scores is not None:
        labels = row_scores.labels
        sides = (row_scores.centralized, row_scores.federated)
        counts: list[Confusion | None] = [confusion(labels, s, threshold) for s in sides]
        positives = (row_scores.positives,) * 2
        rows = (
            f"both models on the same {len(labels):,} held-out rows ({positives[0]} positive; "
            f"their scores of each row from {row_scores.path})"
        )
        paired = paired_intervals(labels, *sides, threshold)
        how = f"95%, of the differences: paired bootstrap of the rows ({RESAMPLES} resamples)"
        trust = Trust(_with_steps(rows, counts), how, paired=paired)
    else:
        c_counts = _centralized_counts(centralized)
        f_counts = _federated_counts(federated, scored_on)
        counts = [c_counts, f_counts]
        c_rows = _rows(centralized.get("test_rows"), centralized.get("test_positives"))
        f_rows = _rows(*scored_on) if scored_on is not None else "rows not recorded"
        positives = (
            int(centralized.get("test_positives", 0)),
            scored_on[1] if scored_on is not None else 0,
        )
        rows = (
            f"centralized on its {c_rows}, the federation on {f_rows}: not paired row by row "
            "(no per-row scores: only a simulation such as `fedd demo` has them)"
        )
        own = {
            "roc_auc": (
                _auc(centralized, centralized.get("test_rows"), centralized.get("test_positives")),
                _auc(federated, *(scored_on or (None, None))),
            ),
            "f1": (_f1(c_counts), _f1(f_counts)),
        }
        how = (
            "95%, each side's own: ROC-AUC by Hanley and McNeil's standard error, "
            f"F1 by the bootstrap of its confusion counts ({RESAMPLES} resamples)"
        )
        trust = Trust(_with_steps(rows, counts), how, own=own)
    steps = [f1_step(c) for c in counts if c is not None]
    if steps and max(steps) > tolerance:
        fewest = min(p for p in positives if p) if any(positives) else 0
        note = (
            f"with {fewest} positive{'' if fewest == 1 else 's'}, one transaction moves F1 by "
            "more than the tolerance "
            f"±{tolerance:g}: the F1 verdict turns on a few transactions; its interval shows "
            "how far the luck of the test rows alone could move it"
        )
        return Trust(trust.rows, trust.how, trust.paired, trust.own, (note,))
    return trust


def _with_steps(rows: str, counts: list[Confusion | None]) -> str:
    """`rows`, and what one transaction moves each side's F1 by."""
    steps = [f"{f1_step(c):.3f}" if c is not None else "?" for c in counts]
    same = steps[0] == steps[1]
    moves = steps[0] if same else f"{steps[0]} (centralized), {steps[1]} (federated)"
    return f"{rows}; one transaction moves F1 by about {moves}"


def _rows(rows: float | None, positives: float | None) -> str:
    if rows is None or positives is None:
        return "rows (how many, not recorded)"
    return f"{int(rows):,} rows ({int(positives)} positive)"


def _centralized_counts(centralized: Mapping[str, float]) -> Confusion | None:
    if not all(name in centralized for name in ("tp", "fp", "tn", "fn")):
        return None
    return Confusion(*(int(centralized[name]) for name in ("tp", "fp", "tn", "fn")))


def _federated_counts(
    federated: Mapping[str, float], scored_on: tuple[int, int] | None
) -> Confusion | None:
    """The federation's confusion counts, from its recall and precision (see the module
    docstring for what is unknown when it catches nothing)."""
    if scored_on is None or not scored_on[0]:
        return None
    rows, positives = scored_on
    tp = round(federated["recall"] * positives)
    flagged = round(tp / federated["precision"]) if tp and federated["precision"] else tp
    fp = flagged - tp
    return Confusion(tp, fp, rows - positives - fp, positives - tp)


def _auc(
    scores: Mapping[str, float], rows: float | None, positives: float | None
) -> Interval | None:
    if rows is None or positives is None or not 0 < positives < rows:
        return None
    return auc_interval(scores["roc_auc"], int(positives), int(rows - positives))


def _f1(counts: Confusion | None) -> Interval | None:
    return f1_interval(counts) if counts is not None else None
