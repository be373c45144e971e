"""The report's PNG plots, drawn with matplotlib (the optional extra `fedd[plots]`).

Importing this module imports matplotlib, so callers import it lazily (see
`fedd.report.maker`) and fedd works without it. Figures are built with
`matplotlib.figure.Figure` directly, not pyplot: no global figure state and no
GUI backend, so this works in daemons, tests and headless containers alike.

Each `*_figure` function returns the figure without saving it (tests count
its axes); `save_plots` builds and writes all three:

    convergence.png        ROC-AUC, PR-AUC and F1 per round, the centralized
                           baseline as a dashed line, the tolerance band of
                           the decided metrics shaded, aborted rounds marked
    performance.png        seconds per round, stacked by protocol stage and
                           the hub's evaluation, with their wall-clock total;
                           bytes per peer per round, up and down; aborted
                           rounds shaded
    centralized_vs_fl.png  the final federated scores beside the centralized
                           ones, and their differences against the tolerance
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedd.learner.errors import DataError
from fedd.report.compute import Report
from fedd.report.decision import DECIDED_METRICS, METRIC_LABELS, SHOWN_METRICS

__all__ = [
    "PLOT_FILES",
    "comparison_figure",
    "convergence_figure",
    "performance_figure",
    "save_plots",
]

PLOT_FILES = ("convergence.png", "performance.png", "centralized_vs_fl.png")
_ABORTED_COLOR = "#d62728"
_FEDERATED_COLOR = "#1f77b4"
_CENTRAL_COLOR = "#555555"
_DPI = 100


def _mark_aborted(ax: Axes, report: Report, *, shade: bool) -> None:
    """Mark each aborted round: a shaded column, or a dotted line; one legend entry."""
    label = "aborted round"
    for record in report.rounds:
        if record.ok:
            continue
        if shade:
            ax.axvspan(record.round - 0.5, record.round + 0.5, color=_ABORTED_COLOR, alpha=0.15,
                       label=label)  # fmt: skip
        else:
            ax.axvline(record.round, color=_ABORTED_COLOR, linestyle=":", label=label)
        label = "_nolegend_"


def _round_axis(ax: Axes) -> None:
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def convergence_figure(report: Report) -> Figure:
    """One axes per shown metric (ROC-AUC, PR-AUC, F1) against the round."""
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, len(SHOWN_METRICS))
    scored = [r for r in report.rounds if r.scores is not None]
    tolerance = report.verdict.tolerance
    for ax, metric in zip(axes, SHOWN_METRICS, strict=True):
        baseline = report.centralized[metric]
        values = [r.scores[metric] for r in scored if r.scores is not None]
        ax.plot([r.round for r in scored], values, marker="o", color=_FEDERATED_COLOR,
                label="federated")  # fmt: skip
        ax.axhline(baseline, color=_CENTRAL_COLOR, linestyle="--", label="centralized")
        if metric in DECIDED_METRICS:
            ax.axhspan(baseline - tolerance, baseline + tolerance, color=_CENTRAL_COLOR,
                       alpha=0.12, label=f"±{tolerance:g}")  # fmt: skip
        _mark_aborted(ax, report, shade=False)
        ax.set_title(METRIC_LABELS[metric])
        _round_axis(ax)
        # A margin around the points, but not far outside [0, 1], where scores live.
        ax.set_ylim(max(-0.02, min([*values, baseline]) - 0.05),
                    min(1.02, max([*values, baseline]) + 0.05))  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle("Convergence of the federated model against the centralized baseline")
    return fig


# A secure round's first stage runs from RoundStart to the key advertisements,
# which peers send once they have trained: it holds the local training.
_STAGE_LABELS = {"advertise-keys": "advertise-keys (with local training)"}


def _legend_above_bars(ax: Axes, highest: float, *, ncols: int) -> None:
    """A legend in headroom above the tallest bar, so it covers none of them."""
    if highest > 0:
        ax.set_ylim(top=highest * 1.4)
    ax.legend(loc="upper center", ncols=ncols, fontsize="small")


def performance_figure(report: Report) -> Figure:
    """Two axes: seconds per round by stage, and bytes per peer per round."""
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    time_ax, bytes_ax = fig.subplots(1, 2)
    rounds = [r.round for r in report.per_round]
    # Only the stages some round spent time in: plain rounds have one, secure rounds six.
    parts = [(s, [r.stage_s.get(s, 0.0) for r in report.per_round]) for s in report.stages]
    parts = [(s, v) for s, v in parts if any(v)]
    parts.append(("evaluate", [r.evaluate_s for r in report.per_round]))
    bottom = [0.0] * len(rounds)
    for stage, seconds in parts:
        label = _STAGE_LABELS.get(stage, stage)
        time_ax.bar(rounds, seconds, bottom=bottom, label=label, width=0.7)
        bottom = [b + s for b, s in zip(bottom, seconds, strict=True)]
    # The hub evaluates after the round's clock stops, so the marker adds it
    # back: the stack and the marker measure the same span.
    totals = [r.duration_s + r.evaluate_s for r in report.per_round]
    time_ax.plot(rounds, totals, "k_", markersize=18, markeredgewidth=2,
                 label="round + evaluation (wall clock)")  # fmt: skip
    _mark_aborted(time_ax, report, shade=True)
    time_ax.set_ylabel("seconds")
    time_ax.set_title("Round latency by protocol stage")
    _round_axis(time_ax)
    _legend_above_bars(time_ax, max(max(totals, default=0.0), max(bottom, default=0.0)), ncols=3)

    half = 0.35
    up = [r.up_bytes_per_peer or 0.0 for r in report.per_round]
    down = [r.down_bytes_per_peer or 0.0 for r in report.per_round]
    bytes_ax.bar([n - half / 2 for n in rounds], up, width=half, label="up (peer to hub)")
    bytes_ax.bar([n + half / 2 for n in rounds], down, width=half, label="down (hub to peer)")
    _mark_aborted(bytes_ax, report, shade=True)
    bytes_ax.set_ylabel("bytes per participating peer")
    bytes_ax.set_title("Traffic per peer per round (as the hub counts it)")
    _round_axis(bytes_ax)
    _legend_above_bars(bytes_ax, max(up + down, default=0.0), ncols=2)
    fig.suptitle("Federated round performance")
    return fig


def comparison_figure(report: Report) -> Figure:
    """Two axes: final scores side by side, and their differences against the tolerance."""
    verdict = report.verdict
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    score_ax, diff_ax = fig.subplots(1, 2)
    labels = [METRIC_LABELS[c.metric] for c in verdict.comparisons]
    xs = list(range(len(labels)))
    half = 0.38
    central = score_ax.bar([x - half / 2 for x in xs], [c.centralized for c in verdict.comparisons],
                           width=half, color=_CENTRAL_COLOR, label="centralized")  # fmt: skip
    federated = score_ax.bar([x + half / 2 for x in xs], [c.federated for c in verdict.comparisons],
                             width=half, color=_FEDERATED_COLOR,
                             label=f"federated (round {verdict.round})")  # fmt: skip
    score_ax.bar_label(central, fmt="%.4f", fontsize="small")
    score_ax.bar_label(federated, fmt="%.4f", fontsize="small")
    score_ax.set_xticks(xs, labels)
    score_ax.set_ylim(0.0, 1.25)
    score_ax.set_title("Final test scores")
    score_ax.legend(loc="upper right", ncols=2, fontsize="small")

    colors = {True: "#2ca02c", False: _ABORTED_COLOR, None: "#999999"}
    diffs = diff_ax.bar(xs, [c.difference for c in verdict.comparisons],
                        color=[colors[c.equivalent] for c in verdict.comparisons])  # fmt: skip
    diff_ax.bar_label(diffs, labels=[c.decision for c in verdict.comparisons], fontsize="small")
    tolerance = verdict.tolerance
    diff_ax.axhspan(-tolerance, tolerance, color=_CENTRAL_COLOR, alpha=0.15,
                    label=f"tolerance ±{tolerance:g}")  # fmt: skip
    diff_ax.axhline(0.0, color="black", linewidth=0.8)
    diff_ax.set_xticks(xs, labels)
    diff_ax.set_ylabel("federated - centralized")
    diff_ax.set_title("Difference (ROC-AUC and F1 decide)")
    bound = max([abs(c.difference) for c in verdict.comparisons] + [tolerance]) * 1.4
    diff_ax.set_ylim(-bound, bound)
    diff_ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Centralized vs federated: {verdict.decision.upper()}")
    return fig


def _save(fig: Figure, path: Path) -> None:
    """Write `fig` as a PNG that replaces `path` whole (temporary file, then rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            fig.savefig(stream, format="png", dpi=_DPI)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def save_plots(report: Report, plots_dir: Path) -> tuple[Path, ...]:
    """Write the three PNG files (`PLOT_FILES`) into `plots_dir`; return their paths.

    Raises `DataError` naming a file that cannot be written.
    """
    builders = (convergence_figure, performance_figure, comparison_figure)
    paths = []
    for name, build in zip(PLOT_FILES, builders, strict=True):
        path = plots_dir / name
        _save(build(report), path)
        paths.append(path)
    return tuple(paths)
