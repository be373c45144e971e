"""Federated strategies against the centralized baseline, round by round, on skewed peers.

    python -m bench.strategies [--rows 284807] [--peers 10] [--rounds 20] [--seed 42]
        [--partition iid --partition dirichlet:0.1 ...]
        [--strategy fedavg --strategy fedadam,server_lr=0.03 --strategy fedprox,mu=0.01 ...]
        [--workdir DIR] [--csv PATH]

The data are `fedd data synth`'s (Kaggle schema, fraud rate 0.172%), cut
into one raw file per peer as `fedd data split` cuts them: iid, Dirichlet
label skew (`dirichlet:ALPHA`; at 0.1 most of 10 peers hold no fraud at
all) or Dirichlet size skew (`quantity:ALPHA`), with seed 42 (`--seed`), or
the first seed after it that leaves no peer without rows (which `fedd data
split` refuses). Each peer holds out a fifth
of each class of its rows, as `fedd start peer` does.

The federation runs in this process: the real hub (`Hub`: its rounds, its
commits and CSV state, its federated statistics and scores) and one real
peer agent (`PeerAgent`: its local training, its scoring) per file, their
ZeroMQ sockets replaced by lists that a pump moves every frame between,
through the wire encoding (`tests.daemon.hostile.InProcessFederation`, as
`bench.fuzz` uses it). Rounds are plain (`--secagg off`): a masked round
adds the same fixed-point vectors and decodes the same sum (the protocol's
tests prove it), and a benchmark of learning need not pay for key agreement.
Each peer trains `--peers` local epochs per round, as `fedd demo` does, so
a round is as many sequential SGD steps as one epoch over all the training
rows; the federation's scores are the hub's own, from metrics_log.csv:
ROC-AUC and PR-AUC of the peers' binned score counts (within their binning
bounds), F1 at 0.5, and the federation's chosen threshold (`best_threshold`,
where the binned counts give the best F1) with its F1.

The centralized baseline pools every peer's training rows (the one place
where pooling is the point), standardizes them with their own statistics
and trains the same logistic regression with the same settings (learning
rate 0.1, batches of 512, no class weights) for the same budget: one epoch
of sequential SGD steps per round, the `fedd demo` match of rounds x local
epochs / peers. (Its epoch k is one call of `train` with seed 42 + k, so the
minibatch orders differ from one `fedd train centralized --epochs k` run;
the budget is the same.) It is scored on the pooled held-out rows, exactly:
ROC-AUC, PR-AUC, F1 at 0.5, and F1 at the federation's chosen threshold of
the same round.

The federated model of a round is *equivalent* when its ROC-AUC and its F1
at the federation's chosen threshold are within ±0.01 of the baseline's,
F1 at the same threshold on both sides; the summary gives the first round
from which every later round is equivalent ("stays"). It prints a summary
per partition and strategy and, with `--csv`, writes every round.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedd.learner.errors import DataError
from fedd.learner.metrics import evaluate
from fedd.learner.model import make_training_set, predict_proba, train, zeros
from fedd.learner.partition import PARTITIONS, PartitionScheme
from fedd.learner.pool import pool_clients
from fedd.learner.prepare import column_stats
from fedd.learner.scaling import standardize
from fedd.learner.shards import shard_path
from fedd.learner.split import split
from fedd.learner.strategy import STRATEGIES, Strategy
from fedd.learner.synth import KAGGLE_ROWS, write_synth
from tests.daemon.hostile import InProcessFederation

__all__ = ["RoundScores", "Run", "Spec", "main", "parse_spec", "run_partition"]

TOLERANCE = 0.01
SEED = 42
HOLDOUT = 0.2
DEFAULT_PARTITIONS = ("iid", "dirichlet:0.5", "dirichlet:0.1", "quantity:0.5")
DEFAULT_STRATEGIES = (
    "fedavg",
    "fedavgm",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedprox,mu=0.01",
    "scaffold",
)


@dataclass(frozen=True)
class Spec:
    """A strategy as run: its label, the hub's strategy and FedProx's mu."""

    label: str
    strategy: Strategy
    mu: float = 0.0


def parse_spec(text: str) -> Spec:
    """`NAME[,key=value...]`: a strategy of `learner.strategy` (or `fedprox`, FedAvg
    with a proximal term) and its settings; `mu` is FedProx's proximal_mu."""
    name, *pairs = text.split(",")
    settings: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{pair!r}: settings are key=value")
        settings[key.strip()] = float(value)
    mu = settings.pop("mu", 0.0)
    if name == "fedprox":
        name, mu = "fedavg", mu or 0.01
    if name not in STRATEGIES:
        raise argparse.ArgumentTypeError(f"{name!r}: one of {', '.join(STRATEGIES)}, fedprox")
    try:
        strategy = Strategy(name, **settings)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    label = strategy.describe() + (f" + prox mu {mu:g}" if mu else "")
    return Spec(label, strategy, mu)


