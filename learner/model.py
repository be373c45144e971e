"""Binary logistic regression trained by minibatch SGD, in pure Python.

Parameters are one flat vector `[bias, w_1, ..., w_d]` (a `list[float]`), so the
aggregation layer can treat a model as a vector. The objective is the mean log
loss over a minibatch, optionally class-weighted, plus `l2/2 * |w|^2` (the bias
is not penalised):

    p_i = sigmoid(b + w.x_i)
    step:  w <- w - lr * ( (1/n) sum_i c_i (p_i - y_i) x_i + l2 * w )
           b <- b - lr * ( (1/n) sum_i c_i (p_i - y_i) )

with `c_i = 1` (`class_weight="none"`) or `n_rows / (2 * n_rows_of_its_class)`
(`"balanced"`, scikit-learn's rule).

Two terms serve federated training, both constant along a call's steps. FedProx
(Li et al., MLSys 2020) adds `proximal_mu/2 * |theta - theta_0|^2` over all
parameters, bias included, `theta_0` being the parameters `train` starts from
(the global model); SCAFFOLD adds a fixed `correction` k to every step's
gradient (its c - c_i, `learner.strategy`). With `a = 1 - lr*(l2 + mu)` (the
bias: `1 - lr*mu`) and `s = lr*(mu*theta_0 - k)`, a step is

    theta <- a * theta - lr * (the log loss gradient) + s

so they cost one addition per parameter and step, nothing per row.

Minibatches. `make_training_set` shuffles the rows once (seeded) into fixed
minibatches; each epoch of `train` visits the minibatches in a fresh seeded
order. This is random reshuffling at the granularity of minibatches. It lets
each minibatch be laid out once, contiguously in memory, with everything the
inner loop needs precomputed, and keeps per-row Python work out of the epoch.
The same training set serves every federated round.

Theory of operation (why the inner loop looks the way it does). Python spends
~30 ns on every float it multiplies through `operator.mul`, and ~8 ns per
coordinate inside `math.dist`/`math.hypot`, which run entirely in C. So the two
products that cost O(rows x features) go through `math.dist`, using

    x.w = (|x|^2 + |w|^2 - |x - w|^2) / 2

- forward: `z_i/2 = b/2 + |w|^2/4 + |x_i|^2/4 - dist(x_i, w)^2/4`, with
  `|x_i|^2/4` precomputed per row;
- gradient: with `t_i = tanh(z_i/2)` and `s_i = 1 - 2y_i`, the error is
  `2 c_i (p_i - y_i) = c_i t_i + c_i s_i`. The second part's products with the
  columns, `sum_i c_i s_i x_ij`, do not change between epochs and are
  precomputed; the first is `(|u|^2 + |col_j|^2 - dist(u, col_j)^2) / 2` with
  `u_i = c_i t_i`, the batch's columns (`zip(*rows)`, sharing the float
  objects) and their squared norms precomputed.

The identity costs absolute error about 2^-52 * (|x|^2 + |w|^2): ~1e-14 on
standardized features, far below SGD noise (the tests check agreement with the
plain nested-loop algorithm). What remains per row is one comprehension for
`z_i/2` and a few `map`s over builtins (tanh, the loss).

The sigmoid is `0.5 + 0.5*tanh(z/2)`, which never overflows, and with
`t = tanh(z/2)`, `s = 1 - 2y` the per-row loss is computed stably from what the
forward pass already has:

    loss = softplus(s*z) = s*z/2 + |z|/2 + log(2) - log1p(|t|)

because `exp(-|z|) = (1 - |t|)/(1 + |t|)`. No second pass over the data is made
to report it.
"""

from __future__ import annotations

import gc
import math
import random
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat, starmap
from math import dist, hypot, log1p, tanh
from operator import mul
from typing import Literal

from fedd.learner.dataset import Dataset
from fedd.learner.errors import DataError
from fedd.learner.progress import Progress

__all__ = [
    "CLASS_WEIGHTS",
    "Batch",
    "ClassWeight",
    "TrainStats",
    "TrainingSet",
    "check_settings",
    "epoch_orders",
    "make_training_set",
    "predict_proba",
    "sigmoid",
    "train",
    "zeros",
]

ClassWeight = Literal["none", "balanced"]
CLASS_WEIGHTS: tuple[ClassWeight, ...] = ("none", "balanced")

