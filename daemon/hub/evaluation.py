"""Which models the federation still has to score, and with which bins.

After each ok training round the new global model joins the queue. Every
later round carries at most MAX_EVALS evaluation requests (the newest model,
and the oldest one still waiting); peers score their held-out rows into the
request's bins, the round's sum comes back, and `on_result` either writes
the model's metrics row or, when a bound is still above TARGET_BOUND, keeps
the model queued with finer bins (`learner.binned.refine`). A model gets at
most MAX_PASSES passes; after the last its row is written with the bounds it
reached. A new model's first bins are the previous model's last ones plus a
grid around it, so that once training settles one pass is usually enough.

A pass whose sum holds no scored rows (no participant holds rows out) or one
class only gives no row; the model is dropped from the queue with a reason
for the log.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from fedd.daemon.state.hubfiles import MetricsRow
from fedd.daemon.transport.messages.rounds import MAX_EVALS, EvalRequest
from fedd.learner.binned import MAX_BINS, ScoreCounts, binned_metrics, initial_edges, refine

__all__ = ["MAX_PASSES", "TARGET_BOUND", "Evaluations", "Outcome"]

TARGET_BOUND = 1e-3
MAX_PASSES = 4


@dataclass
class _Waiting:
    model_round: int
    params: tuple[float, ...]
    edges: tuple[float, ...]
    passes: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one pass gave: the metrics row to commit, or why there is none yet."""

    row: MetricsRow | None
    note: str


@dataclass
class Evaluations:
    """The queue of models waiting for their federated scores."""

    threshold: float = 0.5
    _waiting: list[_Waiting] = field(default_factory=list)
    _last_edges: tuple[float, ...] = ()

    @property
    def pending(self) -> bool:
        return bool(self._waiting)

    def clear(self) -> None:
        """Forget every waiting model (no peer can score them)."""
        self._waiting.clear()

    def add(self, model_round: int, params: tuple[float, ...]) -> None:
        """Queue the model of training round `model_round`."""
        self._waiting.append(_Waiting(model_round, params, _first_edges(params, self._last_edges)))

    def requests(self) -> tuple[EvalRequest, ...]:
        """What the next round asks the peers to score: the newest model, and the oldest."""
        chosen = self._waiting[-1:] + self._waiting[:-1][:1]
        return tuple(
            EvalRequest(w.model_round, w.params, w.edges, self.threshold)
            for w in chosen[:MAX_EVALS]
        )

    def on_result(
        self, request: EvalRequest, counts: ScoreCounts | None, committed_in: int
    ) -> Outcome:
        """Take one pass's summed counts (None: the sum was unusable)."""
        waiting = next((w for w in self._waiting if w.model_round == request.model_round), None)
        if waiting is None or waiting.edges != request.edges:
            return Outcome(None, "")  # already settled by another pass
        waiting.passes += 1
        if counts is None:
            return self._retry_or_drop(waiting, "the summed counts were unusable")
        if counts.peers == 0 or counts.rows == 0:
            self._waiting.remove(waiting)
            return Outcome(None, f"model of round {waiting.model_round}: no peer scored it")
        try:
            m = binned_metrics(counts, request.edges)
        except ValueError as exc:
            self._waiting.remove(waiting)
            return Outcome(None, f"model of round {waiting.model_round}: not scored: {exc}")
        settled = max(m.roc_bound, m.pr_bound) < TARGET_BOUND
        if not settled and waiting.passes < MAX_PASSES:
            waiting.edges = tuple(refine(request.edges, counts))
            return Outcome(
                None,
                f"model of round {waiting.model_round}: bounds {m.roc_bound:.2g} (ROC-AUC) "
                f"and {m.pr_bound:.2g} (PR-AUC) after pass {waiting.passes}; finer bins next",
            )
        self._waiting.remove(waiting)
        self._last_edges = request.edges
        row = MetricsRow(
            round=waiting.model_round,
            source="federated",
            committed_in=committed_in,
            peers=m.peers,
            rows=m.rows,
            positives=m.positives,
            roc_auc=m.roc_auc,
            roc_auc_bound=m.roc_bound,
            pr_auc=m.pr_auc,
            pr_auc_bound=m.pr_bound,
            precision=m.precision,
            recall=m.recall,
            f1=m.f1,
            threshold=self.threshold,
            best_threshold=m.best_threshold,
            best_f1=m.best_f1,
            logloss=m.logloss,
        )
        return Outcome(row, "" if settled else f"bounds still above {TARGET_BOUND:g}")

    def _retry_or_drop(self, waiting: _Waiting, why: str) -> Outcome:
        if waiting.passes < MAX_PASSES:
            return Outcome(None, f"model of round {waiting.model_round}: {why}; scored again next")
        self._waiting.remove(waiting)
        return Outcome(None, f"model of round {waiting.model_round}: {why}; given up")


def _first_edges(params: tuple[float, ...], previous: tuple[float, ...]) -> tuple[float, ...]:
    """The previous model's last edges, then as much of a fresh grid as fits."""
    grid = initial_edges(params)
    room = MAX_BINS - 1 - len(previous)
    if room < len(grid):  # thin the grid evenly, keeping its ends
        step = len(grid) / max(room, 1)
        grid = [grid[int(i * step)] for i in range(max(room, 0))]
    edges = sorted(set(previous).union(grid))
    # Logit 0 is probability 0.5: keep it an edge, for F1 there.
    if 0.0 not in edges:
        bisect.insort(edges, 0.0)
    return tuple(edges[: MAX_BINS - 1])
