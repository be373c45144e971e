"""`fedd data synth`, `split`, `prepare` and `pool`: make, cut, prepare and (for
comparison only) pool transaction data (CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from fedd.cli.options import (
    ALPHA,
    DIR,
    PARTITION,
    PATH,
    QUIET,
    FiniteFloat,
    fill_missing_option,
    reading_options,
)
from fedd.learner.partition import PartitionScheme
from fedd.learner.pool import pool_clients, write_pooled
from fedd.learner.prepare import prepare
from fedd.learner.progress import progress_display, stage
from fedd.learner.split import split
from fedd.learner.synth import KAGGLE_FRAUD_RATE, write_synth

__all__ = ["data"]


@click.group()
def data() -> None:
    """Make, cut and prepare transaction data (CSV)."""


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
@QUIET
def data_synth(*, rows: int, out: Path, fraud_rate: float, seed: int, quiet: bool) -> None:
    """Write synthetic card transactions with the Kaggle credit-card schema."""
    with progress_display(quiet=quiet) as display:
        summary = write_synth(
            out, rows, fraud_rate=fraud_rate, seed=seed, progress=stage(display, "synth")
        )
    click.echo(f"wrote {summary.rows} rows ({summary.positives} positives) to {summary.path}")


@data.command("split")
@click.option(
    "--input",
    "input_path",
    type=PATH,
    required=True,
    envvar="FEDD_DATA_SPLIT_INPUT",
    help="Labelled CSV to cut.",
)
@click.option("--peers", type=click.IntRange(min=1), required=True, help="Number of peer files.")
@click.option("--out", type=DIR, required=True, help="Directory for peer_1.csv ... peer_K.csv.")
@reading_options()
@click.option("--seed", type=int, default=42, help="Seed of the partition.")
@PARTITION
@ALPHA
@QUIET
def data_split(
    *,
    input_path: Path,
    peers: int,
    out: Path,
    label: str,
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
    seed: int,
    partition: PartitionScheme,
    alpha: float,
    quiet: bool,
) -> None:
    """Cut one raw CSV into one raw file per peer (no scaling, every row once)."""
    with progress_display(quiet=quiet) as display:
        report = split(
            input_path,
            peers,
            out,
            label=label,
            ignore=ignore_columns,
            encoding=encoding,
            fill_missing=fill_missing,
            scheme=partition,
            alpha=alpha,
            seed=seed,
            progress=display,
        )
    for line in report.lines():
        click.echo(line)


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
@reading_options()
@click.option(
    "--test-size",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.2,
    help="Share of each class held out for testing.",
)
@click.option("--seed", type=int, default=42, help="Seed of the split and the partition.")
@PARTITION
@ALPHA
@QUIET
def data_prepare(
    *,
    input_path: Path,
    peers: int,
    out_root: Path,
    label: str,
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
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
            ignore=ignore_columns,
            encoding=encoding,
            fill_missing=fill_missing,
            test_size=test_size,
            seed=seed,
            scheme=partition,
            alpha=alpha,
            progress=display,
        )
    for line in report.lines():
        click.echo(line)


@data.command("pool")
@click.option(
    "--clients",
    type=DIR,
    required=True,
    help="Directory of the institutions' peer_<k>.csv files (from `fedd data split`).",
)
@click.option("--out", type=DIR, required=True, help="Directory for train.csv and holdout.csv.")
@click.option("--label", default="Class", help="Name of the 0/1 label column.")
@fill_missing_option("the files, as each peer's")
@click.option(
    "--holdout",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.2,
    help="Each peer's held-out share, as its `fedd start peer --holdout`.",
)
@click.option(
    "--holdout-seed",
    type=click.IntRange(0),
    default=42,
    help="As each peer's `fedd start peer --holdout-seed`.",
)
def data_pool(
    *,
    clients: Path,
    out: Path,
    label: str,
    fill_missing: float | None,
    holdout: float,
    holdout_seed: int,
) -> None:
    """For comparison only: pool every institution's training rows and held-out rows.

    A federation never pools; the centralized baseline does, on one machine
    that holds every file: `fedd train centralized --train OUT/train.csv
    --test OUT/holdout.csv --standardize`.
    """
    pooled = pool_clients(
        clients, label=label, fill_missing=fill_missing, holdout=holdout, seed=holdout_seed
    )
    train, held = write_pooled(pooled, out)
    click.echo(
        f"pooled {pooled.peers} peers: {pooled.train.n_rows} training rows -> {train}, "
        f"{pooled.holdout.n_rows} held-out rows -> {held} (for comparison only)"
    )
