"""How far a score measured on a finite test set could move: intervals, and the
weight of one transaction.

A test set with few positives decides F1 on a handful of transactions, and
two models scored on it differ by chance as well as by skill. Three tools say
how much:

- `f1_step`: what one transaction moves F1 by, at a confusion matrix (one
  more fraud caught, or, when every fraud is caught, one fewer).
- `paired_intervals`: for two models scored on the same rows, a percentile
  interval of each difference (b - a) of ROC-AUC and F1, by the paired
  bootstrap: resample the rows with replacement, score both models on the
  resample, repeat. Pairing keeps what the rows do to both models alike out
  of the difference, so its interval is narrower than either side's.
- For one model whose rows are not at hand, only its counts: `auc_interval`
  (the normal interval with Hanley and McNeil's 1982 standard error, from
  the AUC and the numbers of positives and negatives) and `f1_interval` (the
  bootstrap of the confusion counts: resampling the rows is drawing the four
  cells from a multinomial, which is all F1 depends on).

Resamples are drawn from `random.Random(seed)`: the same inputs give the same
intervals. A resample holding no positive or no negative row has no ROC-AUC
and is skipped for both metrics (the interval is then conditional on both
classes being drawn); if most resamples are skipped, the interval is None.

Metric conventions are those of `learner.metrics` (ties count one half; F1
is 0.0 when its denominator is 0). Pure standard library.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add, mod, mul

from fedd.learner.metrics import Confusion

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "Interval",
    "auc_interval",
    "f1_interval",
    "f1_step",
    "paired_intervals",
]

LEVEL = 0.95
RESAMPLES = 1000
_Z = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided `LEVEL` interval [low, high]."""

    low: float
    high: float

    def __str__(self) -> str:
        return f"[{self.low:+.4f}, {self.high:+.4f}]"

    def plain(self) -> str:
        """For a score (no sign): `[0.8912, 0.9311]`."""
        return f"[{self.low:.4f}, {self.high:.4f}]"


def f1_step(counts: Confusion) -> float:
    """How much one transaction moves F1 at `counts`: the change from catching one
    more fraud, or, when none is missed, from missing one. 0.0 without positives."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    now = Confusion(tp, fp, counts.tn, fn).f1
    if fn:
        return abs(Confusion(tp + 1, fp, counts.tn, fn - 1).f1 - now)
    if tp:
        return abs(now - Confusion(tp - 1, fp, counts.tn, fn + 1).f1)
    return 0.0


def auc_interval(auc: float, positives: int, negatives: int) -> Interval:
    """The normal `LEVEL` interval of a ROC-AUC from Hanley & McNeil's standard error,
    clipped to [0, 1]. Raises `ValueError` without both classes or for an AUC outside [0, 1]."""
    if positives < 1 or negatives < 1:
        raise ValueError("an AUC interval needs positives and negatives")
    if not 0.0 <= auc <= 1.0:
        raise ValueError("the AUC must be in [0, 1]")
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    half = _Z * math.sqrt(max(variance, 0.0))
    return Interval(max(0.0, auc - half), min(1.0, auc + half))


def f1_interval(counts: Confusion, *, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The bootstrap `LEVEL` interval of the F1 at `counts` (see the module docstring)."""
    n = counts.tp + counts.fp + counts.tn + counts.fn
    if n < 1:
        raise ValueError("an F1 interval needs rows")
    rng = random.Random(seed)
    cells = (counts.tp, counts.fp, counts.fn)
    values = []
    for _ in range(resamples):
        left, mass, drawn = n, n, []
        for cell in cells:
            k = _binomial(left, cell / mass if mass else 0.0, rng)
            drawn.append(k)
            left, mass = left - k, mass - cell
        tp, fp, fn = drawn
        values.append(Confusion(tp, fp, left, fn).f1)
    return _percentiles(values)


