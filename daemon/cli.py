"""The `fedd` command line: a shell over the library.

Each command parses its options, builds a config and calls one function.
User mistakes (bad flags, unusable files, impossible parameters) become one
line on stderr and a non-zero exit; anything else is a bug and keeps its
traceback. Every option can also be set through an environment variable,
`FEDD_<GROUP>_<COMMAND>_<OPTION>` (shown in `--help`), so that containers can
be configured without long command lines.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import click

from crypto.errors import ParameterError
from daemon.demo import run_demo
from daemon.simulate import DROPOUT_STAGES, RoundReport, SimConfig, run_simulation
from learner.centralized import TrainConfig, run_centralized
from learner.errors import DataError
from learner.model import CLASS_WEIGHTS, ClassWeight
from learner.partition import PARTITIONS, PartitionScheme
from learner.prepare import prepare
from learner.progress import progress_display
from learner.synth import KAGGLE_FRAUD_RATE, KAGGLE_ROWS, write_synth

__all__ = ["main"]

EXIT_USER_ERROR = 1

# Exceptions whose message is written for the user: print it, exit non-zero.
USER_ERRORS: tuple[type[Exception], ...] = (DataError, ParameterError)


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
def main(verbose: int) -> None:
    """fedd: federated fraud-detection training with secure aggregation."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --- data, train, demo --------------------------------------------------------


class _FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (which slip through range checks)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


_PATH = click.Path(path_type=Path, dir_okay=False)
_DIR = click.Path(path_type=Path, file_okay=False)


@main.group()
def data() -> None:
    """Make and prepare transaction data (CSV)."""


@data.command("synth")
@click.option("--rows", type=click.IntRange(min=1), required=True, help="Rows to generate.")
@click.option("--out", type=_PATH, required=True, help="CSV file to write.")
@click.option(
    "--fraud-rate",
    type=_FiniteFloat(0.0, 1.0),
    default=KAGGLE_FRAUD_RATE,
    help="Share of fraudulent rows.",
)
@click.option("--seed", type=int, default=42, help="Same seed, byte-identical file.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def data_synth(*, rows: int, out: Path, fraud_rate: float, seed: int, quiet: bool) -> None:
    """Write synthetic card transactions with the Kaggle credit-card schema."""
    with progress_display("synth", quiet=quiet) as progress:
        summary = write_synth(out, rows, fraud_rate=fraud_rate, seed=seed, progress=progress)
    click.echo(f"wrote {summary.rows} rows ({summary.positives} positives) to {summary.path}")


@data.command("prepare")
@click.option("--input", "input_path", type=_PATH, required=True, help="Labelled CSV to split.")
@click.option("--peers", type=click.IntRange(min=1), required=True, help="Number of peer shards.")
@click.option("--out-root", type=_DIR, required=True, help="Directory for processed/ and clients/.")
@click.option("--label", default="Class", help="Name of the 0/1 label column.")
@click.option(
    "--test-size",
    type=_FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.2,
    help="Share of each class held out for testing.",
)
@click.option("--seed", type=int, default=42, help="Seed of the split and the partition.")
@click.option(
    "--partition",
    "scheme",
    type=click.Choice(PARTITIONS),
    default="iid",
    help="iid, label skew (dirichlet) or size skew (quantity).",
)
@click.option(
    "--alpha",
    type=_FiniteFloat(0.0, min_open=True),
    default=0.5,
    help="Dirichlet concentration: smaller is more skewed.",
)
def data_prepare(
    *,
    input_path: Path,
    peers: int,
    out_root: Path,
    label: str,
    test_size: float,
    seed: int,
    scheme: PartitionScheme,
    alpha: float,
) -> None:
    """Split into train/test, standardize with train statistics, cut peer shards."""
    report = prepare(
        input_path,
        peers,
        out_root,
        label=label,
        test_size=test_size,
        seed=seed,
        scheme=scheme,
        alpha=alpha,
    )
    for line in report.lines():
        click.echo(line)


@main.group("train")
def train_group() -> None:
    """Train models outside the federation."""


@train_group.command("centralized")
@click.option("--train", "train_path", type=_PATH, required=True, help="Training CSV.")
@click.option("--test", "test_path", type=_PATH, required=True, help="Test CSV.")
@click.option("--label", default="Class", help="Name of the 0/1 label column.")
@click.option("--epochs", type=click.IntRange(min=1), default=2)
@click.option("--lr", type=_FiniteFloat(0.0, min_open=True), default=0.1, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512)
@click.option("--l2", type=_FiniteFloat(0.0), default=0.0, help="L2 penalty on the weights.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none")
@click.option(
    "--threshold", type=_FiniteFloat(0.0, 1.0), default=0.5, help="For precision/recall/F1."
)
@click.option("--seed", type=int, default=42)
@click.option(
    "--out-dir", type=_DIR, default=Path("outputs"), help="Where models/ and metrics/ go."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--quiet", is_flag=True, help="No progress display.")
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
    with progress_display("train", quiet=quiet) as progress:
        result = run_centralized(
            train_path, test_path, out_dir, label=label, config=config, progress=progress
        )
    if as_json:
        click.echo(json.dumps(result.record()))
    else:
        for line in result.lines():
            click.echo(line)


@main.command("demo")
@click.option("--out", type=_DIR, default=None, help="Base directory [default: current directory].")
@click.option("--rows", type=click.IntRange(min=1), default=KAGGLE_ROWS, help="Rows to synthesize.")
@click.option("--peers", type=click.IntRange(min=1), default=3)
@click.option("--quiet", is_flag=True, help="No progress display.")
def demo(*, out: Path | None, rows: int, peers: int, quiet: bool) -> None:
    """Run the pipeline end to end on local data (synthesized if absent)."""
    run_demo(
        Path.cwd() if out is None else out, rows=rows, peers=peers, quiet=quiet, echo=click.echo
    )


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
    )
    wrong = 0
    if not as_json:
        click.echo(_SIM_HEADER)
    for report in run_simulation(config):
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