_LOG2 = math.log(2.0)
# The floats from which a minibatch layout is frozen out of the cycle
# collector's sight (`make_training_set`).
_FREEZE_FLOATS = 1_000_000


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """One minibatch, laid out for the inner loop.

    `rows` are the feature tuples; `columns` the same floats by feature;
    `labels` one byte 0/1 a row; `weights` the per-row class weight, or None
    when unweighted. The rest is derived and precomputed once.
    """

    rows: tuple[tuple[float, ...], ...]
    columns: tuple[tuple[float, ...], ...]
    labels: bytes
    weights: tuple[float, ...] | None
    positives: tuple[int, ...]  # positions of the rows labelled 1
    quarter_norms: tuple[float, ...]  # |x_i|^2 / 4
    column_norms: tuple[float, ...]  # |col_j|^2
    label_terms: tuple[float, ...]  # sum_i c_i s_i x_ij, per feature j
    label_term_bias: float  # sum_i c_i s_i


@dataclass(frozen=True, slots=True, eq=False)
class TrainingSet:
    """A dataset cut into fixed minibatches, ready for many calls of `train`."""

    features: tuple[str, ...]
    batches: tuple[Batch, ...]
    n_rows: int
    class_weights: tuple[float, float] | None  # (weight of label 0, of label 1)


@dataclass(frozen=True, slots=True)
class TrainStats:
    """What one call of `train` did.

    `final_loss` is the mean log loss over the last epoch and `mean_loss` over
    all epochs, both from the forward passes of training (so each row is
    scored with the parameters before its own minibatch's step), unweighted.
    """

    epochs: int
    rows_seen: int
    seconds: float
    final_loss: float
    mean_loss: float


def zeros(n_features: int) -> list[float]:
    """The all-zero parameter vector `[bias, w_1..w_d]` for `n_features` features."""
    if n_features < 1:
        raise ValueError("n_features must be at least 1")
    return [0.0] * (n_features + 1)


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)), accurate for every float and never overflowing."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def make_training_set(
    data: Dataset,
    *,
    batch_size: int = 512,
    class_weight: ClassWeight = "none",
    seed: int = 42,
) -> TrainingSet:
    """Shuffle `data` (seeded) into fixed minibatches of `batch_size` rows.

    The last minibatch holds the remainder. Raises `ValueError` for a batch
    size below 1, an unknown class weighting, or `"balanced"` on data with only
    one class.
    """
    check_settings(batch_size=batch_size, class_weight=class_weight)
    n, d = data.n_rows, data.n_features
    weights = _class_weights(data.y) if class_weight == "balanced" else None
    # A uniformly random order: the rows sorted by a random float each. The sort
    # runs in C; random.shuffle makes a Python call per row, and takes half as
    # long again.
    draw = random.Random(f"fedd-batches-{seed}").random
    keys = [draw() for _ in range(n)]
    order = sorted(range(n), key=keys.__getitem__)
    del keys
    labels = bytes(map(data.y.__getitem__, order))
    row_bytes = d * data.x.itemsize
    unpack_rows = struct.Struct(f"={d}d").iter_unpack
    batches = []
    # The layout's tuples hold floats and each other, never a cycle, yet the
    # cycle collector would visit each of them and read every float it holds
    # (a sixth of this function's time, even a minibatch at a time while in
    # cache), and run older generations again and again meanwhile. So it is
    # paused, and a large layout frozen at the end: moved where no collection
    # looks, at no cost per object. Reference counting still frees it. What
    # else lives then is frozen with it; what is already garbage is collected
    # first, so that none is kept for good. That collection costs what
    # visiting a few hundred thousand floats does: a smaller layout (a peer's
    # shard, often) is left to the collector's usual course.
    large = n * d >= _FREEZE_FLOATS
    collecting = gc.isenabled()
    if large:
        gc.collect()
    gc.disable()
    try:
        with memoryview(data.x) as view, view.cast("B") as x:
            for start in range(0, n, batch_size):
                # The chosen rows' bytes, gathered in C, then unpacked in one
                # pass: the minibatch's floats come out one after the other in
                # memory, in the order an epoch walks them.
                offsets = list(map(mul, order[start : start + batch_size], repeat(row_bytes)))
                slices = list(map(slice, offsets, map(row_bytes.__add__, offsets)))
                rows = tuple(unpack_rows(b"".join(map(x.__getitem__, slices))))
                batches.append(_make_batch(rows, labels[start : start + batch_size], weights))
                # Freed only now: the next minibatch's offsets and slices take
                # their place, not its floats (an int and a float are blocks of
                # one size to the allocator), which keeps the floats together.
                del offsets, slices
        if large:
            gc.freeze()
    finally:
        if collecting:
            gc.enable()
    return TrainingSet(
        features=data.features, batches=tuple(batches), n_rows=n, class_weights=weights
    )


