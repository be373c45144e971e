"""`Commit`: everything one round leaves in the hub's state files, checked whole.

`HubStore.commit` writes it (`daemon.state.store`); its rows are those of
`daemon.state.hubfiles` and `daemon.state.survivors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedd.daemon.state.hubfiles import MODEL, ClientPerfRow, MetricsRow, PerfRow, RoundRow
from fedd.daemon.state.statistics import Statistics
from fedd.daemon.state.survivors import SurvivorRow

__all__ = ["Commit"]


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one round leaves on disk.

    `model` is the global model after the round, `[bias, w_1..w_d]`.
    `delta` is the step the round added to it, in the same order, `mean` the
    survivors' weighted mean update the run's strategy made that step of,
    and `control` (SCAFFOLD runs only) their mean control variate change:
    given exactly when the round is an ok training round, None otherwise (the
    model is then unchanged). `HubStore.commit` checks that `delta` is the
    strategy's step and `model` the previous model plus `delta`, so that
    updates.csv replays to global_model.csv. `metrics` are the scores this
    commit records, of this round's model or earlier ones; `statistics`
    those an ok statistics round computed; `survivors` the peers whose vectors
    the sum of an ok round holds, as many as `round` counts (none if aborted).
    """

    round: RoundRow
    model: Sequence[float]
    metrics: Sequence[MetricsRow]
    perf: PerfRow
    clients: Sequence[ClientPerfRow]
    delta: Sequence[float] | None = None
    statistics: Statistics | None = None
    mean: Sequence[float] | None = None
    control: Sequence[float] | None = None
    survivors: Sequence[SurvivorRow] = ()

    def __post_init__(self) -> None:
        for name in ("clients", "metrics", "survivors"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        number = self.round.round
        rounds = [self.perf.round, *(row.round for row in self.clients)]
        rounds += [row.round for row in self.survivors]
        if any(round_ != number for round_ in rounds):
            raise ValueError(f"every row of a commit must be for round {number}")
        if any(row.committed_in != number for row in self.metrics):
            raise ValueError(f"every metrics row of a commit is committed in round {number}")
        keys = [(row.round, row.source) for row in self.metrics]
        if len(set(keys)) != len(keys):
            raise ValueError("a model's scores from one source appear twice")
        ok = self.round.status == "ok"
        if (self.statistics is not None) != (ok and self.round.kind == "statistics"):
            raise ValueError("an ok statistics round commits its statistics; no other round does")
        if self.statistics is not None and self.statistics.round != number:
            raise ValueError(f"the statistics of a commit come from round {number}")
        _check_peers(self, ok)
        object.__setattr__(self, "model", _finite("model", self.model))
        if (self.delta is None) == (ok and self.round.kind == "training"):
            raise ValueError(
                "an ok training round commits the delta it applied; no other round commits one"
            )
        if (self.mean is None) != (self.delta is None) or (
            self.control is not None and self.delta is None
        ):
            raise ValueError("a commit's delta comes with the mean it was made of, and only then")
        for name in ("delta", "mean", "control"):
            values = getattr(self, name)
            if values is not None:
                values = _finite(name, values)
                if len(values) != len(self.model):
                    raise ValueError(
                        f"Commit.{name} has {len(values)} values, the model {len(self.model)}"
                    )
                object.__setattr__(self, name, values)


def _check_peers(commit: Commit, ok: bool) -> None:
    """ValueError unless `commit` names each client and survivor once, and an ok
    round each of its survivors (an aborted one none)."""
    for name in ("clients", "survivors"):
        peers = [row.peer for row in getattr(commit, name)]
        if len(set(peers)) != len(peers):
            raise ValueError(f"a peer appears twice among the commit's {name}")
    if len(commit.survivors) != (commit.round.survivors if ok else 0):
        raise ValueError("an ok round commits each of its survivors; an aborted one none")


def _finite(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """`values` as a tuple of finite floats; ValueError naming `Commit.<name>[i]`."""
    checked = []
    for index, value in enumerate(values):
        try:
            checked.append(MODEL.columns[2].check(value))
        except ValueError as exc:
            raise ValueError(f"Commit.{name}[{index}] {exc}") from None
    return tuple(checked)
