"""`fedd demo`: the whole pipeline on one machine, one step after another.

Layout under the base directory (default: the current directory):

    data/creditcard.csv   used if present, else synthesized
    data/processed/...    data/clients/peer_*/train.csv   (see learner.prepare)
    outputs/models/...    outputs/metrics/...

Each step is one function taking the shared `DemoRun` and printing what it
did; `STEPS` lists them in order, so a new stage (the federated rounds) is one
more function in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from learner.centralized import CentralizedResult, run_centralized
from learner.prepare import PrepareReport, prepare
from learner.progress import progress_display
from learner.synth import KAGGLE_ROWS, write_synth

__all__ = ["STEPS", "DemoRun", "run_demo"]


@dataclass
class DemoRun:
    """Where the demo reads and writes, its options, and what the steps produced."""

    base: Path
    rows: int
    peers: int
    quiet: bool
    echo: Callable[[str], None]
    prepared: PrepareReport | None = field(default=None)
    centralized: CentralizedResult | None = field(default=None)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def raw_csv(self) -> Path:
        return self.data_dir / "creditcard.csv"

    @property
    def outputs_dir(self) -> Path:
        return self.base / "outputs"


def _data_step(run: DemoRun) -> None:
    if run.raw_csv.exists():
        run.echo(f"using {run.raw_csv} (delete it to synthesize a new one)")
        return
    with progress_display("synth", quiet=run.quiet) as progress:
        summary = write_synth(run.raw_csv, run.rows, progress=progress)
    run.echo(f"synthesized {summary.rows} rows ({summary.positives} frauds) -> {summary.path}")


def _prepare_step(run: DemoRun) -> None:
    run.prepared = prepare(run.raw_csv, run.peers, run.data_dir)
    for line in run.prepared.lines():
        run.echo(line)


def _centralized_step(run: DemoRun) -> None:
    processed = run.data_dir / "processed"
    with progress_display("train", quiet=run.quiet) as progress:
        run.centralized = run_centralized(
            processed / "train.csv", processed / "test.csv", run.outputs_dir, progress=progress
        )
    for line in run.centralized.lines():
        run.echo(line)


STEPS: tuple[tuple[str, Callable[[DemoRun], None]], ...] = (
    ("data", _data_step),
    ("prepare", _prepare_step),
    ("centralized baseline", _centralized_step),
)


def run_demo(
    base: Path,
    *,
    rows: int = KAGGLE_ROWS,
    peers: int = 3,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> DemoRun:
    """Run every step of `STEPS` under `base`; return what they produced.

    Raises `DataError` when a step cannot proceed (the message says why).
    """
    run = DemoRun(base=base, rows=rows, peers=peers, quiet=quiet, echo=echo)
    for number, (title, step) in enumerate(STEPS, 1):
        echo(f"== {number}/{len(STEPS)} {title}")
        step(run)
    echo(f"== done: data in {run.data_dir}, outputs in {run.outputs_dir}")
    return run
