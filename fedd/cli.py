"""The `fedd` command line: a shell over the library.

Each command parses its options, builds a config and calls one function.
User mistakes (bad flags, unusable files, impossible parameters) become one
line on stderr and a non-zero exit; anything else is a bug and keeps its
traceback. Every option can also be set through an environment variable,
`FEDD_<GROUP>_<COMMAND>_<OPTION>`, so that containers can be configured
without long command lines. The options of the daemons and of `fedd status`
also answer to the short `FEDD_<OPTION>` (FEDD_SECAGG, FEDD_STATE_DIR, ...),
which wins when both are set; `--help` shows both names. Options whose
Python name differs from the flag (--input -> input_path) name their
variable explicitly, so that it still follows the flag.

The daemons' commands live in `fedd.cli_daemons`; this module adds them
to the `fedd` group.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from fedd.cli_daemons import keys, start, status
from fedd.cliopts import DIR, PATH, FiniteFloat
from fedd.crypto.errors import ParameterError
from fedd.daemon.errors import ConfigError, StateError
from fedd.demo import run_demo
from fedd.learner.centralized import TrainConfig, run_centralized
from fedd.learner.errors import DataError
from fedd.learner.model import CLASS_WEIGHTS, ClassWeight
from fedd.learner.partition import PARTITIONS, PartitionScheme
from fedd.learner.prepare import prepare
from fedd.learner.progress import progress_display, stage
from fedd.learner.synth import KAGGLE_FRAUD_RATE, KAGGLE_ROWS, write_synth
from fedd.report.decision import DEFAULT_TOLERANCE
from fedd.simulate import DROPOUT_STAGES, RoundReport, SimConfig, run_simulation

__all__ = ["main"]

EXIT_USER_ERROR = 1

# Exceptions whose message is written for the user: print it, exit non-zero.
USER_ERRORS: tuple[type[Exception], ...] = (DataError, ParameterError, ConfigError, StateError)


class _FeddGroup(click.Group):
    """A click group that turns our user-facing exceptions into one stderr line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"fedd: error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)


@click.group(
    cls=_FeddGroup,
    context_settings={"auto_envvar_prefix": "FEDD", "show_default": True},
)
@click.version_option(package_name="fedd")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """fedd: federated fraud-detection training with secure aggregation."""
    ctx.obj = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --- data, train, demo --------------------------------------------------------


_QUIET = click.option("--quiet", is_flag=True, help="No progress display.")
_PARTITION = click.option(
    "--partition",
    type=click.Choice(PARTITIONS),
    default="iid",
    help="How to cut the peers' shards: iid, label skew (dirichlet), size skew (quantity).",
)
_ALPHA = click.option(
    "--alpha",
    type=FiniteFloat(0.0, min_open=True),
    default=0.5,
    help="Dirichlet concentration for --partition dirichlet|quantity: smaller is more skewed.",
)


@main.group()
def data() -> None:
    """Make and prepare transaction data (CSV)."""


@data.command("synth")
@click.option("--rows", type=click.IntRange(min=1), required=True, help="Rows to generate.")
@click.option("--out", type=PATH, required=True, help="CSV file to write.")
@click.option(
    "--fraud-rate",
    type=FiniteFloat(0.0, 1.0),
    default=KAGGLE_FRAUD_RATE,
    help="Share of fraudulent rows.",
)
@click.option("--seed", type=int, default=42, help="Same seed, byte-identical file.")
@_QUIET
def data_synth(*, rows: int, out: Path, fraud_rate: float, seed: int, quiet: bool) -> None:
    """Write synthetic card transactions with the Kaggle credit-card schema."""
    with progress_display(quiet=quiet) as display:
        summary = write_synth(
            out, rows, fraud_rate=fraud_rate, seed=seed, progress=stage(display, "synth")
        )
    click.echo(f"wrote {summary.rows} rows ({summary.positives} positives) to {summary.path}")


@data.command("prepare")
@click.option(
    "--input",
    "input_path",
    type=PATH,
    required=True,
    envvar="FEDD_DATA_PREPARE_INPUT",
    help="Labelled CSV to split.",
)
@click.option("--peers", type=click.IntRange(min=1), required=True, help="Number of peer shards.")
@click.option("--out-root", type=DIR, required=True, help="Directory for processed/ and clients/.")
@click.option("--label", default="Class", help="Name of the 0/1 label column.")
@click.option(
    "--test-size",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.2,
    help="Share of each class held out for testing.",
)
@click.option("--seed", type=int, default=42, help="Seed of the split and the partition.")
@_PARTITION
@_ALPHA
@_QUIET
def data_prepare(
    *,
    input_path: Path,
    peers: int,
    out_root: Path,
    label: str,
    test_size: float,
    seed: int,
    partition: PartitionScheme,
    alpha: float,
    quiet: bool,
) -> None:
    """Split into train/test, standardize with train statistics, cut peer shards."""
    with progress_display(quiet=quiet) as display:
        report = prepare(
            input_path,
            peers,
            out_root,
            label=label,
            test_size=test_size,
            seed=seed,
            scheme=partition,
            alpha=alpha,
            progress=display,
        )
    for line in report.lines():
        click.echo(line)


