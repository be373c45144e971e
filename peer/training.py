"""Local training on a peer: one job at a time, in a worker thread, so that
the peer's loop keeps answering heartbeats while it trains."""

from __future__ import annotations

import concurrent.futures
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from fedd.daemon.transport.messages.rounds import RoundStart
from fedd.learner.dataset import Dataset
from fedd.learner.metrics import roc_auc
from fedd.learner.model import ClassWeight, TrainingSet, make_training_set, predict_proba, train

__all__ = ["LocalTrainer", "Trained", "TrainingJob"]


class Trained(NamedTuple):
    """What one local training produced."""

    params: list[float]
    train_s: float
    cpu_s: float
    loss: float
    local_roc_auc: float  # of the global model on the local rows, before training


@dataclass
class TrainingJob:
    """A local training job and what it produced."""

    number: int
    start: RoundStart
    data: Dataset
    future: concurrent.futures.Future[Trained]


class LocalTrainer:
    """Runs training jobs in one worker thread and keeps their minibatch layouts."""

    def __init__(self) -> None:
        # Keyed by the dataset object too, so a shard swapped mid-training never
        # sees a training set of the old shard.
        self._sets: dict[tuple[Dataset, int, str, int], TrainingSet] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="train")

    def submit(
        self, msg: RoundStart, data: Dataset, when_done: Callable[[object], None]
    ) -> TrainingJob:
        """Start training for `msg`'s round; `when_done` runs in the worker thread."""
        future = self._pool.submit(self._train, msg, data)
        future.add_done_callback(when_done)
        return TrainingJob(msg.round, msg, data, future)

    def shutdown(self, *, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _train(self, msg: RoundStart, data: Dataset) -> Trained:
        """Worker thread: train from the round's global model."""
        started, cpu = time.perf_counter(), time.thread_time()
        model = list(msg.model)
        local_auc = _auc(list(data.y), predict_proba(model, data))
        cfg = msg.train
        # The minibatch layout depends on the run's seed only, so it is built
        # once and reused every round; the round reorders the minibatches.
        key = (data, cfg.batch_size, cfg.class_weight, cfg.seed)
        if key not in self._sets:
            weighting: ClassWeight = "balanced" if cfg.class_weight == "balanced" else "none"
            self._sets = {
                key: make_training_set(
                    data, batch_size=cfg.batch_size, class_weight=weighting, seed=cfg.seed
                )
            }
        params, stats = train(
            model,
            self._sets[key],
            epochs=cfg.epochs,
            lr=cfg.lr,
            l2=cfg.l2,
            seed=cfg.seed + msg.round,
        )
        return Trained(
            params,
            time.perf_counter() - started,
            time.thread_time() - cpu,
            stats.final_loss,
            local_auc,
        )


def _auc(labels: list[int], scores: list[float]) -> float:
    """ROC-AUC, or nan when the shard holds one class only."""
    try:
        return roc_auc(labels, scores)
    except ValueError:
        return math.nan