def paired_intervals(
    labels: Sequence[int],
    first: Sequence[float],
    second: Sequence[float],
    threshold: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Interval | None]:
    """The paired bootstrap `LEVEL` intervals of `second - first` for "roc_auc" and
    "f1" (at `threshold`: a row is flagged when its score is >= it); None where
    most resamples lacked a class. Raises `ValueError` for lengths that differ,
    no rows, or labels other than 0 and 1."""
    n = len(labels)
    if not n or len(first) != n or len(second) != n:
        raise ValueError("labels and both score lists need the same, non-zero length")
    if any(y not in (0, 1) for y in labels):
        raise ValueError("labels must be 0 or 1")
    rng = random.Random(seed)
    sides = [_Side(labels, scores, threshold) for scores in (first, second)]
    auc_diffs, f1_diffs = [], []
    for _ in range(resamples):
        # Row i is drawn counts[i] times: n draws with replacement.
        counts = Counter(map(mod, array("Q", rng.randbytes(8 * n)), repeat(n)))
        a, b = (side.scores(counts) for side in sides)
        if a is None or b is None:
            continue
        auc_diffs.append(b[0] - a[0])
        f1_diffs.append(b[1] - a[1])
    if len(auc_diffs) < resamples / 2:
        return {"roc_auc": None, "f1": None}
    return {"roc_auc": _percentiles(auc_diffs), "f1": _percentiles(f1_diffs)}


class _Side:
    """One model's scores, laid out once so that each resample costs a few passes in C.

    ROC-AUC with weights w_i (how often row i was drawn): the sum over positive
    rows of w_i times the weight of the negative rows scored below it, plus half
    of those tied with it, over (positive weight x negative weight). Rows are
    sorted by score; C[k] is the negative weight of the first k sorted rows, so
    for a positive row in the tie group of sorted positions [s, e) the count is
    (C[s] + C[e]) / 2.
    """

    def __init__(self, labels: Sequence[int], scores: Sequence[float], threshold: float) -> None:
        order = sorted(range(len(labels)), key=scores.__getitem__)
        self.order = order
        self.negative = [1 - labels[i] for i in order]
        starts, ends = [0] * len(order), [0] * len(order)
        start = 0
        for k in range(1, len(order) + 1):
            if k == len(order) or scores[order[k]] != scores[order[start]]:
                for j in range(start, k):
                    starts[j], ends[j] = start, k
                start = k
        positive = [k for k in range(len(order)) if labels[order[k]]]
        self.positive_rows = [order[k] for k in positive]
        self.starts = [starts[k] for k in positive]
        self.ends = [ends[k] for k in positive]
        rows = range(len(labels))
        self.tp = [i for i in rows if labels[i] and scores[i] >= threshold]
        self.fp = [i for i in rows if not labels[i] and scores[i] >= threshold]
        self.fn = [i for i in rows if labels[i] and not scores[i] >= threshold]

    def scores(self, counts: Counter[int]) -> tuple[float, float] | None:
        """(ROC-AUC, F1) on the resample drawn `counts` times each; None if a class is missing."""
        weight = counts.get
        sorted_weights = map(weight, self.order, repeat(0))
        below = [0, *accumulate(map(mul, sorted_weights, self.negative))]
        negatives = below[-1]
        positives_w = list(map(weight, self.positive_rows, repeat(0)))
        total_positive = sum(positives_w)
        if not negatives or not total_positive:
            return None
        ranks = map(add, map(below.__getitem__, self.starts), map(below.__getitem__, self.ends))
        auc = 0.5 * sum(map(mul, positives_w, ranks)) / (total_positive * negatives)
        tp, fp, fn = (sum(map(weight, cell, repeat(0))) for cell in (self.tp, self.fp, self.fn))
        return auc, Confusion(tp, fp, 0, fn).f1


def _binomial(n: int, p: float, rng: random.Random) -> int:
    """A Binomial(n, p) draw: waiting times between successes (O(n p)) when the
    mean is small, the continuity-corrected normal approximation otherwise."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - _binomial(n, 1.0 - p, rng)
    mean = n * p
    if mean > 100.0:
        return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))))
    log_q = math.log1p(-p)
    successes, position = 0, 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return successes
        successes += 1


def _percentiles(values: list[float]) -> Interval:
    """The central `LEVEL` interval of `values` (nearest-rank percentiles)."""
    values.sort()
    tail = (1.0 - LEVEL) / 2.0
    low = values[max(0, math.ceil(tail * len(values)) - 1)]
    high = values[min(len(values) - 1, math.ceil((1.0 - tail) * len(values)) - 1)]
    return Interval(low, high)
