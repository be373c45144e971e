"""`fedd report`: the federated run against the centralized baseline (see `fedd.report`)."""

from __future__ import annotations

from pathlib import Path

import click

from fedd.cli.options import DIR, PATH, FiniteFloat
from fedd.report.decision import DEFAULT_TOLERANCE

__all__ = ["report"]


@click.command("report")
@click.option("--state-dir", type=DIR, default=Path("state/hub"), help="The hub's state directory.")
@click.option(
    "--centralized",
    type=PATH,
    default=Path("outputs/metrics/centralized_metrics.csv"),
    help="The baseline's metrics, from `fedd train centralized`.",
)
@click.option(
    "--row-scores",
    type=PATH,
    default=None,
    help="Both models' scores of each held-out row (`fedd demo` writes them) "
    "[default: holdout_scores.csv beside --centralized, if it is there and of this run].",
)
@click.option("--out", type=DIR, default=Path("outputs"), help="Where metrics/ and plots/ go.")
@click.option(
    "--tolerance",
    type=FiniteFloat(0.0),
    default=DEFAULT_TOLERANCE,
    help="Largest |federated - centralized| ROC-AUC and F1 that count as equivalent.",
)
def report(
    *, state_dir: Path, centralized: Path, row_scores: Path | None, out: Path, tolerance: float
) -> None:
    """Plots, performance figures and the equivalence verdict of a federated run."""
    from fedd.report.maker import make_report

    result = make_report(state_dir, centralized, out, tolerance=tolerance, row_scores=row_scores)
    for line in result.lines():
        click.echo(line)
