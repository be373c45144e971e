"""`fedd train centralized`: the baseline the federated runs are compared with.

Reads the train and test CSVs, trains the logistic regression from zero on
all training rows, scores the test rows and writes

    OUT/models/centralized_model.csv     (format: see learner.modelio)
    OUT/metrics/centralized_metrics.csv  (one header row, one data row: `RECORD_FIELDS`)

Training length: `--epochs`, or by default at least 2 epochs and at least
`MIN_STEPS` minibatch steps (SGD on a few thousand rows makes a few dozen
steps in 2 epochs, and ends worse than predicting the fraud rate for every
row). When the final training loss is still above that of the fraud rate,
`CentralizedResult.warnings` says so, with the option to change.

Features must be on standard scale: files from `fedd data prepare` are, and
with `standardize` the training rows' own mean and standard deviation are
applied to both files. Raw features are refused with the columns that give
them away, rather than trained on: SGD on raw amounts and timestamps diverges
and yields a useless model without a word.

`read_centralized_metrics` reads the scores back (for `fedd report`).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import atomic_text_writer
from fedd.learner.dataset import Dataset, column_difference, read_dataset, require_both_classes
from fedd.learner.errors import DataError
from fedd.learner.metrics import Metrics, evaluate
from fedd.learner.model import (
    ClassWeight,
    TrainStats,
    check_settings,
    make_training_set,
    predict_proba,
    train,
    zeros,
)
from fedd.learner.modelio import save_model
from fedd.learner.prepare import column_stats
from fedd.learner.progress import Progress, StagedProgress, stage
from fedd.learner.scaling import standardize, unscaled_columns

__all__ = [
    "COUNT_FIELDS",
    "MIN_STEPS",
    "RECORD_FIELDS",
    "SCORE_FIELDS",
    "CentralizedResult",
    "TrainConfig",
    "base_rate_loss",
    "check_same_features",
    "default_epochs",
    "read_centralized_metrics",
    "read_labelled",
    "run_centralized",
    "train_and_score",
]

# Columns of centralized_metrics.csv and keys of the --json object, in order.
RECORD_FIELDS = (
    "roc_auc", "pr_auc", "precision", "recall", "f1", "logloss", "threshold",
    "tp", "fp", "tn", "fn", "rows", "positives", "test_rows", "test_positives",
    "epochs", "lr", "batch_size", "l2", "class_weight", "seed",
    "final_train_loss", "mean_train_loss", "train_seconds", "load_seconds", "eval_seconds",
)  # fmt: skip
# The test-set scores among them: all in [0, 1] but the log loss, which is >= 0.
SCORE_FIELDS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "logloss")
# Counts among them, which `read_centralized_metrics` also returns where the file has them.
COUNT_FIELDS = ("tp", "fp", "tn", "fn", "rows", "positives", "test_rows", "test_positives",
                "epochs", "batch_size")  # fmt: skip
# The fewest minibatch steps of a run with the default number of epochs.
MIN_STEPS = 2000


def default_epochs(rows: int, batch_size: int) -> int:
    """Epochs when none are given: at least 2, and enough for `MIN_STEPS` steps."""
    per_epoch = max(1, math.ceil(rows / batch_size))
    return max(2, math.ceil(MIN_STEPS / per_epoch))


def base_rate_loss(rows: int, positives: int) -> float:
    """The log loss of predicting the fraud rate positives/rows for every one of `rows`
    (0.0 for one class): a trained model that does worse has not learned yet."""
    rate = positives / rows
    if rate in (0.0, 1.0):
        return 0.0
    return -(rate * math.log(rate) + (1.0 - rate) * math.log1p(-rate))


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How to train: SGD settings, and the threshold for precision/recall/F1.
    `epochs` None: `default_epochs` of the training rows."""

    epochs: int | None = None
    lr: float = 0.1
    batch_size: int = 512
    l2: float = 0.0
    class_weight: ClassWeight = "none"
    seed: int = 42
    threshold: float = 0.5

    def __post_init__(self) -> None:
        check_settings(
            epochs=2 if self.epochs is None else self.epochs,
            lr=self.lr,
            l2=self.l2,
            batch_size=self.batch_size,
            class_weight=self.class_weight,
        )
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
            "epochs": self.stats.epochs,
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
        steps = self.stats.epochs * math.ceil(self.train_rows / self.config.batch_size)
        chosen = "" if self.config.epochs else f", at least {MIN_STEPS} steps by default"
        return [
            f"ROC-AUC    {m.roc_auc:.4f}",
            f"PR-AUC     {m.pr_auc:.4f}",
            f"precision  {m.precision:.4f}   (threshold {m.threshold:g})",
            f"recall     {m.recall:.4f}",
            f"F1         {m.f1:.4f}",
            f"log loss   {m.logloss:.5f}",
            f"confusion  tp {c.tp}  fp {c.fp}  tn {c.tn}  fn {c.fn}",
            f"train      {self.train_rows} rows x {self.stats.epochs} epochs ({steps} SGD steps"
            f"{chosen}) in {self.train_seconds:.2f} s ({rate:,.0f} rows/s in SGD), "
            f"final loss {self.stats.final_loss:.5f}",
            f"test       {m.rows} rows, {m.positives} positives",
            f"model      {self.model_path}",
            f"metrics    {self.metrics_path}",
        ]

    def warnings(self) -> list[str]:
        """What the numbers above do not say by themselves, one line each: a final
        training loss above the base rate's (not with balanced class weights, which
        train for another loss)."""
        base = base_rate_loss(self.train_rows, self.train_positives)
        final = self.stats.final_loss
        if self.config.class_weight != "none" or not final > base:
            return []
        return [
            f"the final training loss {final:.5f} is above {base:.5f}, that of predicting "
            f"the training rows' fraud rate for every row: training has not converged; "
            f"raise --epochs (it trained {self.stats.epochs})"
        ]


