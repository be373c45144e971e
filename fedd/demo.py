"""`fedd demo`: the whole pipeline on one machine, one step after another.

Layout under the base directory (default: the current directory):

    data/creditcard.csv   used if present, else synthesized
    data/clients/peer_*.csv   one raw file per institution (see learner.split)
    outputs/models/...    outputs/metrics/...    outputs/plots/...   (see fedd.report.maker)
    state/hub/...         the hub's CSV state (started fresh by every demo)
    state/peer_*/...      each peer's CSV state; state/*.log the daemons' logs

It runs a federation as institutions would: the raw file is cut into one raw
file per institution, and each peer gets only its own. Each peer holds out
a share of its rows (`learner.holdout`); the federation computes the feature
statistics and the held-out scores through secure sums, and the hub holds no
transactions at all. The centralized baseline is the one step that pools:
it trains on the union of the peers' training rows, z-scored with their own
statistics, and is scored on the union of the peers' held-out rows, which
the demo rebuilds with the same holdout function, so that both models are
scored on the same rows. After the federation has run, both models score
each of those rows once more (`outputs/metrics/holdout_scores.csv`), so that
the report can pair the two sides row by row.

The federated step runs the real daemons: a hub and one peer per file as
child processes on a free loopback port, for `rounds` training rounds. The
comparison is made at equal training length in sequential SGD steps (the
other sense, rows seen, cannot match at the same time; `fedd.report.budget`
says why, and the report shows both): by default each peer trains `peers`
local epochs per round on its 1/peers share, which is as many steps as one
epoch over all the data, and the centralized baseline trains rounds x
local_epochs / peers epochs. (One local epoch per round would leave the
federated model with a tenth of the steps at ten peers, and its F1 at
threshold 0.5 far behind for that reason alone.) On small data that is too
few steps for either model to learn the fraud (`fedd train centralized`
makes at least `MIN_STEPS` by default for the same reason), so the default
is the smallest multiple of `peers` local epochs that gives the run at least
`MIN_STEPS` steps. The last step is `fedd report`: the equivalence verdict,
the performance figures and the plots.

Each step is one function taking the shared `DemoRun` and printing what it
did; `STEPS` lists them in order, so a new stage (the federated rounds) is one
more function in that tuple.
"""

from __future__ import annotations

import csv
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fedd.cli.strategy import strategy_flags
from fedd.daemon.errors import ConfigError
from fedd.daemon.state.store import HubStore
from fedd.launch import Federation
from fedd.learner.centralized import MIN_STEPS, CentralizedResult, TrainConfig, train_and_score
from fedd.learner.model import predict_proba
from fedd.learner.modelio import load_model
from fedd.learner.partition import PartitionScheme
from fedd.learner.pool import Pooled, pool_clients
from fedd.learner.prepare import column_stats
from fedd.learner.progress import StagedProgress, progress_display, stage
from fedd.learner.scaling import ColumnStats, standardize
from fedd.learner.shards import shard_path
from fedd.learner.split import SplitReport, split
from fedd.learner.strategy import Strategy
from fedd.learner.synth import COLUMNS, KAGGLE_ROWS, write_synth
from fedd.report.budget import sgd_steps
from fedd.report.maker import ReportResult, make_report
from fedd.report.rowscores import ROW_SCORES_FILE, write_row_scores

__all__ = ["STEPS", "DemoRun", "run_demo"]

SYNTH_LABEL = COLUMNS[-1]


@dataclass
class DemoRun:
    """Where the demo reads and writes, its options, and what the steps produced."""

    base: Path
    rows: int
    peers: int
    rounds: int
    secagg: str
    echo: Callable[[str], None]
    progress: StagedProgress | None
    partition: PartitionScheme = "iid"
    alpha: float = 0.5
    local_epochs: int = 0  # 0: chosen from the data (see the module docstring)
    label: str = "Class"
    ignore_columns: tuple[str, ...] = ()  # of data/creditcard.csv, left out when cutting it
    encoding: str = "utf-8"  # of data/creditcard.csv
    fill_missing: float | None = None  # what its missing cells read as
    holdout: float = 0.2
    seed: int = 42
    strategy: Strategy = field(default_factory=Strategy)
    proximal_mu: float = 0.0
    cut: SplitReport | None = field(default=None)
    pooled: Pooled | None = field(default=None)
    pooled_stats: list[ColumnStats] | None = field(default=None)
    centralized: CentralizedResult | None = field(default=None)
    report: ReportResult | None = field(default=None)

    @property
    def epochs_per_round(self) -> int:
        """`local_epochs`, or the default of the module docstring (once the rows are pooled)."""
        if self.local_epochs:
            return self.local_epochs
        assert self.pooled is not None  # the centralized step pools them first
        per_epoch = sgd_steps(self.pooled.train.n_rows / self.peers, TrainConfig().batch_size, 1)
        needed = math.ceil(MIN_STEPS / (self.rounds * per_epoch))
        return self.peers * max(1, math.ceil(needed / self.peers))

    @property
    def baseline_epochs(self) -> int:
        """Centralized epochs with as many sequential SGD steps as the federation (rounds x
        local epochs / peers, but for the minibatches that the shares do not fill)."""
        assert self.pooled is not None  # the centralized step pools them first
        rows, batch = self.pooled.train.n_rows, TrainConfig().batch_size
        steps = self.rounds * sgd_steps(rows / self.peers, batch, self.epochs_per_round)
        return max(1, round(steps / sgd_steps(rows, batch, 1)))

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def raw_csv(self) -> Path:
        return self.data_dir / "creditcard.csv"

    @property
    def clients_dir(self) -> Path:
        return self.data_dir / "clients"

    @property
    def outputs_dir(self) -> Path:
        return self.base / "outputs"

    @property
    def state_dir(self) -> Path:
        return self.base / "state"


