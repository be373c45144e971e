"""Metrics from binned score counts, with the bound on what binning can cost.

A federation cannot sort its peers' scores together without showing them to
someone, but it can add up counts. Scores are logits z = b + w.x. Bin edges
e_1 < ... < e_{B-1} cut the line into B bins: bin 0 is (-inf, e_1), bin k is
[e_k, e_{k+1}) and bin B-1 is [e_{B-1}, +inf). Each peer counts its held-out
rows per bin and class (`score_rows`), the federation adds the counts, and
`binned_metrics` computes from the totals:

- ROC-AUC. A positive and a negative in different bins are ordered by their
  bins; a pair in one bin could go either way. Counting those pairs one half
  gives the estimate; the exact value lies within half their share of all
  positive-negative pairs (`roc_bound`).
- PR-AUC (average precision, as `learner.metrics.pr_auc`). Ranking every
  bin's positives before its negatives gives the largest AP any ordering
  within the bins can give, ranking them after gives the smallest (moving a
  positive above a negative never lowers AP). The exact AP lies between:
  the estimate is the midpoint, `pr_bound` half the gap.
- Precision, recall and F1 at the decision threshold (probability 0.5 unless
  chosen otherwise) are exact: peers count true and false positives there.
  At a threshold on a bin edge they are exact too; the edge that maximizes
  F1 is the federation's decision threshold (`best_threshold`).
- Log loss: the sum of each row's loss, added up.

Bounds only shrink when bins holding both classes get narrower. `initial_edges`
spreads edges geometrically around the model's bias (standardized features
have mean 0, so the logits centre there) over nine decades of its weight
norm; `refine` splits every bin that holds both classes where the counts say
the pairs are, and merges neighbouring bins that hold one class only, within
MAX_BINS.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import ge, mul

from fedd.learner.dataset import Dataset
from fedd.learner.metrics import LOG_LOSS_EPS
from fedd.learner.model import sigmoid

__all__ = [
    "MAX_BINS",
    "BinnedMetrics",
    "ScoreCounts",
    "binned_metrics",
    "check_edges",
    "initial_edges",
    "refine",
    "score_rows",
]

MAX_BINS = 2048
_CUTS_PER_MIXED_BIN = 64
_PER_DECADE = 16
_DECADES = (-6, 3)  # the grid spans 1e-6 to 1e3 times the weight norm


@dataclass(frozen=True, slots=True)
class ScoreCounts:
    """What scoring held-out rows into bins gives; sums of these are sums of rows.

    `positives[k]` and `negatives[k]` count the rows of each class in bin k;
    `tp` and `fp` count positives and negatives scored at or above the
    decision threshold; `loss` is the
    sum of the rows' log losses; `peers` counts the peers that scored.
    """

    positives: tuple[int, ...]
    negatives: tuple[int, ...]
    tp: int
    fp: int
    loss: float
    peers: int

    def __post_init__(self) -> None:
        if len(self.positives) != len(self.negatives) or not self.positives:
            raise ValueError("one positive and one negative count per bin, at least one bin")
        if min(self.positives) < 0 or min(self.negatives) < 0 or min(self.tp, self.fp) < 0:
            raise ValueError("counts are never negative")
        if self.tp > sum(self.positives) or self.fp > sum(self.negatives):
            raise ValueError("more rows above 0.5 than rows")
        if not (math.isfinite(self.loss) and self.loss >= 0.0) or self.peers < 0:
            raise ValueError("the loss sum is finite and >= 0, the peer count >= 0")

    @property
    def rows(self) -> int:
        return sum(self.positives) + sum(self.negatives)


@dataclass(frozen=True, slots=True)
class BinnedMetrics:
    """The federation's metrics of one model, with the binning error bounds."""

    roc_auc: float
    roc_bound: float
    pr_auc: float
    pr_bound: float
    precision: float
    recall: float
    f1: float
    logloss: float
    best_threshold: float
    best_f1: float
    rows: int
    positives: int
    peers: int