def read_labelled(
    path: Path,
    label: str,
    role: str,
    progress: Progress | None = None,
    ignore: Collection[str] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
) -> Dataset:
    """Read a CSV that must hold both classes, without the columns in `ignore`
    (`encoding` and `fill_missing` as `read_dataset` takes them); `role`
    ("training", "test") words the error."""
    data = read_dataset(
        path, label, progress, ignore=ignore, encoding=encoding, fill_missing=fill_missing
    )
    require_both_classes(data, f"{role} row")
    return data


def check_same_features(reference: Dataset, other: Dataset) -> None:
    """Raise `DataError` unless both datasets have the same feature columns, in order."""
    detail = column_difference(reference.features, other.features)
    if not detail:
        return
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
    ignore: Collection[str] = (),
    encoding: str = "utf-8",
    fill_missing: float | None = None,
    config: TrainConfig | None = None,
    standardize_rows: bool = False,
    progress: StagedProgress | None = None,
) -> CentralizedResult:
    """Train on `train_path`, evaluate on `test_path`, write the model and the metrics.
    The columns in `ignore` are left out of both files, whose text is in
    `encoding` and whose missing cells read as `fill_missing`.

    Raises `DataError` for unusable files (see `read_dataset`), a set with one
    class, differing feature columns, unstandardized features (without
    `standardize_rows`), diverging training, or outputs that cannot be
    written. `progress` hears the reading and the training.
    """
    started = time.perf_counter()
    train_data = read_labelled(
        train_path,
        label,
        "training",
        stage(progress, f"read {train_path.name}"),
        ignore,
        encoding,
        fill_missing,
    )
    test_data = read_labelled(
        test_path,
        label,
        "test",
        stage(progress, f"read {test_path.name}"),
        ignore,
        encoding,
        fill_missing,
    )
    check_same_features(train_data, test_data)
    if standardize_rows:
        stats = column_stats(train_data, range(train_data.n_rows))
        train_data, test_data = standardize(train_data, stats), standardize(test_data, stats)
    else:
        unscaled = unscaled_columns(train_data)
        if unscaled:
            raise DataError(
                f"{train_path}: the features are not standardized ({', '.join(unscaled[:3])}"
                f"{', ...' if len(unscaled) > 3 else ''}): pass --standardize, or train on "
                "files from `fedd data prepare`"
            )
    return train_and_score(
        train_data,
        test_data,
        out_dir,
        config=config,
        load_seconds=time.perf_counter() - started,
        progress=progress,
    )


