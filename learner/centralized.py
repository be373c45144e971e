"""`fedd train centralized`: the baseline the federated runs are compared with.

Reads the prepared train and test CSVs, trains the logistic regression from
zero on all training rows, scores the test rows and writes

    OUT/models/centralized_model.csv     (format: see learner.modelio)
    OUT/metrics/centralized_metrics.csv  (one header row, one data row: `RECORD_FIELDS`)
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

from learner.atomic import atomic_text_writer
from learner.dataset import Dataset, read_dataset
from learner.errors import DataError
from learner.metrics import Metrics, evaluate
from learner.model import (
    CLASS_WEIGHTS,
    ClassWeight,
    Progress,
    TrainStats,
    make_training_set,
    predict_proba,
    train,
    zeros,
)
from learner.modelio import save_model

__all__ = [
    "RECORD_FIELDS",
    "CentralizedResult",
    "TrainConfig",
    "check_same_features",
    "read_labelled",
    "run_centralized",
]

# Columns of centralized_metrics.csv and keys of the --json object, in order.
RECORD_FIELDS = (
    "roc_auc", "pr_auc", "precision", "recall", "f1", "logloss", "threshold",
    "tp", "fp", "tn", "fn", "rows", "positives", "test_rows", "test_positives",
    "epochs", "lr", "batch_size", "l2", "class_weight", "seed",
    "final_train_loss", "mean_train_loss", "train_seconds", "load_seconds", "eval_seconds",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How to train: SGD settings, and the threshold for precision/recall/F1."""

    epochs: int = 2
    lr: float = 0.1
    batch_size: int = 512
    l2: float = 0.0
    class_weight: ClassWeight = "none"
    seed: int = 42
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if type(self.epochs) is not int or self.epochs < 1:
            raise ValueError("epochs must be an int >= 1")
        if type(self.batch_size) is not int or self.batch_size < 1:
            raise ValueError("batch_size must be an int >= 1")
        if not (math.isfinite(self.lr) and self.lr > 0.0):
            raise ValueError("lr must be a finite number > 0")
        if not (math.isfinite(self.l2) and self.l2 >= 0.0):
            raise ValueError("l2 must be a finite number >= 0")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class CentralizedResult:
    """The metrics of one centralized run, how it went, and where it was written."""

    metrics: Metrics
    stats: TrainStats
    config: TrainConfig
    train_rows: int
    train_positives: int
    train_seconds: float  # laying out the minibatches plus all epochs
    load_seconds: float
    eval_seconds: float
    model_path: Path
    metrics_path: Path

    def record(self) -> dict[str, float | int | str]:
        """One flat record, keys `RECORD_FIELDS` in order (CSV row and JSON object)."""
        m, c, cfg = self.metrics, self.metrics.confusion, self.config
        return {
            "roc_auc": m.roc_auc,
            "pr_auc": m.pr_auc,
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "logloss": m.logloss,
            "threshold": m.threshold,
            "tp": c.tp,
            "fp": c.fp,
            "tn": c.tn,
            "fn": c.fn,
            "rows": self.train_rows,
            "positives": self.train_positives,
            "test_rows": m.rows,
            "test_positives": m.positives,
            "epochs": cfg.epochs,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "l2": cfg.l2,
            "class_weight": cfg.class_weight,
            "seed": cfg.seed,
            "final_train_loss": self.stats.final_loss,
            "mean_train_loss": self.stats.mean_loss,
            "train_seconds": self.train_seconds,
            "load_seconds": self.load_seconds,
            "eval_seconds": self.eval_seconds,
        }

    def lines(self) -> list[str]:
        """A short metrics table for people."""
        m, c = self.metrics, self.metrics.confusion
        rate = self.stats.rows_seen / self.stats.seconds if self.stats.seconds > 0 else math.inf
        return [
            f"ROC-AUC    {m.roc_auc:.4f}",
            f"PR-AUC     {m.pr_auc:.4f}",
            f"precision  {m.precision:.4f}   (threshold {m.threshold:g})",
            f"recall     {m.recall:.4f}",
            f"F1         {m.f1:.4f}",
            f"log loss   {m.logloss:.5f}",
            f"confusion  tp {c.tp}  fp {c.fp}  tn {c.tn}  fn {c.fn}",
            f"train      {self.train_rows} rows x {self.stats.epochs} epochs in "
            f"{self.train_seconds:.2f} s ({rate:,.0f} rows/s in SGD), "
            f"final loss {self.stats.final_loss:.5f}",
            f"test       {m.rows} rows, {m.positives} positives",
            f"model      {self.model_path}",
            f"metrics    {self.metrics_path}",
        ]


def read_labelled(path: Path, label: str, role: str) -> Dataset:
    """Read a CSV that must hold both classes; `role` ("training", "test") words the error."""
    data = read_dataset(path, label)
    n_pos = data.n_positives
    if n_pos in (0, data.n_rows):
        raise DataError(
            f"{path}: every {role} row has label {int(n_pos > 0)} in column {label!r}; "
            f"the {role} set needs rows of both classes"
        )
    return data


def check_same_features(reference: Dataset, other: Dataset) -> None:
    """Raise `DataError` unless both datasets have the same feature columns, in order."""
    if reference.features == other.features:
        return
    missing = [f for f in reference.features if f not in other.features]
    extra = [f for f in other.features if f not in reference.features]
    if missing or extra:
        detail = f"missing {missing or 'none'}, extra {extra or 'none'}"
    else:
        detail = "the same columns in a different order"
    raise DataError(
        f"{other.source}: feature columns differ from {reference.source} ({detail}); "
        "prepare both files with the same `fedd data prepare` run"
    )


def run_centralized(
    train_path: Path,
    test_path: Path,
    out_dir: Path,
    *,
    label: str = "Class",
    config: TrainConfig | None = None,
    progress: Progress | None = None,
) -> CentralizedResult:
    """Train on `train_path`, evaluate on `test_path`, write the model and the metrics.

    Raises `DataError` for unusable files (see `read_dataset`), a set with one
    class, differing feature columns, diverging training, or outputs that
    cannot be written.
    """
    cfg = TrainConfig() if config is None else config
    started = time.perf_counter()
    train_data = read_labelled(train_path, label, "training")
    test_data = read_labelled(test_path, label, "test")
    check_same_features(train_data, test_data)
    loaded = time.perf_counter()
    batches = make_training_set(
        train_data, batch_size=cfg.batch_size, class_weight=cfg.class_weight, seed=cfg.seed
    )
    params, stats = train(
        zeros(train_data.n_features),
        batches,
        epochs=cfg.epochs,
        lr=cfg.lr,
        l2=cfg.l2,
        seed=cfg.seed,
        progress=progress,
    )
    del batches  # the minibatches are the largest structure; free them before scoring
    trained = time.perf_counter()
    metrics = evaluate(test_data.y, predict_proba(params, test_data), cfg.threshold)
    evaluated = time.perf_counter()

    model_path = out_dir / "models" / "centralized_model.csv"
    metrics_path = out_dir / "metrics" / "centralized_metrics.csv"
    save_model(model_path, train_data.features, params)
    result = CentralizedResult(
        metrics=metrics,
        stats=stats,
        config=cfg,
        train_rows=train_data.n_rows,
        train_positives=train_data.n_positives,
        train_seconds=trained - loaded,
        load_seconds=loaded - started,
        eval_seconds=evaluated - trained,
        model_path=model_path,
        metrics_path=metrics_path,
    )
    record = result.record()
    with atomic_text_writer(metrics_path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(RECORD_FIELDS)
        writer.writerow([record[name] for name in RECORD_FIELDS])
    return result