def check_edges(edges: Sequence[float]) -> None:
    """Raise ValueError unless `edges` are finite, strictly increasing, < MAX_BINS of them."""
    if len(edges) >= MAX_BINS:
        raise ValueError(f"at most {MAX_BINS - 1} bin edges")
    if not all(map(math.isfinite, edges)):
        raise ValueError("bin edges must be finite")
    if any(map(ge, edges, edges[1:])):
        raise ValueError("bin edges must be strictly increasing")


def score_rows(
    params: Sequence[float], data: Dataset, edges: Sequence[float], threshold: float = 0.5
) -> ScoreCounts:
    """Count `data`'s rows per bin of their logit under `params`, per class, and the
    true and false positives at probability `threshold`."""
    bins = len(edges) + 1
    positives, negatives = [0] * bins, [0] * bins
    bias, w = params[0], params[1:]
    tp = fp = 0
    losses = []
    low, high = LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS
    for row, label in zip(data.rows(), data.y, strict=True):
        z = bias + sum(map(mul, w, row))
        p = sigmoid(z)
        k = bisect.bisect_right(edges, z)
        clipped = min(max(p, low), high)
        if label:
            positives[k] += 1
            tp += p >= threshold
            losses.append(-math.log(clipped))
        else:
            negatives[k] += 1
            fp += p >= threshold
            losses.append(-math.log1p(-clipped))
    return ScoreCounts(tuple(positives), tuple(negatives), tp, fp, math.fsum(losses), 1)


def binned_metrics(counts: ScoreCounts, edges: Sequence[float]) -> BinnedMetrics:
    """ROC-AUC, PR-AUC (each with its bound), F1 and the rest from summed counts.

    Raises ValueError if the counts do not hold both classes.
    """
    if len(counts.positives) != len(edges) + 1:
        raise ValueError("one count per bin: len(edges) + 1")
    pos, neg = counts.positives, counts.negatives
    n_pos, n_neg = sum(pos), sum(neg)
    if not n_pos or not n_neg:
        raise ValueError("the held-out rows hold one class only")
    wins = ties = below = 0
    for p, n in zip(pos, neg, strict=True):
        wins += p * below
        ties += p * n
        below += n
    pairs = n_pos * n_neg
    hi, lo = _average_precision_range(pos, neg)
    fn = n_pos - counts.tp
    best_f1, best_threshold = _best_threshold(pos, neg, edges)
    precision = counts.tp / (counts.tp + counts.fp) if counts.tp + counts.fp else 0.0
    f1_den = 2 * counts.tp + counts.fp + fn
    return BinnedMetrics(
        roc_auc=(wins + ties / 2) / pairs,
        roc_bound=ties / 2 / pairs,
        pr_auc=(hi + lo) / 2 / n_pos,
        pr_bound=(hi - lo) / 2 / n_pos,
        precision=precision,
        recall=counts.tp / n_pos,
        f1=2 * counts.tp / f1_den if f1_den else 0.0,
        logloss=counts.loss / (n_pos + n_neg),
        best_threshold=best_threshold,
        best_f1=best_f1,
        rows=n_pos + n_neg,
        positives=n_pos,
        peers=counts.peers,
    )


def _average_precision_range(pos: Sequence[int], neg: Sequence[int]) -> tuple[float, float]:
    """P times the largest and the smallest AP the bins allow (high scores first)."""
    hi = lo = 0.0
    tp = fp = 0
    for p, n in zip(reversed(pos), reversed(neg), strict=True):
        for i in range(1, p + 1):
            hi += (tp + i) / (tp + i + fp)
            lo += (tp + i) / (tp + i + fp + n)
        tp += p
        fp += n
    return hi, lo


def _best_threshold(
    pos: Sequence[int], neg: Sequence[int], edges: Sequence[float]
) -> tuple[float, float]:
    """(best F1, its probability threshold) over the bin edges: predicted positive
    at or above the edge."""
    n_pos = sum(pos)
    best = (0.0, 0.5)
    tp = fp = 0
    for k in range(len(edges), 0, -1):  # edge e_k opens bin k
        tp += pos[k]
        fp += neg[k]
        denominator = n_pos + tp + fp
        f1 = 2 * tp / denominator if denominator else 0.0
        if f1 > best[0]:
            best = (f1, sigmoid(edges[k - 1]))
    return best