def _class_weights(y: bytes) -> tuple[float, float]:
    n, n_pos = len(y), y.count(1)
    if not 0 < n_pos < n:
        raise ValueError("balanced class weights need both classes in the training data")
    return (n / (2 * (n - n_pos)), n / (2 * n_pos))


def _make_batch(
    rows: tuple[tuple[float, ...], ...],
    labels: bytes,
    weights: tuple[float, float] | None,
) -> Batch:
    columns = tuple(zip(*rows, strict=True))
    positives = tuple(compress(range(len(labels)), labels))
    w0, w1 = (1.0, 1.0) if weights is None else weights
    # sum_i c_i s_i x_ij = w0 * (sum over all rows - sum over positives) - w1 * (sum over positives)
    # By feature over the positive rows (zip yields nothing when there are none).
    picked = map(rows.__getitem__, positives)
    on_positives: list[float] = list(map(sum, zip(*picked, strict=True))) or [0.0] * len(columns)
    label_terms = [
        w0 * (total - on) - w1 * on
        for total, on in zip(map(sum, columns), on_positives, strict=True)
    ]
    n_pos = len(positives)
    return Batch(
        rows=rows,
        columns=columns,
        labels=labels,
        weights=None if weights is None else tuple(map(weights.__getitem__, labels)),
        positives=positives,
        # |x_i| as hypot(*x_i): starmap hands each row to hypot as its argument
        # tuple, so no tuple is built per row.
        quarter_norms=tuple([0.25 * h * h for h in starmap(hypot, rows)]),
        column_norms=tuple([h * h for h in starmap(hypot, columns)]),
        label_terms=tuple(label_terms),
        label_term_bias=w0 * (len(labels) - n_pos) - w1 * n_pos,
    )


def epoch_orders(n_batches: int, epochs: int, seed: int) -> Iterator[list[int]]:
    """The order in which `train` visits the minibatches, one list per epoch."""
    rng = random.Random(f"fedd-epochs-{seed}")
    for _ in range(epochs):
        order = list(range(n_batches))
        rng.shuffle(order)
        yield order