def _data_step(run: DemoRun) -> None:
    if run.raw_csv.exists():
        run.echo(f"using {run.raw_csv} (delete it to synthesize a new one)")
        return
    if run.label != SYNTH_LABEL:
        raise ConfigError(
            f"--label {run.label} names the label column of your own {run.raw_csv}, which is "
            f"not there; the synthesized data's label is {SYNTH_LABEL}"
        )
    if run.ignore_columns:
        raise ConfigError(
            f"--ignore-columns names columns of your own {run.raw_csv}, which is not there; "
            "the synthesized data has none to leave out"
        )
    if run.encoding != "utf-8":
        raise ConfigError(
            f"--encoding is that of your own {run.raw_csv}, which is not there; "
            "the synthesized data is written in UTF-8"
        )
    if run.fill_missing is not None:
        raise ConfigError(
            f"--fill-missing fills in cells of your own {run.raw_csv}, which is not there; "
            "the synthesized data misses none"
        )
    summary = write_synth(run.raw_csv, run.rows, progress=stage(run.progress, "synth"))
    run.echo(f"synthesized {summary.rows} rows ({summary.positives} frauds) -> {summary.path}")


def _split_step(run: DemoRun) -> None:
    run.cut = split(
        run.raw_csv,
        run.peers,
        run.clients_dir,
        label=run.label,
        ignore=run.ignore_columns,
        encoding=run.encoding,
        fill_missing=run.fill_missing,
        scheme=run.partition,
        alpha=run.alpha,
        seed=run.seed,
        progress=run.progress,
    )
    for line in run.cut.lines():
        run.echo(line)


def _centralized_step(run: DemoRun) -> None:
    """The one pooled step: every peer's training rows, every peer's held-out rows."""
    pooled = pool_clients(run.clients_dir, label=run.label, holdout=run.holdout, seed=run.seed)
    stats = column_stats(pooled.train, range(pooled.train.n_rows))
    run.pooled, run.pooled_stats = pooled, stats
    run.echo(
        f"pooled for the baseline only: {pooled.train.n_rows} training rows and "
        f"{pooled.holdout.n_rows} held-out rows of {pooled.peers} peers"
    )
    run.centralized = train_and_score(
        standardize(pooled.train, stats),
        standardize(pooled.holdout, stats),
        run.outputs_dir,
        config=TrainConfig(epochs=run.baseline_epochs),
        progress=run.progress,
    )
    for line in run.centralized.lines():
        run.echo(line)
    for warning in run.centralized.warnings():
        run.echo(f"warning: {warning}")


# Generous: the hub exits by itself after the last round; this only bounds a hang.
_FEDERATION_TIMEOUT = 1800.0


def _federated_step(run: DemoRun) -> None:
    if run.state_dir.exists():
        shutil.rmtree(run.state_dir)  # the demo's own state: every demo starts fresh
    hub_state = run.state_dir / "hub"
    with Federation(run.state_dir) as fed:
        hub = fed.hub(
            hub_state,
            "--min-peers",
            str(run.peers),
            "--rounds",
            str(run.rounds),
            "--secagg",
            run.secagg,
            "--local-epochs",
            str(run.epochs_per_round),
            *strategy_flags(run.strategy, run.proximal_mu),
            "--exit-when-done",
        )
        for k in range(1, run.peers + 1):
            shard = shard_path(run.clients_dir, k)
            fed.peer(
                f"peer_{k}",
                shard,
                run.state_dir / f"peer_{k}",
                "--label",
                run.label,
                "--holdout",
                repr(run.holdout),
            )
        run.echo(
            f"hub on {fed.address}, {run.peers} peers, {run.rounds} rounds, "
            f"secagg {run.secagg}, strategy {run.strategy.describe()}"
            + (f", proximal_mu {run.proximal_mu:g}" if run.proximal_mu else "")
            + f" (logs in {run.state_dir})"
        )
        shown = 0
        deadline = time.monotonic() + _FEDERATION_TIMEOUT
        while hub.alive() and time.monotonic() < deadline:
            shown = _show_rounds(run, hub_state, shown)
            if any(not c.alive() and c.popen.returncode for c in fed.children):
                break
            time.sleep(0.2)
        _show_rounds(run, hub_state, shown)
        failed = [c for c in fed.children if not c.alive() and c.popen.returncode]
        if hub.alive() or failed:
            names = ", ".join(f"{c.name} (exit {c.popen.returncode})" for c in failed) or "hub"
            raise ConfigError(f"the federation did not finish: {names}; see {run.state_dir}/*.log")


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _show_rounds(run: DemoRun, hub_state: Path, shown: int) -> int:
    """Echo the rounds committed since the last call; returns how many are shown now.

    Scores travel with later rounds: each round's line names the models it scored.
    """
    rounds = _read_rows(hub_state / "round_log.csv")
    metrics = _read_rows(hub_state / "metrics_log.csv")
    for row in rounds[shown:]:
        scored = "".join(
            f"  [model of round {m['round']}: roc_auc {float(m['roc_auc']):.4f}"
            f" pr_auc {float(m['pr_auc']):.4f} f1 {float(m['f1']):.4f}]"
            for m in metrics
            if m["committed_in"] == row["round"]
        )
        run.echo(
            f"round {row['round']} {row['kind']}: {row['status']}, {row['survivors']}/"
            f"{row['participants']} peers, {float(row['duration_s']):.2f}s{scored}"
        )
    return len(rounds)


