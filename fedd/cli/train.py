"""`fedd train centralized`: the baseline the federated runs are compared with."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fedd.cli.options import (
    DIR,
    PATH,
    QUIET,
    FiniteFloat,
    reading_options,
)
from fedd.learner.centralized import MIN_STEPS, TrainConfig, run_centralized
from fedd.learner.model import CLASS_WEIGHTS, ClassWeight
from fedd.learner.progress import progress_display

__all__ = ["train_group"]


@click.group("train")
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
@reading_options("--train and --test")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help=f"Passes over the training rows [default: at least 2, and enough for {MIN_STEPS} "
    "minibatch steps].",
)
@click.option("--lr", type=FiniteFloat(0.0, min_open=True), default=0.1, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512)
@click.option("--l2", type=FiniteFloat(0.0), default=0.0, help="L2 penalty on the weights.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none")
@click.option(
    "--threshold", type=FiniteFloat(0.0, 1.0), default=0.5, help="For precision/recall/F1."
)
@click.option("--seed", type=int, default=42)
@click.option(
    "--standardize",
    is_flag=True,
    help="Z-score both files with the training rows' mean and std (for raw files).",
)
@click.option("--out-dir", type=DIR, default=Path("outputs"), help="Where models/ and metrics/ go.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="FEDD_TRAIN_CENTRALIZED_JSON",
    help="Print one JSON object instead of a table.",
)
@QUIET
def train_centralized(
    *,
    train_path: Path,
    test_path: Path,
    label: str,
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
    epochs: int | None,
    lr: float,
    batch_size: int,
    l2: float,
    class_weight: ClassWeight,
    threshold: float,
    seed: int,
    standardize: bool,
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
            train_path,
            test_path,
            out_dir,
            label=label,
            ignore=ignore_columns,
            encoding=encoding,
            fill_missing=fill_missing,
            config=config,
            standardize_rows=standardize,
            progress=display,
        )
    if as_json:
        click.echo(json.dumps(result.record()))
    else:
        for line in result.lines():
            click.echo(line)
    for warning in result.warnings():
        click.echo(f"fedd: warning: {warning}", err=True)
