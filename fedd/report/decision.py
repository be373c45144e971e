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

F1 depends on the decision threshold: it is compared only when both sides
counted it at the same one (the baseline's `threshold`, the federation's
`--decision-threshold`); otherwise the verdict is *not decided*, and says
which to change.
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
NOT_DECIDED = "not decided"
SHOWN_ONLY = "shown only"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric, centralized against federated. `equivalent` is None when the
    metric is shown but not part of the decision."""

    metric: str
    centralized: float
    federated: float
    equivalent: bool | None
    undecided: str = ""  # why a decided metric cannot be compared

    @property
    def difference(self) -> float:
        """federated - centralized."""
        return self.federated - self.centralized

    @property
    def decision(self) -> str:
        if self.undecided:
            return NOT_DECIDED
        if self.equivalent is None:
            return SHOWN_ONLY
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT


@dataclass(frozen=True, slots=True)
class Verdict:
    """The equivalence decision for the federated model of `round`."""

    tolerance: float
    round: int
    comparisons: tuple[Comparison, ...]
    scored: str = ""  # where the federated scores came from, one line

    @property
    def equivalent(self) -> bool:
        """True when every decided metric is within the tolerance."""
        return all(
            c.equivalent and not c.undecided for c in self.comparisons if c.equivalent is not None
        )

    @property
    def decision(self) -> str:
        if any(c.undecided for c in self.comparisons):
            return NOT_DECIDED
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT

    def lines(self) -> list[str]:
        """The comparison table and the verdict, for people."""
        out = [
            f"federated model of round {self.round} vs centralized baseline "
            f"(equivalent: |difference| <= {self.tolerance:g})",
            *([self.scored] if self.scored else []),
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
        undecided = [c.undecided for c in self.comparisons if c.undecided]
        if undecided:
            out.append(f"verdict: NOT DECIDED ({'; '.join(undecided)})")
        elif self.equivalent:
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
    scored: str = "",
) -> Verdict:
    """Compare the `SHOWN_METRICS` of the federated model of `at_round` with the
    centralized ones; decide on `DECIDED_METRICS` with `tolerance`. A
    `threshold` on both sides that differs leaves F1 undecided. `scored` says
    where the federated scores came from.

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
        comparisons.append(
            Comparison(metric, c, f, decided, _undecided(metric, centralized, federated))
        )
    return Verdict(tolerance, at_round, tuple(comparisons), scored)


def _undecided(
    metric: str, centralized: Mapping[str, float], federated: Mapping[str, float]
) -> str:
    """Why `metric` cannot be compared ('' if it can): F1 at two thresholds."""
    if metric != "f1" or "threshold" not in centralized or "threshold" not in federated:
        return ""
    c, f = centralized["threshold"], federated["threshold"]
    if c == f:
        return ""
    return (
        f"F1 at threshold {c:g} (centralized) against {f:g} (federated): train the baseline "
        f"with --threshold {f:g}, or run the hub with --decision-threshold {c:g}"
    )
