"""Learner throughput: fedd's SGD against a plain nested-loop implementation.

    python -m bench.learner [--rows 228000] [--epochs 1] [--csv PATH]

Synthesizes Kaggle-schema transactions (30 features), holds out a stratified
test set, standardizes with the training statistics, then trains the same
logistic regression three ways, from zero, on the same minibatches in the same
order with the same hyper-parameters:

- `fedd learner`: `learner.model.train`;
- `nested loop`: the straightforward rows x features loops written below,
  the algorithm as the platform fedd replaces wrote it;
- `numpy` (if installed): the same steps vectorized, for scale only.

It prints rows/s per epoch, the ratio to the nested loop, the ROC-AUC of each
on the held-out rows, the largest parameter difference from the nested loop,
and the peak RSS of the process (after the data and fedd's training, then at
the end). `--csv PATH` also writes the table.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import resource
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.dataset import Dataset
from fedd.learner.metrics import roc_auc
from fedd.learner.model import (
    TrainingSet,
    epoch_orders,
    make_training_set,
    predict_proba,
    train,
    zeros,
)
from fedd.learner.partition import stratified_split
from fedd.learner.prepare import column_stats
from fedd.learner.synth import COLUMNS, KAGGLE_FRAUD_RATE, synth_rows

LR = 0.1
L2 = 0.0
LOG_EPS = 1e-15


@dataclass(frozen=True)
class Row:
    name: str
    rows_per_s: float
    seconds: float
    roc_auc: float
    max_param_diff: float


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(rows: int, test_rows: int, seed: int) -> tuple[Dataset, Dataset]:
    """Synthesize, split (stratified), standardize with the training rows' statistics."""
    features = COLUMNS[:-1]
    x: array[float] = array("d")
    y = bytearray()
    for t, v, amount, label in synth_rows(rows + test_rows, KAGGLE_FRAUD_RATE, seed):
        x.append(float(t))
        x.extend(v)
        x.append(amount)
        y.append(label)
    raw = Dataset("synthetic", features, "Class", x, bytes(y))
    train_idx, test_idx = stratified_split(
        raw.y, test_rows / (rows + test_rows), random.Random(seed)
    )
    stats = column_stats(raw, train_idx)
    means = [s.mean for s in stats]
    stds = [s.std for s in stats]

    def subset(indices: Sequence[int], name: str) -> Dataset:
        out: array[float] = array("d")
        for i in indices:
            out.extend((v - m) / s for v, m, s in zip(raw.row(i), means, stds, strict=True))
        return Dataset(name, features, "Class", out, bytes(raw.y[i] for i in indices))

    return subset(train_idx, "train"), subset(test_idx, "test")


def nested_loop_train(
    params: Sequence[float], data: TrainingSet, *, epochs: int, lr: float, l2: float, seed: int
) -> tuple[list[float], float]:
    """The same minibatch SGD written as plain loops; returns (params, mean loss)."""
    bias = params[0]
    w = list(params[1:])
    d = len(w)
    total_loss = 0.0
    for order in epoch_orders(len(data.batches), epochs, seed):
        for k in order:
            batch = data.batches[k]
            n = len(batch.rows)
            grad = [0.0] * d
            grad_bias = 0.0
            for i in range(n):
                x = batch.rows[i]
                y = batch.labels[i]
                z = bias
                for j in range(d):
                    z += w[j] * x[j]
                p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
                q = min(max(p, LOG_EPS), 1.0 - LOG_EPS)
                total_loss += -math.log(q) if y == 1 else -math.log(1.0 - q)
                err = p - y
                if batch.weights is not None:
                    err *= batch.weights[i]
                for j in range(d):
                    grad[j] += err * x[j]
                grad_bias += err
            for j in range(d):
                w[j] -= lr * (grad[j] / n + l2 * w[j])
            bias -= lr * grad_bias / n
    return [bias, *w], total_loss / (epochs * data.n_rows)


def numpy_train(
    params: Sequence[float], data: TrainingSet, *, epochs: int, lr: float, l2: float, seed: int
) -> tuple[list[float], float] | None:
    """The same steps vectorized with numpy, or None when numpy is not installed."""
    try:
        import numpy as np
    except ImportError:
        return None
    batches = [
        (np.asarray(b.rows), np.frombuffer(b.labels, dtype=np.uint8).astype(np.float64))
        for b in data.batches
    ]
    w = np.asarray(params[1:], dtype=np.float64)
    bias = float(params[0])
    started = time.perf_counter()
    for order in epoch_orders(len(batches), epochs, seed):
        for k in order:
            x, y = batches[k]
            p = 0.5 + 0.5 * np.tanh(0.5 * (x @ w + bias))
            err = p - y
            w = w - lr * (x.T @ err / len(y) + l2 * w)
            bias -= lr * float(err.sum()) / len(y)
    return [bias, *w.tolist()], time.perf_counter() - started


