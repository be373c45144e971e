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
which to change. When neither model catches a single fraud at that threshold
(F1 is 0 on both sides), F1 agrees without saying anything about the
models: the verdict is *not informative*.

The ±tolerance rule is the verdict. What it rests on comes with it
(`Trust`, computed by `fedd.report.trust`): the test rows and their
positives, what one transaction moves F1 by, and a 95% interval for each
decided metric: of the difference when both sides were scored on the same
rows, else each side's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fedd.learner.uncertainty import Interval

__all__ = [
    "DECIDED_METRICS",
    "DECISION_DIGITS",
    "DEFAULT_TOLERANCE",
    "METRIC_LABELS",
    "SHOWN_METRICS",
    "Comparison",
    "Trust",
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
NOT_INFORMATIVE = "not informative"
SHOWN_ONLY = "shown only"


@dataclass(frozen=True, slots=True)
class Trust:
    """How far the comparison could move on other test rows.

    `rows` says which rows each side was scored on, their positives and what
    one transaction moves F1 by (one line); `how` how the intervals were
    made; `paired` holds the intervals of the differences (both sides on the
    same rows) and `own` each side's (centralized, federated) interval
    otherwise, by metric (None where there is none); `notes` what a reader
    should weigh, one line each.
    """

    rows: str
    how: str
    paired: Mapping[str, Interval | None] = field(default_factory=dict)
    own: Mapping[str, tuple[Interval | None, Interval | None]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric, centralized against federated. `equivalent` is None when the
    metric is shown but not part of the decision."""

    metric: str
    centralized: float
    federated: float
    equivalent: bool | None
    undecided: str = ""  # why a decided metric cannot be compared
    uninformative: str = ""  # why agreeing says nothing
    interval: Interval | None = None  # of the difference, both sides on the same rows
    sides: tuple[Interval | None, Interval | None] | None = None  # each side's own

    @property
    def difference(self) -> float:
        """federated - centralized."""
        return self.federated - self.centralized

    @property
    def decision(self) -> str:
        if self.undecided:
            return NOT_DECIDED
        if self.uninformative:
            return NOT_INFORMATIVE
        if self.equivalent is None:
            return SHOWN_ONLY
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT

    def interval_text(self) -> str:
        """The interval column: the difference's, or each side's (c: ..., f: ...)."""
        if self.interval is not None:
            return str(self.interval)
        if self.sides is not None:
            c, f = (side.plain() if side is not None else "-" for side in self.sides)
            return f"c {c} f {f}"
        return "-"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The equivalence decision for the federated model of `round`."""

    tolerance: float
    round: int
    comparisons: tuple[Comparison, ...]
    scored: str = ""  # where the federated scores came from, one line
    trust: Trust | None = None

    @property
    def equivalent(self) -> bool:
        """True when every decided metric is within the tolerance, and says something."""
        return all(
            c.equivalent and not c.undecided and not c.uninformative
            for c in self.comparisons
            if c.equivalent is not None
        )

    @property
    def decision(self) -> str:
        if any(c.undecided for c in self.comparisons):
            return NOT_DECIDED
        if any(c.uninformative for c in self.comparisons):
            return NOT_INFORMATIVE
        return EQUIVALENT if self.equivalent else NOT_EQUIVALENT

    def lines(self) -> list[str]:
        """The comparison table and the verdict, for people."""
        trust = self.trust
        width = max([20, *(len(c.interval_text()) for c in self.comparisons)])
        out = [
            f"federated model of round {self.round} vs centralized baseline "
            f"(equivalent: |difference| <= {self.tolerance:g})",
            *([self.scored] if self.scored else []),
            *([f"test rows    {trust.rows}"] if trust else []),
            f"{'metric':<9} {'centralized':>11} {'federated':>10} {'difference':>11}  "
            f"{'95% interval':<{width}}  decision",
        ]
        for c in self.comparisons:
            label = METRIC_LABELS.get(c.metric, c.metric)
            out.append(
                f"{label:<9} {c.centralized:>11.4f} {c.federated:>10.4f} "
                f"{c.difference:>+11.4f}  {c.interval_text():<{width}}  {c.decision}"
            )
        if trust is not None:
            out.append(f"intervals    {trust.how}")
            out += [f"note: {note}" for note in trust.notes]
        decided = [c for c in self.comparisons if c.equivalent is not None]
        names = " and ".join(METRIC_LABELS.get(c.metric, c.metric) for c in decided)
        undecided = [c.undecided for c in self.comparisons if c.undecided]
        uninformative = [c.uninformative for c in self.comparisons if c.uninformative]
        if undecided:
            out.append(f"verdict: NOT DECIDED ({'; '.join(undecided)})")
        elif uninformative:
            out.append(f"verdict: NOT INFORMATIVE ({'; '.join(uninformative)})")
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
    trust: Trust | None = None,
) -> Verdict:
    """Compare the `SHOWN_METRICS` of the federated model of `at_round` with the
    centralized ones; decide on `DECIDED_METRICS` with `tolerance`. A
    `threshold` on both sides that differs leaves F1 undecided; F1 of 0 on
    both sides is not informative. `scored` says where the federated scores
    came from; `trust` what the comparison rests on, and its intervals.

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
            Comparison(
                metric,
                c,
                f,
                decided,
                _undecided(metric, centralized, federated),
                _uninformative(metric, centralized, federated),
                trust.paired.get(metric) if trust and decided is not None else None,
                trust.own.get(metric) if trust and decided is not None else None,
            )
        )
    return Verdict(tolerance, at_round, tuple(comparisons), scored, trust)


def _uninformative(
    metric: str, centralized: Mapping[str, float], federated: Mapping[str, float]
) -> str:
    """Why agreeing on `metric` says nothing ('' if it says something): F1 of 0 twice."""
    if metric != "f1" or centralized["f1"] or federated["f1"]:
        return ""
    at = federated.get("threshold", centralized.get("threshold", 0.5))
    return (
        f"neither model catches a single fraud at threshold {at:g}, so F1 is 0 on both sides: "
        "train longer, or compare at a lower threshold (--threshold, --decision-threshold)"
    )


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
