"""`fedd demo`: the whole pipeline on this machine (the steps are `fedd.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from fedd.cli.options import (
    ALPHA,
    DIR,
    PARTITION,
    QUIET,
    FiniteFloat,
    reading_options,
)
from fedd.cli.strategy import strategy_of, strategy_options
from fedd.demo import run_demo
from fedd.learner.partition import PartitionScheme
from fedd.learner.synth import KAGGLE_ROWS

__all__ = ["demo"]


@click.command("demo")
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
@PARTITION
@ALPHA
@click.option(
    "--local-epochs",
    type=click.IntRange(0, 1000),  # the hub's --local-epochs, which a round carries
    default=0,
    help="Epochs each peer trains per round (0: a multiple of --peers, which matches "
    "centralized epochs in SGD steps, large enough for 2000 steps over the run).",
)
@reading_options("data/creditcard.csv, when it is your own")
@click.option(
    "--holdout",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.2,
    help="Share of each peer's rows held out to score the models on.",
)
@strategy_options
@QUIET
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
    label: str,
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
    holdout: float,
    strategy: str,
    server_lr: float | None,
    server_momentum: float | None,
    beta1: float | None,
    beta2: float | None,
    tau: float | None,
    proximal_mu: float,
    quiet: bool,
) -> None:
    """Run the whole pipeline locally: data, one raw file per institution, baseline,
    hub and peers, report."""
    run_demo(
        Path.cwd() if out is None else out,
        rows=rows,
        peers=peers,
        rounds=rounds,
        secagg=secagg,
        partition=partition,
        alpha=alpha,
        local_epochs=local_epochs,
        label=label,
        ignore_columns=ignore_columns,
        encoding=encoding,
        fill_missing=fill_missing,
        holdout=holdout,
        strategy=strategy_of(strategy, server_lr, server_momentum, beta1, beta2, tau),
        proximal_mu=proximal_mu,
        quiet=quiet,
        echo=click.echo,
    )
