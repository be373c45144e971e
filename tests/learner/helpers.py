"""Small builders shared by the learner tests."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence

from fedd.learner.dataset import Dataset
from fedd.learner.model import TrainingSet, epoch_orders, sigmoid


def make_dataset(
    n: int, d: int, *, seed: int = 0, positive_rate: float = 0.2, shift: float = 1.5
) -> Dataset:
    """Gaussian features; positives shifted by `shift` on the first half of the features."""
    rng = random.Random(seed)
    x: array[float] = array("d")
    y = bytearray()
    for _ in range(n):
        cls = 1 if rng.random() < positive_rate else 0
        x.extend(rng.gauss(shift * cls if j < (d + 1) // 2 else 0.0, 1.0) for j in range(d))
        y.append(cls)
    return Dataset("memory", tuple(f"f{j}" for j in range(d)), "y", x, bytes(y))


def naive_train(
    params: Sequence[float],
    data: TrainingSet,
    *,
    epochs: int,
    lr: float,
    l2: float,
    seed: int,
    proximal_mu: float = 0.0,
    correction: Sequence[float] | None = None,
) -> tuple[list[float], float, float]:
    """The same SGD written the plain way: returns (params, final loss, mean loss).

    The gradient also holds FedProx's mu (theta - theta_0), theta_0 the start, and
    SCAFFOLD's constant `correction`, both over every parameter, bias included.
    """
    anchor = list(params)
    shift = list(correction) if correction is not None else [0.0] * len(params)
    bias, w = params[0], list(params[1:])
    d = len(w)
    total = last = 0.0
    for order in epoch_orders(len(data.batches), epochs, seed):
        last = 0.0
        for k in order:
            batch = data.batches[k]
            grad, grad_bias = [0.0] * d, 0.0
            for i, (row, cls) in enumerate(zip(batch.rows, batch.labels, strict=True)):
                z = bias + sum(w[j] * row[j] for j in range(d))
                p = sigmoid(z)
                last += math.log1p(math.exp(-z)) + z if cls == 0 else math.log1p(math.exp(-z))
                weight = 1.0 if batch.weights is None else batch.weights[i]
                err = weight * (p - cls)
                for j in range(d):
                    grad[j] += err * row[j]
                grad_bias += err
            n = len(batch.rows)
            for j in range(d):
                prox = proximal_mu * (w[j] - anchor[j + 1])
                w[j] -= lr * (grad[j] / n + l2 * w[j] + prox + shift[j + 1])
            bias -= lr * (grad_bias / n + proximal_mu * (bias - anchor[0]) + shift[0])
        total += last
    return [bias, *w], last / data.n_rows, total / (epochs * data.n_rows)
