"""How much training each side of the comparison had, in the two senses of "as much".

A federation and a centralized run can be given equal training in two ways:

- rows seen: passes over the pooled data. The centralized run sees its rows
  `epochs` times; the federation sees every peer's rows `local_epochs` times
  in each completed training round.
- sequential SGD steps along the model's path. The centralized model takes
  one step per minibatch; in a FedAvg round the peers step in parallel and
  the round's model is the mean of their endpoints, so the global model
  moves about as far as one peer's steps in it: `local_epochs` times the
  minibatches of a peer's share.

The two cannot both match unless there is one peer: with P peers, matching
steps gives the federation P times the rows seen, and matching rows seen
gives the centralized model P times the steps. `fedd demo` matches steps
(centralized epochs = rounds x local epochs / peers), because at a fixed
learning rate how far SGD gets is a matter of steps; the report shows both
and warns when the runs match in neither, with the --epochs that would
match each.

The federation's figures are estimates from what the hub may know: the
peers' training rows from the statistics round, spread evenly over the
peers, and how many of them completed each round.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MATCH",
    "Budget",
    "budget_lines",
    "centralized_budget",
    "federated_budget",
    "sgd_steps",
]

# Two budgets match when the larger is within this factor of the smaller.
MATCH = 1.1


@dataclass(frozen=True, slots=True)
class Budget:
    """One side's training: rows seen, sequential SGD steps, and how they were
    counted; for the centralized side also those of one epoch (0 otherwise)."""

    rows_seen: int
    steps: int
    how: str
    epoch_rows: int = 0
    epoch_steps: int = 0

    def line(self, side: str) -> str:
        seen = f"{self.rows_seen:,} rows seen, {self.steps:,} SGD steps"
        return f"budget       {side}: {seen} ({self.how})"


def sgd_steps(rows: float, batch_size: int, epochs: int) -> int:
    """The minibatch steps of `epochs` passes over `rows` rows."""
    return epochs * math.ceil(rows / batch_size)


def centralized_budget(baseline: Mapping[str, float]) -> Budget | None:
    """From the centralized metrics (`rows`, `epochs`, `batch_size`); None without them."""
    if not all(name in baseline for name in ("rows", "epochs", "batch_size")):
        return None
    rows, epochs = int(baseline["rows"]), int(baseline["epochs"])
    batch = int(baseline["batch_size"])
    steps = sgd_steps(rows, batch, 1)
    return Budget(
        rows * epochs,
        epochs * steps,
        f"{epochs} epochs over {rows:,} rows, minibatches of {batch}",
        rows,
        steps,
    )


def federated_budget(
    settings: Mapping[str, str],
    statistics: tuple[int, int] | None,
    survivors: Sequence[int],
) -> Budget | None:
    """From the run's settings (`local_epochs`, `batch_size`), the statistics round's
    (training rows, peers), and the survivors of each completed training round;
    None when the settings or the statistics are missing."""
    try:
        epochs, batch = int(settings["local_epochs"]), int(settings["batch_size"])
    except (KeyError, ValueError):
        return None
    if statistics is None or epochs < 1 or batch < 1:
        return None
    rows, peers = statistics
    share = rows / peers
    steps_per_round = sgd_steps(share, batch, epochs)
    rows_seen = round(sum(epochs * share * n for n in survivors))
    all_in = all(n == peers for n in survivors)
    return Budget(
        rows_seen,
        steps_per_round * len(survivors),
        f"{len(survivors)} rounds x {epochs} local epochs over a peer's share of about "
        f"{share:,.0f} rows, minibatches of {batch}"
        + ("" if all_in else "; not every peer in every round"),
    )


def _matches(a: int, b: int) -> bool:
    return max(a, b) <= MATCH * min(a, b)


def budget_lines(central: Budget | None, federated: Budget | None) -> list[str]:
    """The budgets for people: one line per side, and which sense they match in, or a
    warning naming the --epochs that would match each."""
    if central is None or federated is None:
        missing = "the centralized metrics" if central is None else "the hub's run.csv"
        return [
            f"budget       not compared: {missing} lack what it takes (an older fedd wrote them)"
        ]
    lines = [central.line("centralized"), federated.line("federated")]
    same = [
        what
        for what, ok in (
            ("rows seen", _matches(central.rows_seen, federated.rows_seen)),
            ("SGD steps", _matches(central.steps, federated.steps)),
        )
        if ok
    ]
    if same:
        lines.append(f"budget       matched in {' and '.join(same)}")
        return lines
    for_steps = max(1, round(federated.steps / central.epoch_steps))
    for_rows = max(1, round(federated.rows_seen / central.epoch_rows))
    lines.append(
        "warning: the two runs had different training in rows seen and in SGD steps, so "
        f"the verdict compares unequal training: train the baseline with --epochs {for_steps} "
        f"to match the federation's SGD steps, or --epochs {for_rows} to match its rows seen"
    )
    return lines