def _row_scores_step(run: DemoRun) -> None:
    """The pooled comparison's last part: both models score every pooled held-out row."""
    assert run.pooled is not None and run.pooled_stats is not None  # the centralized step ran
    store = HubStore.open(run.state_dir / "hub", read_only=True)
    committed = [row for row, _, _ in store.recent_rounds(store.committed_round + 1)]
    trained = [row.round for row in committed if row.kind == "training" and row.status == "ok"]
    if not trained or store.model is None or store.statistics is None:
        raise ConfigError(f"the federation trained no model; see {run.state_dir}/*.log")
    holdout = run.pooled.holdout
    central = load_model(run.outputs_dir / "models" / "centralized_model.csv", holdout.features)
    # Each model scores the rows as they were scaled for it: the pooled training rows'
    # statistics for the baseline, the federation's (from secure sums) for its model.
    centralized = predict_proba(central.params, standardize(holdout, run.pooled_stats))
    federated = predict_proba(store.model, standardize(holdout, store.statistics.columns))
    path = run.outputs_dir / "metrics" / ROW_SCORES_FILE
    write_row_scores(path, trained[-1], holdout.y, centralized, federated)
    run.echo(
        f"both models scored the {holdout.n_rows} pooled held-out rows "
        f"(the federation's model of round {trained[-1]}) -> {path}"
    )


def _report_step(run: DemoRun) -> None:
    hub_state = run.state_dir / "hub"
    run.report = make_report(
        hub_state,
        run.outputs_dir / "metrics" / "centralized_metrics.csv",
        run.outputs_dir,
        row_scores=run.outputs_dir / "metrics" / ROW_SCORES_FILE,
    )
    for line in run.report.lines():
        run.echo(line)
    run.echo(f"federated model  {hub_state / 'global_model.csv'}")
    run.echo(f"hub state        {hub_state} (round_log, metrics_log, perf_log, ...)")


STEPS: tuple[tuple[str, Callable[[DemoRun], None]], ...] = (
    ("data", _data_step),
    ("one raw file per institution", _split_step),
    ("centralized baseline", _centralized_step),
    ("federated training", _federated_step),
    ("both models on the pooled held-out rows", _row_scores_step),
    ("report: federated vs centralized", _report_step),
)


def run_demo(
    base: Path,
    *,
    rows: int = KAGGLE_ROWS,
    peers: int = 3,
    rounds: int = 5,
    secagg: str = "full",
    partition: PartitionScheme = "iid",
    alpha: float = 0.5,
    local_epochs: int = 0,
    label: str = "Class",
    ignore_columns: tuple[str, ...] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
    holdout: float = 0.2,
    strategy: Strategy | None = None,
    proximal_mu: float = 0.0,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> DemoRun:
    """Run every step of `STEPS` under `base`; return what they produced.

    `partition` and `alpha` cut the peers' shards (see `learner.partition`),
    leaving out the columns of `ignore_columns` (its text in `encoding`, its missing
    cells read as `fill_missing`);
    `local_epochs` 0 chooses them as the module docstring says; `strategy`
    (default FedAvg) and `proximal_mu` are the hub's (`fedd start hub --strategy`).
    Raises `DataError` when a step cannot proceed (the message says why).
    """
    with progress_display(quiet=quiet) as display:

        def say(line: str) -> None:
            if display is not None:
                display.close()  # finish a progress line before printing
            echo(line)

        run = DemoRun(
            base=base,
            rows=rows,
            peers=peers,
            rounds=rounds,
            secagg=secagg,
            echo=say,
            progress=display,
            partition=partition,
            alpha=alpha,
            local_epochs=local_epochs,
            label=label,
            ignore_columns=ignore_columns,
            encoding=encoding,
            fill_missing=fill_missing,
            holdout=holdout,
            strategy=strategy or Strategy(),
            proximal_mu=proximal_mu,
        )
        for number, (title, step) in enumerate(STEPS, 1):
            say(f"== {number}/{len(STEPS)} {title}")
            step(run)
    echo(f"== done: data in {run.data_dir}, outputs in {run.outputs_dir}, state in {run.state_dir}")
    return run
