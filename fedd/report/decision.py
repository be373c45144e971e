"""The equivalence decision of `fedd report`: is the federated model as good as the
centralized one?

A metric is *equivalent* when |federated - centralized| <= tolerance, the
bound included. Scores are doubles, so a difference meant to be exactly the
tolerance can come out a few ulps above it (0.91 - 0.90 is
0.010000000000000009): both sides are rounded to `DECISION_DIGITS` (12)
decimal places before the comparison, far below any meaningful difference in
a score and far above double rounding noise. ROC-AUC and F1 decide
(`DECIDED_METRICS`); PR-AUC is shown only. The overall verdict is equivalent
when every decided metric is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DECIDED_METRICS",
    "DECISION_DIGITS",
    "DEFAULT_TOLERANCE",
    "METRIC_LABELS",
    "SHOWN_METRICS",
    "Comparison",
    "Verdict",
    "decide",
    "within_tolerance",
]

DEFAULT_TOLERANCE = 0.01
DECISION_DIGITS = 12
DECIDED_METRICS = ("roc_auc", "f1")
SHOWN_METRICS = ("roc_auc", "pr_auc", "f1")
METRIC_LABELS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "f1": "F1"}
EQUIVALENT = "equivalent"
NOT_EQUIVALENT = "not equivalent"
SHOWN_ONLY = "shown only"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric, centralized against federated. `equivalent` is None when the
    metric is shown but not part of the decision."""

    metric: str
    centralized: float
    federated: float
    equivalent: bool | None

    @property
    def difference(self) -> float:
        """federated - centralized."""
        return self.federated - self.centralized

    @property
    def decision(self) -> str:
        if self.equivalent is None:
            return SHOWN_ONLY
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT


@dataclass(frozen=True, slots=True)
class Verdict:
    """The equivalence decision for the federated model of `round`."""

    tolerance: float
    round: int
    comparisons: tuple[Comparison, ...]

    @property
    def equivalent(self) -> bool:
        """True when every decided metric is within the tolerance."""
        return all(c.equivalent for c in self.comparisons if c.equivalent is not None)

    @property
    def decision(self) -> str:
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT

    def lines(self) -> list[str]:
        """The comparison table and the verdict, for people."""
        out = [
            f"federated model of round {self.round} vs centralized baseline "
            f"(equivalent: |difference| <= {self.tolerance:g})",
            f"{'metric':<9} {'centralized':>11} {'federated':>10} {'difference':>11}  decision",
        ]
        for c in self.comparisons:
            label = METRIC_LABELS.get(c.metric, c.metric)
            out.append(
                f"{label:<9} {c.centralized:>11.4f} {c.federated:>10.4f} "
                f"{c.difference:>+11.4f}  {c.decision}"
            )
        decided = [c for c in self.comparisons if c.equivalent is not None]
        names = " and ".join(METRIC_LABELS.get(c.metric, c.metric) for c in decided)
        if self.equivalent:
            out.append(f"verdict: EQUIVALENT ({names} within ±{self.tolerance:g})")
        else:
            off = ", ".join(
                f"{METRIC_LABELS.get(c.metric, c.metric)} off by {abs(c.difference):.4f}"
                for c in decided
                if not c.equivalent
            )
            out.append(f"verdict: NOT EQUIVALENT ({off}; tolerance ±{self.tolerance:g})")
        return out


def within_tolerance(difference: float, tolerance: float) -> bool:
    """|difference| <= tolerance, both rounded to `DECISION_DIGITS` decimals first.

    Raises `ValueError` if either is not finite or the tolerance is negative.
    """
    if not (math.isfinite(difference) and math.isfinite(tolerance)) or tolerance < 0:
        raise ValueError("need a finite difference and a finite tolerance >= 0")
    return round(abs(difference), DECISION_DIGITS) <= round(tolerance, DECISION_DIGITS)


def decide(
    centralized: Mapping[str, float],
    federated: Mapping[str, float],
    tolerance: float,
    *,
    at_round: int,
) -> Verdict:
    """Compare the `SHOWN_METRICS` of the federated model of `at_round` with the
    centralized ones; decide on `DECIDED_METRICS` with `tolerance`.

    Raises `ValueError` if a metric is missing from either side or not finite,
    or the tolerance is negative or not finite.
    """
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError("the tolerance must be a finite number >= 0")
    comparisons = []
    for metric in SHOWN_METRICS:
        if metric not in centralized or metric not in federated:
            raise ValueError(f"both sides need the metric {metric!r}")
        c, f = float(centralized[metric]), float(federated[metric])
        if not (math.isfinite(c) and math.isfinite(f)):
            raise ValueError(f"{metric}: scores must be finite")
        decided = within_tolerance(f - c, tolerance) if metric in DECIDED_METRICS else None
        comparisons.append(Comparison(metric, c, f, decided))
    return Verdict(tolerance, at_round, tuple(comparisons))