def _partition(text: str) -> tuple[PartitionScheme, float]:
    name, _, alpha = text.partition(":")
    for scheme in PARTITIONS:
        if scheme == name:
            return scheme, float(alpha or 0.5)
    raise argparse.ArgumentTypeError(f"{name!r}: one of {', '.join(PARTITIONS)}")


@dataclass(frozen=True)
class RoundScores:
    """One training round, federated against centralized."""

    round: int  # the training round, 1..rounds
    roc_auc: tuple[float, float]  # (federated, centralized)
    pr_auc: tuple[float, float]
    f1_half: tuple[float, float]  # at probability 0.5
    threshold: float  # the federation's chosen threshold
    f1_chosen: tuple[float, float]  # at `threshold`, on both sides

    @property
    def equivalent(self) -> bool:
        return all(round(abs(a - b), 12) <= TOLERANCE for a, b in (self.roc_auc, self.f1_chosen))


@dataclass
class Run:
    partition: str
    spec: Spec
    seconds: float
    rounds: list[RoundScores] = field(default_factory=list)

    def stays(self) -> int | None:
        """The first round from which every round is equivalent (None: never)."""
        first = None
        for scores in self.rounds:
            if not scores.equivalent:
                first = None
            elif first is None:
                first = scores.round
        return first

    def at(self, number: int) -> RoundScores | None:
        return next((r for r in self.rounds if r.round == number), None)


@dataclass(frozen=True)
class Baseline:
    """The centralized model's held-out labels and probabilities, round by round."""

    labels: list[int]
    probs: list[list[float]]  # probs[k - 1]: after round k's budget


def baseline(shards: Path, rounds: int) -> Baseline:
    pooled = pool_clients(shards, holdout=HOLDOUT, seed=SEED)
    stats = column_stats(pooled.train, range(pooled.train.n_rows))
    rows = make_training_set(standardize(pooled.train, stats), batch_size=512, seed=SEED)
    holdout = standardize(pooled.holdout, stats)
    params = zeros(len(stats))
    probs = []
    for k in range(1, rounds + 1):
        params, _ = train(params, rows, epochs=1, lr=0.1, seed=SEED + k)
        probs.append(predict_proba(params, holdout))
    return Baseline(list(holdout.y), probs)


def federate(shards: Sequence[Path], root: Path, spec: Spec, rounds: int) -> list[RoundScores]:
    """Run the federation; its federated scores per training round (no baseline yet)."""
    peers = len(shards)
    shutil.rmtree(root, ignore_errors=True)  # every run starts afresh (a --workdir is reused)
    options = {
        "local_epochs": peers,
        "strategy": spec.strategy,
        "proximal_mu": spec.mu,
        "train_timeout": 3600.0,
        "stage_timeout": 600.0,
        "liveness_s": 600.0,
    }
    with InProcessFederation(
        root, peers=peers, secagg="off", rounds=rounds, shards=tuple(shards), hub_options=options
    ) as fed:
        fed.run_rounds(timeout=7200.0)
        store = fed.hub.store
        training = [r.round for r, _, _ in store.recent_rounds(10_000) if r.kind == "training"]
        scores = {m.round: m for m in store.metrics_rows() if m.source == "federated"}
    out = []
    for k, number in enumerate(training, 1):
        m = scores.get(number)
        if m is not None:
            out.append(
                RoundScores(
                    k,
                    (m.roc_auc, 0.0),
                    (m.pr_auc, 0.0),
                    (m.f1, 0.0),
                    m.best_threshold,
                    (m.best_f1, 0.0),
                )
            )
    return out


def against(federated: list[RoundScores], base: Baseline) -> list[RoundScores]:
    """Fill in the baseline's side of each round."""
    out = []
    for r in federated:
        probs = base.probs[r.round - 1]
        half = evaluate(base.labels, probs, 0.5)
        chosen = evaluate(base.labels, probs, r.threshold)
        out.append(
            RoundScores(
                r.round,
                (r.roc_auc[0], half.roc_auc),
                (r.pr_auc[0], half.pr_auc),
                (r.f1_half[0], half.f1),
                r.threshold,
                (r.f1_chosen[0], chosen.f1),
            )
        )
    return out


