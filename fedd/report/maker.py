"""`fedd report`: read a hub's state and the centralized baseline, write the report.

Reads the hub's state directory read-only through `HubStore` (validated, the
committed rounds only, so a running hub can be reported on) and the
centralized metrics CSV; computes with `fedd.report.compute`; writes under OUT

    metrics/performance_summary.csv   metrics/baseline_vs_fl.csv
    plots/convergence.png  plots/performance.png  plots/centralized_vs_fl.png

The plots need matplotlib (`pip install 'fedd[plots]'`). Without it the CSV
files and the verdict are still written, and `ReportResult.plots_note` says
how to get the plots.

Whose fault: corrupt or foreign state raises `StateError`, a state without
rounds or scores too (naming the file that lacks them); an unusable
centralized file or an unwritable output raises `DataError`; a missing state
directory `ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedd.daemon.errors import StateError
from fedd.daemon.state.hubfiles import METRICS_LOG, ROUND_LOG, RUN, STAGES
from fedd.daemon.state.store import HubStore
from fedd.learner.centralized import read_centralized_metrics
from fedd.report.compute import ClientRecord, Report, RoundRecord, Scoring, build_report
from fedd.report.decision import DEFAULT_TOLERANCE
from fedd.report.files import write_report_csvs

__all__ = ["PLOTS_HINT", "ReportResult", "load_report", "make_report"]

PLOTS_HINT = "pip install 'fedd[plots]' (matplotlib) and run `fedd report` again"


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A written report: its figures, the files, and what was left out and why."""

    report: Report
    csv_files: tuple[Path, ...]
    plot_files: tuple[Path, ...]
    plots_note: str  # empty when the plots were written
    reconciled: tuple[str, ...]  # what a reader would repair in the state (not written)

    def lines(self) -> list[str]:
        """The verdict, the performance summary and where the files are, for people."""
        out = [
            *self.report.verdict.lines(),
            self.report.statistics,
            self.report.training,
            *self.report.overall.lines(),
        ]
        out += [f"wrote {path}" for path in (*self.csv_files, *self.plot_files)]
        if self.plots_note:
            out.append(self.plots_note)
        out += [f"note: {line}" for line in self.reconciled]
        return out


def load_report(
    state_dir: Path, centralized: Path, *, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[Report, tuple[str, ...]]:
    """Read the hub's committed rounds and the baseline; compute the report.

    Returns it with the state's `reconciled` notes. Raises as the module
    docstring says; `ValueError` for a negative or non-finite tolerance.
    """
    store = HubStore.open(state_dir, read_only=True)
    if store.run_id is None:
        raise StateError(
            f"{state_dir / RUN.name}: missing, so {state_dir} holds no hub run to report on"
        )
    # Round numbers are distinct, >= 0 and at most the committed round: this is all of them.
    committed = store.recent_rounds(store.committed_round + 1)
    if not committed:
        raise StateError(f"{state_dir / ROUND_LOG.name}: no committed round yet")
    rounds = []
    for row, metrics, perf in committed:
        if perf is None:  # HubStore.open refuses a committed round without its perf row
            raise StateError(f"{state_dir}: round {row.round} has no perf_log row")
        scores = scoring = None
        if metrics is not None:
            scores = {
                "roc_auc": metrics.roc_auc,
                "pr_auc": metrics.pr_auc,
                "precision": metrics.precision,
                "recall": metrics.recall,
                "f1": metrics.f1,
                "logloss": metrics.logloss,
                "threshold": metrics.threshold,
            }
            scoring = Scoring(
                metrics.source,
                metrics.peers,
                metrics.rows,
                metrics.positives,
                metrics.roc_auc_bound,
                metrics.pr_auc_bound,
                metrics.threshold,
            )
        rounds.append(
            RoundRecord(
                round=row.round,
                kind=row.kind,
                status=row.status,
                participants=row.participants,
                survivors=row.survivors,
                duration_s=row.duration_s,
                cpu_s=perf.cpu_s,
                stage_s=dict(perf.stage_s),
                evaluate_s=perf.evaluate_s,
                bytes_in=perf.bytes_in,
                bytes_out=perf.bytes_out,
                scores=scores,
                scoring=scoring,
            )
        )
    if all(record.scores is None for record in rounds):
        raise StateError(
            f"{state_dir / METRICS_LOG.name}: no scores in {len(rounds)} committed round(s): "
            "models are scored on the peers' held-out rows (unless every peer runs with "
            "--holdout 0) or on the hub's --eval-test, a round or more after they are "
            "trained, so there is nothing to compare with the centralized baseline yet"
        )
    clients = [
        ClientRecord(c.round, c.peer, c.n_samples, c.train_s, c.upload_bytes)
        for c in store.client_rows()
    ]
    baseline = read_centralized_metrics(centralized)
    report = build_report(
        rounds,
        clients,
        baseline,
        stages=STAGES,
        statistics=_statistics_line(store),
        training=_training_line(store),
        tolerance=tolerance,
    )
    return report, tuple(store.reconciled)


def _statistics_line(store: HubStore) -> str:
    stats = store.statistics
    if stats is None:
        return "statistics   not computed: the run has no federated feature statistics yet"
    return (
        f"statistics   federated: from {stats.peers} peers' {stats.rows} training rows "
        f"({stats.positives} positive), round {stats.round}; no row was pooled"
    )


def _training_line(store: HubStore) -> str:
    mu = store.settings.get("proximal_mu", "0.0")
    fedprox = "" if mu in ("0", "0.0") else f", FedProx proximal_mu {mu}"
    return f"training     strategy {store.strategy.describe()}{fedprox}"


def make_report(
    state_dir: Path,
    centralized: Path,
    out: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ReportResult:
    """Write the report of the hub in `state_dir` under `out` (see the module docstring).

    Without matplotlib only the CSV files are written, and `plots_note` says so.
    """
    report, reconciled = load_report(state_dir, centralized, tolerance=tolerance)
    csv_files = write_report_csvs(report, out / "metrics")
    plot_files: tuple[Path, ...] = ()
    note = ""
    try:  # lazily: matplotlib is an optional extra
        from fedd.report.plots import save_plots
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("matplotlib"):
            raise
        note = f"plots: skipped, matplotlib is not installed; {PLOTS_HINT}"
    else:
        plot_files = save_plots(report, out / "plots")
    return ReportResult(report, csv_files, plot_files, note, reconciled)