def train(
    params: Sequence[float],
    data: TrainingSet,
    *,
    epochs: int = 2,
    lr: float = 0.1,
    l2: float = 0.0,
    seed: int = 42,
    progress: Progress | None = None,
    proximal_mu: float = 0.0,
    correction: Sequence[float] | None = None,
) -> tuple[list[float], TrainStats]:
    """Run `epochs` epochs of minibatch SGD from `params`; return the new parameters.

    `params` is `[bias, w_1..w_d]` (not modified); `progress` hears
    `(minibatches done, minibatches in the run)`. `proximal_mu` and
    `correction` (`[bias, w_1..w_d]`, or None for zeros) are FedProx's and
    SCAFFOLD's terms (see the module docstring). Deterministic for a given
    `seed` and training set. Raises `ValueError` for bad arguments and
    `DataError` if training diverges (a non-finite loss or parameter: the
    learning rate is too large for the data, or the data is not standardized).
    """
    _check_params(params, len(data.features))
    check_settings(epochs=epochs, lr=lr, l2=l2, proximal_mu=proximal_mu)
    if correction is not None:
        _check_params(correction, len(data.features))
    if data.n_rows == 0:
        raise ValueError("the training set is empty")
    bias = float(params[0])
    w = tuple(map(float, params[1:]))
    decay = 1.0 - lr * (l2 + proximal_mu)
    bias_decay = 1.0 - lr * proximal_mu
    kick = correction if correction is not None else [0.0] * len(params)
    # The constant part of each step: lr * (mu * theta_0 - k).
    bias_shift = lr * (proximal_mu * bias - kick[0])
    shifts = tuple([lr * (proximal_mu * wj - kj) for wj, kj in zip(w, kick[1:], strict=True)])
    batches = data.batches
    total_batches = epochs * len(batches)
    done = 0
    loss_sum = epoch_loss = 0.0
    started = time.perf_counter()
    for order in epoch_orders(len(batches), epochs, seed):
        epoch_loss = 0.0
        for k in order:
            batch = batches[k]
            rows, columns = batch.rows, batch.columns
            n = len(rows)
            # Forward: a_i = z_i / 2 (see the module docstring).
            norm_w = hypot(*w)
            c = 0.5 * bias + 0.25 * norm_w * norm_w
            a = [
                c + q - 0.25 * r * r
                for q, r in zip(batch.quarter_norms, map(dist, rows, repeat(w)), strict=True)
            ]
            t = tuple(map(tanh, a))
            # Loss: sum of s*a + |a| + log 2 - log1p(|t|); s*a summed via the positives.
            # Where every row is predicted right with certainty, each term is 0 and the
            # sums cancel to a few ulps either side of it: clamped, as a loss is >= 0.
            epoch_loss += max(
                0.0,
                sum(a)
                - 2.0 * sum(map(a.__getitem__, batch.positives))
                + sum(map(abs, a))
                + n * _LOG2
                - sum(map(log1p, map(abs, t))),
            )
            # Gradient of the mean loss: sum_i e_i x_ij / (2n) with e_i = c_i t_i + c_i s_i;
            # the c_i s_i part is the batch's label_terms (see the module docstring).
            u = t if batch.weights is None else tuple(map(mul, t, batch.weights))
            norm_u = hypot(*u)
            norm_u *= norm_u
            step = lr / (2 * n)
            half = 0.5 * step
            w = tuple(
                [
                    decay * wj - step * lt - half * (norm_u + cn - r * r) + sj
                    for wj, lt, cn, r, sj in zip(
                        w,
                        batch.label_terms,
                        batch.column_norms,
                        map(dist, repeat(u), columns),
                        shifts,
                        strict=True,
                    )
                ]
            )
            bias = bias_decay * bias - step * (sum(u) + batch.label_term_bias) + bias_shift
            done += 1
            if progress is not None:
                progress(done, total_batches)
        loss_sum += epoch_loss
        if not (math.isfinite(epoch_loss) and math.isfinite(bias + sum(w))):
            raise DataError(
                f"training diverged (the loss is not finite) with learning rate {lr}: "
                "lower --lr, or standardize the features with `fedd data prepare`"
            )
    seconds = time.perf_counter() - started
    return [bias, *w], TrainStats(
        epochs=epochs,
        rows_seen=epochs * data.n_rows,
        seconds=seconds,
        final_loss=epoch_loss / data.n_rows,
        mean_loss=loss_sum / (epochs * data.n_rows),
    )


def check_settings(
    *,
    epochs: int = 1,
    lr: float = 0.1,
    l2: float = 0.0,
    batch_size: int = 1,
    class_weight: str = "none",
    proximal_mu: float = 0.0,
) -> None:
    """Raise `ValueError` naming the first SGD setting that cannot work.

    Defaults are valid, so callers pass only the settings they hold.
    """
    if type(epochs) is not int or epochs < 1:
        raise ValueError("epochs must be an int >= 1")
    if not (math.isfinite(lr) and lr > 0.0):
        raise ValueError("lr must be a finite number > 0")
    if not (math.isfinite(l2) and l2 >= 0.0):
        raise ValueError("l2 must be a finite number >= 0")
    if not (math.isfinite(proximal_mu) and proximal_mu >= 0.0):
        raise ValueError("proximal_mu must be a finite number >= 0")
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError("batch_size must be an int >= 1")
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}")


def _check_params(params: Sequence[float], n_features: int) -> None:
    if len(params) != n_features + 1:
        raise ValueError(
            f"params has {len(params)} values; {n_features} features need "
            f"{n_features + 1} (bias first)"
        )
    if not all(map(math.isfinite, params)):
        raise ValueError("params must be finite")


def predict_proba(params: Sequence[float], data: Dataset) -> list[float]:
    """P(label = 1) for every row of `data`, in row order.

    Raises `ValueError` unless `params` holds the bias and one weight per
    feature, all finite.
    """
    _check_params(params, data.n_features)
    bias, w = params[0], params[1:]
    return [sigmoid(bias + sum(map(mul, w, row))) for row in data.rows()]