def run_partition(
    raw: Path,
    work: Path,
    scheme: PartitionScheme,
    alpha: float,
    peers: int,
    rounds: int,
    specs: list[Spec],
    first_seed: int = SEED,
) -> list[Run]:
    name = scheme if scheme == "iid" else f"{scheme}({alpha:g})"
    shards_dir = work / f"{scheme}-{alpha:g}"
    # Strong skew can leave a peer without a single row, which `fedd data split` refuses
    # (such a peer has nothing to train on): the first seed from `first_seed` that gives
    # every peer rows cuts the files.
    for seed in range(first_seed, first_seed + 100):
        try:
            report = split(raw, peers, shards_dir, scheme=scheme, alpha=alpha, seed=seed)
            break
        except DataError:
            continue
    else:
        raise DataError(f"{name}: no seed from {first_seed} on gives each of {peers} peers rows")
    frauds = [p.positives for p in report.peers]
    print(
        f"{name} (partition seed {seed}): frauds per peer {frauds}, "
        f"rows per peer {[p.rows for p in report.peers]}"
    )
    base = baseline(shards_dir, rounds)
    shards = [shard_path(shards_dir, k) for k in range(1, peers + 1)]
    runs = []
    for index, spec in enumerate(specs):
        started = time.perf_counter()
        federated = federate(shards, work / f"{scheme}-{alpha:g}-{index}", spec, rounds)
        run = Run(name, spec, time.perf_counter() - started, against(federated, base))
        runs.append(run)
        print(f"  {spec.label}: {_summary(run, rounds)} ({run.seconds:.0f}s)", flush=True)
    return runs


def _summary(run: Run, rounds: int) -> str:
    stays = run.stays()
    parts = [f"equivalent from round {stays}" if stays else "never equivalent and staying so"]
    for number in sorted({min(10, rounds), rounds}):
        r = run.at(number)
        if r is not None:
            parts.append(
                f"round {number}: roc {r.roc_auc[0]:.4f}/{r.roc_auc[1]:.4f} "
                f"f1@t {r.f1_chosen[0]:.3f}/{r.f1_chosen[1]:.3f} (t {r.threshold:.3f}) "
                f"f1@0.5 {r.f1_half[0]:.3f}/{r.f1_half[1]:.3f}"
            )
    return "; ".join(parts)


def table(runs: list[Run], rounds: int) -> list[str]:
    """The summary: per partition and strategy, where equivalence starts, and round 10's
    and the last round's differences (federated - centralized)."""
    mid = min(10, rounds)
    lines = [
        f"| partition | strategy | equivalent from | ΔROC-AUC @{mid} | ΔF1@t @{mid} | "
        f"F1@0.5 fed/cen @{mid} | ΔROC-AUC @{rounds} | ΔF1@t @{rounds} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        a, b = run.at(mid), run.at(rounds)
        stays = run.stays()
        cells = [run.partition, run.spec.label, f"round {stays}" if stays else "not reached"]
        for r in (a,):
            cells += (
                [
                    f"{r.roc_auc[0] - r.roc_auc[1]:+.4f}",
                    f"{r.f1_chosen[0] - r.f1_chosen[1]:+.3f}",
                    f"{r.f1_half[0]:.2f}/{r.f1_half[1]:.2f}",
                ]
                if r
                else ["", "", ""]
            )
        cells += (
            [f"{b.roc_auc[0] - b.roc_auc[1]:+.4f}", f"{b.f1_chosen[0] - b.f1_chosen[1]:+.3f}"]
            if b
            else ["", ""]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_csv(path: Path, runs: list[Run]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(
            [
                "partition", "strategy", "mu", "round",
                "roc_auc_fed", "roc_auc_cen", "pr_auc_fed", "pr_auc_cen",
                "f1_half_fed", "f1_half_cen", "threshold", "f1_chosen_fed", "f1_chosen_cen",
                "equivalent",
            ]
        )  # fmt: skip
        for run in runs:
            for r in run.rounds:
                out.writerow(
                    [
                        run.partition, run.spec.strategy.describe(), run.spec.mu, r.round,
                        *r.roc_auc, *r.pr_auc, *r.f1_half, r.threshold, *r.f1_chosen,
                        int(r.equivalent),
                    ]
                )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=KAGGLE_ROWS)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--partition", type=_partition, action="append")
    parser.add_argument("--strategy", type=parse_spec, action="append")
    parser.add_argument("--seed", type=int, default=SEED, help="the first partition seed to try")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args(argv)
    partitions = args.partition or [_partition(p) for p in DEFAULT_PARTITIONS]
    specs = args.strategy or [parse_spec(s) for s in DEFAULT_STRATEGIES]
    logging.getLogger("fedd").setLevel(logging.ERROR)  # the daemons' round lines
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        raw = work / "creditcard.csv"
        if not raw.exists():
            write_synth(raw, args.rows, seed=SEED)
        runs = []
        for scheme, alpha in partitions:
            runs += run_partition(
                raw, work, scheme, alpha, args.peers, args.rounds, specs, args.seed
            )
    print(
        f"\n{args.peers} peers, {args.rounds} rounds of {args.peers} local epochs (one "
        f"centralized epoch of SGD steps each), {args.rows} rows; Δ = federated - centralized, "
        f"F1@t at the federation's chosen threshold on both sides"
    )
    for line in table(runs, args.rounds):
        print(line)
    if args.csv is not None:
        write_csv(args.csv, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
