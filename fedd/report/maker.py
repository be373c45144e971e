"""`fedd report`: read a hub's state and the centralized baseline, write the report.

Reads the hub's state directory read-only through `HubStore` (validated, the
committed rounds only, so a running hub can be reported on), the
centralized metrics CSV and, where a simulation wrote them, both models'
scores of each held-out row (`fedd.report.rowscores`: by default
`holdout_scores.csv` beside the centralized metrics, used when it is of
this run); computes with `fedd.report.compute`; writes under OUT

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
from fedd.learner.errors import DataError
from fedd.report.budget import budget_lines, centralized_budget, federated_budget
from fedd.report.compute import (
    ClientRecord,
    Report,
    RoundRecord,
    Scoring,
    build_report,
    final_scores,
)
from fedd.report.decision import DEFAULT_TOLERANCE
from fedd.report.files import write_report_csvs
from fedd.report.rowscores import ROW_SCORES_FILE, RowScores, read_row_scores

__all__ = ["PLOTS_HINT", "ReportResult", "load_report", "make_report"]

PLOTS_HINT = "pip install 'fedd[plots]' (matplotlib) and run `fedd report` again"


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A written report: its figures, the files, and what was left out and why."""

    report: Report
    csv_files: tuple[Path, ...]
    plot_files: tuple[Path, ...]
    plots_note: str  # empty when the plots were written
    reconciled: tuple[str, ...]  # what a reader would repair in the state (not written), ...

    def lines(self) -> list[str]:
        """The verdict, the budgets, the performance summary and where the files are."""
        out = [
            *self.report.verdict.lines(),
            *self.report.budget,
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
    state_dir: Path,
    centralized: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    row_scores: Path | None = None,
) -> tuple[Report, tuple[str, ...]]:
    """Read the hub's committed rounds and the baseline; compute the report.

    `row_scores` names the held-out rows' scores (default: `ROW_SCORES_FILE`
    beside `centralized`, if there is one). Returns the report with notes: the
    state's `reconciled` lines, and why a row-scores file found by default was
    not used. Raises as the module docstring says (a `row_scores` given that
    is not of this run: `DataError`); `ValueError` for a negative or
    non-finite tolerance.
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
    notes = list(store.reconciled)
    paired = None
    default = centralized.parent / ROW_SCORES_FILE
    path = row_scores if row_scores is not None else default if default.exists() else None
    if path is not None:
        paired = read_row_scores(path)
        mismatch = _mismatch(paired, rounds, baseline)
        if mismatch and row_scores is not None:
            raise DataError(f"{path}: {mismatch}")
        if mismatch:
            notes.append(f"{path} not used: {mismatch}")
            paired = None
    stats = store.statistics
    survivors = [r.survivors for r in rounds if r.kind == "training" and r.ok]
    budget = budget_lines(
        centralized_budget(baseline),
        federated_budget(store.settings, (stats.rows, stats.peers) if stats else None, survivors),
    )
    report = build_report(
        rounds,
        clients,
        baseline,
        stages=STAGES,
        statistics=_statistics_line(store),
        training=_training_line(store),
        tolerance=tolerance,
        row_scores=paired,
        budget=budget,
        survivors=store.survivor_sets(),
    )
    return report, tuple(notes)


def _mismatch(paired: RowScores, rounds: list[RoundRecord], baseline: dict[str, float]) -> str:
    """Why the held-out rows' scores are not of this run and baseline ('' if they are)."""
    final = final_scores(rounds)
    scoring = final.scoring if final is not None else None
    if final is None or scoring is None:
        return "the run has no scored model"
    if paired.round != final.round:
        return f"its federated model is of round {paired.round}, the final model of {final.round}"
    rows = (len(paired.labels), paired.positives)
    if scoring.source == "federated" and rows != (scoring.rows, scoring.positives):
        return (
            f"{rows[0]} rows ({rows[1]} positive), the federation scored {scoring.rows} "
            f"({scoring.positives} positive)"
        )
    if "test_rows" in baseline and rows != (baseline["test_rows"], baseline["test_positives"]):
        return f"{rows[0]} rows, the baseline was scored on {int(baseline['test_rows'])}"
    return ""


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
    row_scores: Path | None = None,
) -> ReportResult:
    """Write the report of the hub in `state_dir` under `out` (see the module docstring).

    Without matplotlib only the CSV files are written, and `plots_note` says so.
    """
    report, reconciled = load_report(
        state_dir, centralized, tolerance=tolerance, row_scores=row_scores
    )
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