@main.group("train")
def train_group() -> None:
    """Train models outside the federation."""


@train_group.command("centralized")
@click.option(
    "--train",
    "train_path",
    type=PATH,
    required=True,
    envvar="FEDD_TRAIN_CENTRALIZED_TRAIN",
    help="Training CSV.",
)
@click.option(
    "--test",
    "test_path",
    type=PATH,
    required=True,
    envvar="FEDD_TRAIN_CENTRALIZED_TEST",
    help="Test CSV.",
)
@click.option("--label", default="Class", help="Name of the 0/1 label column.")
@click.option("--epochs", type=click.IntRange(min=1), default=2)
@click.option("--lr", type=FiniteFloat(0.0, min_open=True), default=0.1, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512)
@click.option("--l2", type=FiniteFloat(0.0), default=0.0, help="L2 penalty on the weights.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none")
@click.option(
    "--threshold", type=FiniteFloat(0.0, 1.0), default=0.5, help="For precision/recall/F1."
)
@click.option("--seed", type=int, default=42)
@click.option("--out-dir", type=DIR, default=Path("outputs"), help="Where models/ and metrics/ go.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="FEDD_TRAIN_CENTRALIZED_JSON",
    help="Print one JSON object instead of a table.",
)
@_QUIET
def train_centralized(
    *,
    train_path: Path,
    test_path: Path,
    label: str,
    epochs: int,
    lr: float,
    batch_size: int,
    l2: float,
    class_weight: ClassWeight,
    threshold: float,
    seed: int,
    out_dir: Path,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train on all training rows at once: the baseline for federated runs."""
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        l2=l2,
        class_weight=class_weight,
        seed=seed,
        threshold=threshold,
    )
    with progress_display(quiet=quiet) as display:
        result = run_centralized(
            train_path, test_path, out_dir, label=label, config=config, progress=display
        )
    if as_json:
        click.echo(json.dumps(result.record()))
    else:
        for line in result.lines():
            click.echo(line)


@main.command("demo")
@click.option("--out", type=DIR, default=None, help="Base directory [default: current directory].")
@click.option("--rows", type=click.IntRange(min=1), default=KAGGLE_ROWS, help="Rows to synthesize.")
@click.option("--peers", type=click.IntRange(min=2), default=3, help="Peer processes.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, help="Federated rounds.")
@click.option(
    "--secagg",
    type=click.Choice(["off", "full", "plus"]),
    default="full",
    help="Plain FedAvg, SecAgg, or SecAgg+.",
)
@_PARTITION
@_ALPHA
@click.option(
    "--local-epochs",
    type=click.IntRange(0, 1000),  # the hub's --local-epochs, which a round carries
    default=0,
    help="Epochs each peer trains per round (0: as many as --peers, which matches one "
    "centralized epoch of SGD steps).",
)
@_QUIET
def demo(
    *,
    out: Path | None,
    rows: int,
    peers: int,
    rounds: int,
    secagg: str,
    partition: PartitionScheme,
    alpha: float,
    local_epochs: int,
    quiet: bool,
) -> None:
    """Run the whole pipeline locally: data, shards, baseline, hub and peers, report."""
    run_demo(
        Path.cwd() if out is None else out,
        rows=rows,
        peers=peers,
        rounds=rounds,
        secagg=secagg,
        partition=partition,
        alpha=alpha,
        local_epochs=local_epochs,
        quiet=quiet,
        echo=click.echo,
    )


@main.command("report")
@click.option("--state-dir", type=DIR, default=Path("state/hub"), help="The hub's state directory.")
@click.option(
    "--centralized",
    type=PATH,
    default=Path("outputs/metrics/centralized_metrics.csv"),
    help="The baseline's metrics, from `fedd train centralized`.",
)
@click.option("--out", type=DIR, default=Path("outputs"), help="Where metrics/ and plots/ go.")
@click.option(
    "--tolerance",
    type=FiniteFloat(0.0),
    default=DEFAULT_TOLERANCE,
    help="Largest |federated - centralized| ROC-AUC and F1 that count as equivalent.",
)
def report(*, state_dir: Path, centralized: Path, out: Path, tolerance: float) -> None:
    """Plots, performance figures and the equivalence verdict of a federated run."""
    from fedd.report.maker import make_report

    for line in make_report(state_dir, centralized, out, tolerance=tolerance).lines():
        click.echo(line)


EXIT_WRONG_RESULT = 3


@main.command()
@click.option("--peers", type=click.IntRange(2, 10_000), default=10, help="Number of peers.")
@click.option(
    "--secagg",
    type=click.Choice(["off", "full", "plus"]),
    default="plus",
    help="off: plain uploads; full: SecAgg (complete graph); plus: SecAgg+ (sparse).",
)
@click.option("--dim", type=click.IntRange(1, 2**22), default=1000, help="Values per input vector.")
@click.option(
    "--dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    help="Fraction of peers that drop out in each round.",
)
@click.option(
    "--dropout-stage",
    type=click.Choice(list(DROPOUT_STAGES)),
    default="mixed",
    help="Where dropping peers vanish; mixed: a random stage for each.",
)
@click.option(
    "--threshold",
    type=click.IntRange(2),
    default=None,
    help="Shamir threshold t (default: chosen for --peers, --dropout-budget, --corrupt).",
)
@click.option(
    "--degree",
    type=click.IntRange(2),
    default=None,
    help="SecAgg+ graph degree k (default: chosen like --threshold).",
)
@click.option(
    "--dropout-budget",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Dropout fraction the parameters must tolerate [default: max(0.05, --dropout)].",
)
@click.option(
    "--corrupt",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    help="Fraction of peers assumed to collude with the hub, for choosing k and t.",
)
@click.option("--rounds", type=click.IntRange(1), default=1, help="Rounds to run.")
@click.option("--seed", type=int, default=42, help="Seed for inputs, dropouts and graphs.")
@click.option(
    "--mod-bits",
    type=click.Choice(["32", "64"]),
    default="32",
    help="Vectors are summed mod 2**mod-bits.",
)
@click.option(
    "--active",
    is_flag=True,
    help="Active-adversary variant: signed advertisements and a consistency check.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per round (JSON lines).")
@click.option(
    "--dump",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each round's inputs, survivors and aggregate as CSV under this directory.",
)
def simulate(
    peers: int,
    secagg: str,
    dim: int,
    dropout: float,
    dropout_stage: str,
    threshold: int | None,
    degree: int | None,
    dropout_budget: float | None,
    corrupt: float,
    rounds: int,
    seed: int,
    mod_bits: str,
    active: bool,
    as_json: bool,
    dump: Path | None,
) -> None:
    """Run secure aggregation rounds in one process, without a network, and check the sums.

    Exits 0 when every round behaved correctly (an abort below threshold is
    correct), 3 when a result was wrong.
    """
    config = SimConfig(
        peers=peers,
        mode=secagg,
        dim=dim,
        dropout=dropout,
        dropout_stage=dropout_stage,
        threshold=threshold,
        degree=degree,
        dropout_budget=dropout_budget,
        corrupt=corrupt,
        rounds=rounds,
        seed=seed,
        mod_bits=int(mod_bits),
        dump=dump,
        active=active,
    )
    reports = run_simulation(config)  # an impossible configuration fails here, before the header
    wrong = 0
    if not as_json:
        click.echo(_SIM_HEADER)
    for report in reports:
        wrong += not report.correct
        if as_json:
            click.echo(json.dumps(report.as_dict()))
        else:
            click.echo(_sim_row(report))
            if report.reason:
                click.echo(f"      reason: {report.reason}")
    if wrong:
        click.echo(f"fedd: error: {wrong} round(s) produced a wrong result", err=True)
        sys.exit(EXIT_WRONG_RESULT)


_SIM_HEADER = (
    f"{'round':>5} {'status':>7} {'n':>6} {'surv':>6} {'k':>5} {'t':>5} {'hub_s':>8} "
    f"{'peer_s':>8} {'round_s':>8} {'up_B':>10} {'down_B':>10} {'exact':>5}"
)


def _sim_row(r: RoundReport) -> str:
    exact = "-" if r.exact is None else ("yes" if r.exact else "NO")
    return (
        f"{r.round:>5} {r.status:>7} {r.n:>6} {r.survivors:>6} {r.k:>5} {r.t:>5} "
        f"{r.hub_seconds:>8.3f} {r.peer_seconds_median:>8.4f} {r.round_seconds:>8.3f} "
        f"{r.peer_bytes_up_median:>10} {r.peer_bytes_down_median:>10} {exact:>5}"
    )


for _command in (start, status, keys):
    main.add_command(_command)
