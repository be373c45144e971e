"""Binary-classification metrics, from scratch.

Conventions (those of scikit-learn, so that numbers compare):
- `roc_auc`: the exact area under the ROC curve; tied scores count one half
  (the Mann-Whitney statistic with average ranks, equal to the trapezoid rule
  over the distinct thresholds).
- `pr_auc`: average precision, sum over distinct thresholds (high to low) of
  (R_n - R_{n-1}) * P_n; no interpolation.
- `precision`, `recall`, `f1` at a threshold: a row is predicted positive when
  its score is >= the threshold; a ratio whose denominator is zero is 0.0.
- `log_loss`: the mean negative log-likelihood with probabilities clipped to
  [eps, 1 - eps] so that a confident mistake costs a large finite amount.

Labels are 0/1 integers, scores any floats (probabilities for `log_loss`).
Bad arguments (lengths differ, empty input, only one class where a metric
needs both) raise `ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

__all__ = [
    "Confusion",
    "Metrics",
    "best_threshold",
    "confusion",
    "evaluate",
    "log_loss",
    "pr_auc",
    "roc_auc",
]

LOG_LOSS_EPS = 1e-15


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts at one threshold, with the ratios derived from them."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 0.0 when nothing is predicted positive."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 0.0 when there are no positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0.0 when both are 0."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Metrics:
    """Everything `evaluate` measures on one labelled set."""

    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    logloss: float
    threshold: float
    confusion: Confusion
    rows: int
    positives: int


def _check(labels: Sequence[int], scores: Sequence[float]) -> None:
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    if not labels:
        raise ValueError("no rows to evaluate")
    if not set(labels) <= {0, 1}:
        raise ValueError("labels must be 0 or 1")


def _positives(labels: Sequence[int]) -> int:
    positives = sum(labels)
    if not 0 < positives < len(labels):
        raise ValueError("the metric needs both classes among the labels")
    return positives


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve, exact, ties counted one half.

    Raises `ValueError` if the lengths differ, the input is empty or only
    one class is present.
    """
    _check(labels, scores)
    n_pos = _positives(labels)
    n_neg = len(labels) - n_pos
    order = sorted(range(len(scores)), key=scores.__getitem__)
    # Sum of the (1-based, tie-averaged) ranks of the positives.
    rank_sum = 0.0
    i, n = 0, len(order)
    while i < n:
        j = i + 1
        value = scores[order[i]]
        while j < n and scores[order[j]] == value:
            j += 1
        group_positives = sum(labels[k] for k in order[i:j])
        if group_positives:
            rank_sum += group_positives * (i + 1 + j) / 2  # mean of ranks i+1 .. j
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def pr_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Average precision (scikit-learn's definition, no interpolation).

    Raises `ValueError` if the lengths differ, the input is empty or there is
    no positive label.
    """
    _check(labels, scores)
    n_pos = sum(labels)
    if n_pos == 0:
        raise ValueError("average precision needs at least one positive label")
    pairs = sorted(zip(scores, labels, strict=True), key=itemgetter(0), reverse=True)
    tp = fp = 0
    ap = 0.0
    previous_recall = 0.0
    i, n = 0, len(pairs)
    while i < n:
        value = pairs[i][0]
        while i < n and pairs[i][0] == value:
            if pairs[i][1]:
                tp += 1
            else:
                fp += 1
            i += 1
        recall = tp / n_pos
        if recall != previous_recall:
            ap += (recall - previous_recall) * tp / (tp + fp)
            previous_recall = recall
    return ap


def confusion(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> Confusion:
    """Counts of predictions `score >= threshold` against the labels."""
    _check(labels, scores)
    tp = fp = 0
    for cls, score in zip(labels, scores, strict=True):
        if score >= threshold:
            if cls:
                tp += 1
            else:
                fp += 1
    n_pos = sum(labels)
    return Confusion(tp=tp, fp=fp, fn=n_pos - tp, tn=len(labels) - n_pos - fp)


def best_threshold(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """(the best F1 at any threshold, that threshold): predicted positive at or above it.

    Thresholds are the distinct scores; ties go to the higher threshold.
    Raises `ValueError` if the lengths differ or the input is empty.
    """
    _check(labels, scores)
    n_pos = sum(labels)
    pairs = sorted(zip(scores, labels, strict=True), key=itemgetter(0), reverse=True)
    best = (0.0, 0.5)
    tp = fp = 0
    i, n = 0, len(pairs)
    while i < n:
        value = pairs[i][0]
        while i < n and pairs[i][0] == value:
            tp += pairs[i][1]
            fp += 1 - pairs[i][1]
            i += 1
        f1 = 2 * tp / (n_pos + tp + fp)
        if f1 > best[0]:
            best = (f1, value)
    return best


def log_loss(labels: Sequence[int], probs: Sequence[float], eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped to [eps, 1-eps]."""
    _check(labels, probs)
    if not 0.0 < eps < 0.5:
        raise ValueError("eps must be in (0, 0.5)")
    low, high = eps, 1.0 - eps
    total = math.fsum(
        -math.log(min(max(p, low), high)) if cls else -math.log1p(-min(max(p, low), high))
        for cls, p in zip(labels, probs, strict=True)
    )
    return total / len(labels)


def evaluate(labels: Sequence[int], probs: Sequence[float], threshold: float = 0.5) -> Metrics:
    """All metrics of one labelled set: its labels and the model's probabilities.

    Raises `ValueError` if the lengths differ, the input is empty or only one
    class is present.
    """
    _check(labels, probs)
    counts = confusion(labels, probs, threshold)
    return Metrics(
        roc_auc=roc_auc(labels, probs),
        pr_auc=pr_auc(labels, probs),
        precision=counts.precision,
        recall=counts.recall,
        f1=counts.f1,
        logloss=log_loss(labels, probs),
        threshold=threshold,
        confusion=counts,
        rows=len(labels),
        positives=counts.tp + counts.fn,
    )
