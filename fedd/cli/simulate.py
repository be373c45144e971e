"""`fedd simulate`: secure aggregation rounds in one process, checked (see `fedd.simulate`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fedd.cli.options import secagg_threshold as secagg_threshold_of
from fedd.cli.options import secagg_threshold_options, warn_old_threshold
from fedd.simulate import DROPOUT_STAGES, RoundReport, SimConfig, run_simulation

__all__ = ["EXIT_WRONG_RESULT", "simulate"]

EXIT_WRONG_RESULT = 3


@click.command()
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
@secagg_threshold_options(
    2, "Shamir threshold t (default: chosen for --peers, --dropout-budget, --corrupt)."
)
@click.option(
    "--degree",
    type=click.IntRange(2),
    default=None,
    help="SecAgg+ graph degree k (default: chosen like --secagg-threshold).",
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
    help="Active-adversary variant: signed advertisements, a graph seed the peers draw "
    "(plus), and a consistency check.",
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
    secagg_threshold: int | None,
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
        threshold=secagg_threshold_of(secagg_threshold, threshold),
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
    warn_old_threshold(threshold)
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