def measure(
    rows: int, test_rows: int, epochs: int, batch_size: int, seed: int
) -> tuple[list[str], list[Row]]:
    data_started = time.perf_counter()
    train_data, test_data = make_data(rows, test_rows, seed)
    data_seconds = time.perf_counter() - data_started
    layout_started = time.perf_counter()
    batches = make_training_set(train_data, batch_size=batch_size, seed=seed)
    layout_seconds = time.perf_counter() - layout_started
    seen = rows * epochs

    ours, stats = train(
        zeros(train_data.n_features), batches, epochs=epochs, lr=LR, l2=L2, seed=seed
    )
    rss_after_ours = peak_rss_mb()

    started = time.perf_counter()
    reference, _ = nested_loop_train(
        zeros(train_data.n_features), batches, epochs=epochs, lr=LR, l2=L2, seed=seed
    )
    reference_seconds = time.perf_counter() - started

    def auc(params: Sequence[float]) -> float:
        return roc_auc(test_data.y, predict_proba(params, test_data))

    def diff(params: Sequence[float]) -> float:
        return max(abs(a - b) for a, b in zip(params, reference, strict=True))

    table = [
        Row("fedd learner (stdlib)", seen / stats.seconds, stats.seconds, auc(ours), diff(ours)),
        Row(
            "nested loop (stdlib)", seen / reference_seconds, reference_seconds, auc(reference), 0.0
        ),
    ]
    vectorized = numpy_train(
        zeros(train_data.n_features), batches, epochs=epochs, lr=LR, l2=L2, seed=seed
    )
    if vectorized is not None:
        params, seconds = vectorized
        table.append(Row("numpy (for scale)", seen / seconds, seconds, auc(params), diff(params)))

    reference_rate = table[1].rows_per_s
    lines = [
        f"learner benchmark: {rows} training rows x {train_data.n_features} features, "
        f"{test_data.n_rows} held-out rows, batch {batch_size}, {epochs} epoch(s), lr {LR}, "
        f"seed {seed}",
        f"{'implementation':<24}{'rows/s/epoch':>14}{'seconds':>10}{'ROC-AUC':>10}"
        f"{'vs nested':>11}{'max |dparam|':>14}",
    ]
    for row in table:
        lines.append(
            f"{row.name:<24}{row.rows_per_s:>14,.0f}{row.seconds:>10.3f}{row.roc_auc:>10.4f}"
            f"{row.rows_per_s / reference_rate:>10.2f}x{row.max_param_diff:>14.1e}"
        )
    # What a plain implementation needs before its first epoch: the rows as tuples.
    started = time.perf_counter()
    plain_rows = [tuple(row) for row in train_data.rows()]
    plain_rows_seconds = time.perf_counter() - started
    del plain_rows
    ours_total = seen / (layout_seconds + stats.seconds)
    reference_total = seen / (plain_rows_seconds + reference_seconds)
    lines += [
        f"one-time layout (not in the epoch times): fedd minibatches {layout_seconds:.2f} s; "
        f"plain row tuples for the nested loop {plain_rows_seconds:.2f} s",
        f"whole run with its layout, {epochs} epoch(s): fedd {ours_total:,.0f} rows/s, "
        f"nested loop {reference_total:,.0f} rows/s ({ours_total / reference_total:.2f}x)",
        f"data synthesis + standardization: {data_seconds:.2f} s (not timed above)",
        f"peak RSS after data + fedd training: {rss_after_ours:.0f} MiB; "
        f"at the end: {peak_rss_mb():.0f} MiB",
    ]
    return lines, table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=228_000, help="training rows")
    parser.add_argument("--test-rows", type=int, default=57_000, help="held-out rows")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.test_rows < 1000 or args.epochs < 1 or args.batch_size < 1:
        parser.error("need --rows >= 1000, --test-rows >= 1000, --epochs >= 1, --batch-size >= 1")
    lines, table = measure(args.rows, args.test_rows, args.epochs, args.batch_size, args.seed)
    print("\n".join(lines))
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(
                ["implementation", "rows", "features", "epochs", "batch_size", "rows_per_s",
                 "seconds", "roc_auc", "vs_nested", "max_param_diff", "peak_rss_mib"]
            )  # fmt: skip
            for row in table:
                writer.writerow(
                    [row.name, args.rows, len(COLUMNS) - 1, args.epochs, args.batch_size,
                     f"{row.rows_per_s:.0f}", f"{row.seconds:.4f}", f"{row.roc_auc:.6f}",
                     f"{row.rows_per_s / table[1].rows_per_s:.3f}", f"{row.max_param_diff:.3e}",
                     f"{peak_rss_mb():.0f}"]
                )  # fmt: skip


if __name__ == "__main__":
    main()