def initial_edges(params: Sequence[float]) -> list[float]:
    """Edges for a model nothing is known about yet: geometric around its bias.

    Logit 0 (probability 0.5) is always an edge.
    """
    bias = params[0]
    norm = math.hypot(*params[1:])
    scale = norm if norm > 0.0 else 1.0
    steps = range(_DECADES[0] * _PER_DECADE, _DECADES[1] * _PER_DECADE + 1)
    offsets = [scale * 10.0 ** (k / _PER_DECADE) for k in steps]
    edges = {0.0, bias, *(bias - o for o in offsets), *(bias + o for o in offsets)}
    return sorted(e for e in edges if math.isfinite(e))


def refine(edges: Sequence[float], counts: ScoreCounts) -> list[float]:
    """Edges that split every bin holding both classes and merge one-class runs.

    Neighbouring bins merge while the run they make holds one class only (or
    nothing). Each mixed bin gets new edges in proportion to its share of the
    bounds, the largest shares first, at most _CUTS_PER_MIXED_BIN each on
    average and within MAX_BINS; an outer bin is split
    geometrically outwards from its finite edge.
    """
    pos, neg = counts.positives, counts.negatives
    n_pos, n_neg = max(sum(pos), 1), max(sum(neg), 1)
    kept = []
    run_pos, run_neg = pos[0] > 0, neg[0] > 0
    for k, edge in enumerate(edges):
        has_pos, has_neg = pos[k + 1] > 0, neg[k + 1] > 0
        if (run_pos or has_pos) and (run_neg or has_neg):  # merging would mix the classes
            kept.append(edge)
            run_pos, run_neg = has_pos, has_neg
        else:
            run_pos, run_neg = run_pos or has_pos, run_neg or has_neg
    weights = _mixed_weights(pos, neg, n_pos, n_neg)
    # A mixed bin needs a few dozen cuts, not a thousand: vectors stay short.
    budget = min(MAX_BINS - 1 - len(kept), _CUTS_PER_MIXED_BIN * len(weights))
    total = sum(weights.values())
    new = set(kept)
    left = budget
    for k, weight in sorted(weights.items(), key=lambda item: -item[1]):
        if left <= 0 or total <= 0.0:
            break
        cuts = min(left, max(1, round(budget * weight / total)))
        lower = edges[k - 1] if k > 0 else None
        upper = edges[k] if k < len(edges) else None
        added = _split(lower, upper, cuts, edges)
        new.update(added)
        left -= len(added)
    return sorted(new)


def _mixed_weights(
    pos: Sequence[int], neg: Sequence[int], n_pos: int, n_neg: int
) -> dict[int, float]:
    """Each mixed bin's share of the ROC and AP bounds."""
    weights = {}
    tp = fp = 0
    for k in range(len(pos) - 1, -1, -1):
        p, n = pos[k], neg[k]
        if p and n:
            gap = sum(
                (tp + i) / (tp + i + fp) - (tp + i) / (tp + i + fp + n) for i in range(1, p + 1)
            )
            weights[k] = p * n / (2 * n_pos * n_neg) + gap / (2 * n_pos)
        tp += p
        fp += n
    return weights


def _split(
    lower: float | None, upper: float | None, cuts: int, edges: Sequence[float]
) -> list[float]:
    """`cuts` new edges inside one bin: evenly in a finite bin, geometrically
    outwards from its edge in an outer one."""
    if lower is not None and upper is not None:
        width = (upper - lower) / (cuts + 1)
        return [lower + width * i for i in range(1, cuts + 1)]
    unit = (edges[-1] - edges[0]) / len(edges) if len(edges) > 1 else 1.0
    unit = unit if unit > 0.0 else 1.0
    if upper is None and lower is not None:
        return [lower + unit * 2.0 ** (i / 2) for i in range(cuts)]
    if lower is None and upper is not None:
        return [upper - unit * 2.0 ** (i / 2) for i in range(cuts)]
    return [0.0]  # one bin for the whole line: cut it at logit 0