def train_and_score(
    train_data: Dataset,
    test_data: Dataset,
    out_dir: Path,
    *,
    config: TrainConfig | None = None,
    load_seconds: float = 0.0,
    progress: StagedProgress | None = None,
) -> CentralizedResult:
    """Train on `train_data`, score `test_data`, write the model and the metrics.

    Raises `DataError` for diverging training or outputs that cannot be written.
    """
    cfg = TrainConfig() if config is None else config
    epochs = cfg.epochs or default_epochs(train_data.n_rows, cfg.batch_size)
    loaded = time.perf_counter()
    batches = make_training_set(
        train_data, batch_size=cfg.batch_size, class_weight=cfg.class_weight, seed=cfg.seed
    )
    params, stats = train(
        zeros(train_data.n_features),
        batches,
        epochs=epochs,
        lr=cfg.lr,
        l2=cfg.l2,
        seed=cfg.seed,
        progress=stage(progress, "train"),
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
        load_seconds=load_seconds,
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


def read_centralized_metrics(path: Path) -> dict[str, float]:
    """The `SCORE_FIELDS` of a centralized_metrics.csv, validated, its
    `threshold` (of precision, recall and F1) and the `COUNT_FIELDS` (the
    confusion counts, the rows and positives of both sets, the epochs and the
    minibatch size) it has columns for.

    The file needs a header holding every score column (other columns, such as
    the rest of `RECORD_FIELDS`, are allowed and ignored) and exactly one data
    row. Raises `DataError` naming the file, and where it applies the row (the
    header is row 1) and the column: a missing or unreadable file, an empty
    one, a header without a score column or with a column twice, no data row
    or more than one, a ragged row, a score that is not a number in range, or a
    count that is not an integer (at least 1 for the epochs and the minibatch size).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, strict=True)
            rows = [(reader.line_num, row) for row in reader if row]  # blank lines skipped
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file; run `fedd train centralized` (or `fedd demo`) first"
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the centralized metrics: {exc}") from None
    if not rows:
        raise DataError(f"{path}: the file is empty; expected a header and one row of metrics")
    first, cells = rows[0]
    header = [cell.strip() for cell in cells]
    for name in header:
        if header.count(name) > 1:
            raise DataError(f"{path} row {first}: column {name!r} appears twice")
    missing = [name for name in SCORE_FIELDS if name not in header]
    if missing:
        raise DataError(
            f"{path} row {first}: no {missing[0]!r} column; this is not a centralized_metrics.csv "
            "written by `fedd train centralized`"
        )
    if len(rows) != 2:
        what = "no data row" if len(rows) == 1 else f"{len(rows) - 1} data rows"
        raise DataError(f"{path}: {what}; expected exactly one row of metrics")
    number, row = rows[1]
    if len(row) != len(header):
        raise DataError(f"{path} row {number}: {len(row)} cells; the header has {len(header)}")
    return _values(path, number, dict(zip(header, row, strict=True)))


def _values(path: Path, number: int, cells: dict[str, str]) -> dict[str, float]:
    """The scores and counts of the data row `number`, by column; DataError for a bad cell."""
    scores: dict[str, float] = {}
    for name in (*SCORE_FIELDS, *(["threshold"] if "threshold" in cells else [])):
        cell = cells[name]
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        high = math.inf if name == "logloss" else 1.0
        if not (math.isfinite(value) and 0.0 <= value <= high):
            bound = "a finite number >= 0" if name == "logloss" else "a number in [0, 1]"
            raise DataError(f"{path} row {number}, column {name!r}: {cell!r} is not {bound}")
        scores[name] = value
    for name in (name for name in COUNT_FIELDS if name in cells):
        cell = cells[name]
        least = 1 if name in ("epochs", "batch_size") else 0
        if not (cell.isdigit() and int(cell) >= least):
            raise DataError(
                f"{path} row {number}, column {name!r}: {cell!r} is not an integer >= {least}"
            )
        scores[name] = int(cell)
    return scores
