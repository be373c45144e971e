"""What a peer computes for a round, in a worker thread, so that its loop
keeps answering heartbeats meanwhile: its statistics, its training, its scores.

A job turns one RoundStart into the peer's vector for the round (its shape is
the round's `layout`): for statistics, the exact moments of the raw training
rows; for training, the weighted update after local epochs from the global
model, on rows z-scored with the run's scaling (with FedProx's proximal term,
and in a SCAFFOLD run corrected by the control variates, whose change rides
in the same vector: `learner.strategy`); for every evaluation it may
take part in, the counts of its z-scored held-out rows in the request's bins
(an evaluation it may not take part in contributes zeros and counts no peer).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fedd.daemon.transport.messages.rounds import RoundStart, Scaling
from fedd.learner.binned import ScoreCounts, score_rows
from fedd.learner.dataset import Dataset
from fedd.learner.holdout import Split
from fedd.learner.metrics import roc_auc
from fedd.learner.model import ClassWeight, TrainingSet, make_training_set, predict_proba, train
from fedd.learner.moments import local_moments
from fedd.learner.scaling import ColumnStats, standardize, unscaled_columns
from fedd.learner.strategy import control_change

__all__ = ["Job", "LocalWork", "Result"]

log = logging.getLogger("fedd.peer")


@dataclass(frozen=True, slots=True)
class Result:
    """What one job produced: the vector, what training took (0 when none ran), and
    the job's CPU time (`cpu_s`: training, scoring or the statistics). `control`
    is the SCAFFOLD control variate this peer adopts if the round commits with
    its vector (None outside SCAFFOLD rounds)."""

    vector: bytes
    n_samples: int
    train_s: float
    cpu_s: float
    loss: float
    local_roc_auc: float  # of the global model on the training rows, before training
    control: tuple[float, ...] | None = None


@dataclass
class Job:
    """A job for one round, and its future."""

    number: int
    start: RoundStart
    future: concurrent.futures.Future[Result]


class LocalWork:
    """Runs jobs in one worker thread; keeps the scaled rows and minibatch layouts."""

    def __init__(self) -> None:
        # Keyed by the split object too, so that a shard swapped mid-job never
        # sees rows of the old shard.
        self._scaled: dict[tuple[Split, Scaling], tuple[Dataset, Dataset | None]] = {}
        self._sets: dict[tuple[Dataset, int, str, int], TrainingSet] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="work")

    def submit(
        self,
        msg: RoundStart,
        data: Split,
        eligible: Sequence[bool],
        when_done: Callable[[object], None],
        control: tuple[float, ...] = (),
    ) -> Job:
        """Start `msg`'s job; `eligible[i]` says whether this peer scores `msg.evals[i]`;
        `control` is this peer's control variate (SCAFFOLD rounds). `when_done` runs
        in the worker thread."""
        future = self._pool.submit(self._run, msg, data, tuple(eligible), control)
        future.add_done_callback(when_done)
        return Job(msg.round, msg, future)

    def shutdown(self, *, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def scaled(self, data: Split, scaling: Scaling) -> tuple[Dataset, Dataset | None]:
        """The training and held-out rows z-scored with `scaling` (worker thread)."""
        key = (data, scaling)
        if key not in self._scaled:
            stats = [
                ColumnStats(name, mean, std)
                for name, mean, std in zip(
                    data.train.features, scaling.means, scaling.stds, strict=True
                )
            ]
            holdout = data.holdout
            rows = standardize(data.train, stats)
            self._scaled = {
                key: (rows, standardize(holdout, stats) if holdout is not None else None)
            }
            far = unscaled_columns(rows)
            if far:
                log.warning(
                    "scaled with the federation's statistics, this peer's rows are still far "
                    "from standard scale: %s; are its units those of the other institutions?",
                    ", ".join(far[:5]),
                )
        return self._scaled[key]

    def _run(
        self, msg: RoundStart, data: Split, eligible: tuple[bool, ...], control: tuple[float, ...]
    ) -> Result:
        """Worker thread: this peer's vector for the round."""
        started, cpu = time.perf_counter(), time.thread_time()
        layout = msg.layout
        if msg.kind == "statistics":
            vector = layout.encode(moments=local_moments(data.train))
            cpu_s = time.thread_time() - cpu
            return Result(vector, data.train.n_rows, 0.0, cpu_s, math.nan, math.nan)
        assert msg.scaling is not None  # every later round carries it (RoundStart checks)
        rows, holdout = self.scaled(data, msg.scaling)
        scores = [
            score_rows(request.params, holdout, request.edges, request.threshold)
            if ok and holdout is not None
            else _nothing(request.bins)
            for request, ok in zip(msg.evals, eligible, strict=True)
        ]
        if msg.kind == "evaluation":
            cpu_s = time.thread_time() - cpu
            return Result(layout.encode(scores=scores), 0, 0.0, cpu_s, math.nan, math.nan)
        params, loss, local_auc, change = self._train(msg, rows, control)
        delta = [p - g for p, g in zip(params, msg.model, strict=True)]
        assert msg.encoding is not None  # training rounds carry it (RoundStart checks)
        weight = min(rows.n_rows, msg.encoding.max_weight)
        if change is not None:
            # The change the sum gets is clipped with the update (encode clips them
            # together): adopt that one, so that the hub's mean is of what peers hold.
            change = msg.encoding.clip_vector([*delta, *change])[len(delta) :]
        vector = layout.encode(update=(weight, delta), control=change, scores=scores)
        return Result(
            vector,
            rows.n_rows,
            time.perf_counter() - started,
            time.thread_time() - cpu,
            loss,
            local_auc,
            None if change is None else tuple(c + d for c, d in zip(control, change, strict=True)),
        )

    def _train(
        self, msg: RoundStart, rows: Dataset, control: tuple[float, ...]
    ) -> tuple[list[float], float, float, list[float] | None]:
        """Local epochs from the global model: (new params, final loss, AUC before,
        and in a SCAFFOLD round the change of this peer's control variate `control`)."""
        model = list(msg.model)
        local_auc = _auc(list(rows.y), predict_proba(model, rows))
        cfg = msg.train
        assert cfg is not None  # training rounds carry it (RoundStart checks)
        # The minibatch layout depends on the run's seed only, so it is built
        # once and reused every round; the round reorders the minibatches.
        key = (rows, cfg.batch_size, cfg.class_weight, cfg.seed)
        if key not in self._sets:
            weighting: ClassWeight = "balanced" if cfg.class_weight == "balanced" else "none"
            self._sets = {
                key: make_training_set(
                    rows, batch_size=cfg.batch_size, class_weight=weighting, seed=cfg.seed
                )
            }
        correction = None
        if msg.control is not None:  # SCAFFOLD: each step's gradient corrected by c - c_i
            correction = [c - ci for c, ci in zip(msg.control, control, strict=True)]
        training = self._sets[key]
        params, stats = train(
            model,
            training,
            epochs=cfg.epochs,
            lr=cfg.lr,
            l2=cfg.l2,
            seed=cfg.seed + msg.round,
            proximal_mu=cfg.proximal_mu,
            correction=correction,
        )
        change = None
        if msg.control is not None:
            steps = cfg.epochs * len(training.batches)
            change = control_change(model, params, steps, cfg.lr, msg.control)
        return params, stats.final_loss, local_auc, change


def _nothing(bins: int) -> ScoreCounts:
    """The counts of a peer that does not score: nothing, and not counted as a peer."""
    return ScoreCounts((0,) * bins, (0,) * bins, 0, 0, 0.0, 0)


def _auc(labels: list[int], scores: list[float]) -> float:
    """ROC-AUC, or nan when the rows hold one class only."""
    try:
        return roc_auc(labels, scores)
    except ValueError:
        return math.nan
