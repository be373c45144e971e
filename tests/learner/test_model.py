"""Logistic regression: agreement with the plain algorithm, determinism, stability."""

from __future__ import annotations

import gc
import math
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.dataset import Dataset
from fedd.learner.errors import DataError
from fedd.learner.metrics import roc_auc
from fedd.learner.model import (
    TrainingSet,
    epoch_orders,
    make_training_set,
    predict_proba,
    sigmoid,
    train,
    zeros,
)
from tests.learner.helpers import make_dataset, naive_train


def test_sigmoid_is_accurate_and_never_overflows() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(-30.0) == pytest.approx(math.exp(-30.0) / (1 + math.exp(-30.0)), rel=1e-15)
    assert sigmoid(2.0) + sigmoid(-2.0) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    ("class_weight", "l2", "batch_size", "epochs"),
    [
        ("none", 0.0, 64, 1),
        ("balanced", 0.0, 50, 2),
        ("none", 0.01, 37, 3),
        ("balanced", 0.1, 500, 2),
    ],
)
def test_train_matches_the_plain_algorithm(
    class_weight: str, l2: float, batch_size: int, epochs: int
) -> None:
    data = make_dataset(700, 9, seed=1)
    ts = make_training_set(data, batch_size=batch_size, class_weight=class_weight, seed=5)  # type: ignore[arg-type]
    start = [0.3, *(0.1 * j for j in range(-4, 5))]
    params, stats = train(start, ts, epochs=epochs, lr=0.5, l2=l2, seed=9)
    expected, final_loss, mean_loss = naive_train(start, ts, epochs=epochs, lr=0.5, l2=l2, seed=9)
    assert params == pytest.approx(expected, abs=1e-10)
    assert stats.final_loss == pytest.approx(final_loss, rel=1e-10)
    assert stats.mean_loss == pytest.approx(mean_loss, rel=1e-10)
    assert (stats.epochs, stats.rows_seen) == (epochs, epochs * 700)
    assert stats.seconds > 0.0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    d=st.integers(1, 6),
    batch_size=st.integers(1, 70),
    seed=st.integers(0, 2**32),
    scale=st.floats(0.0, 3.0),
)
def test_train_matches_the_plain_algorithm_on_any_small_set(
    n: int, d: int, batch_size: int, seed: int, scale: float
) -> None:
    data = make_dataset(n, d, seed=seed % 1000, positive_rate=0.5)
    ts = make_training_set(data, batch_size=batch_size, seed=seed)
    start = [scale * ((-1) ** j) for j in range(d + 1)]
    params, stats = train(start, ts, epochs=2, lr=0.3, l2=0.05, seed=seed)
    expected, final_loss, _ = naive_train(start, ts, epochs=2, lr=0.3, l2=0.05, seed=seed)
    assert params == pytest.approx(expected, abs=1e-9)
    assert stats.final_loss == pytest.approx(final_loss, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("proximal_mu", "correction", "l2"),
    [
        (0.1, None, 0.0),
        (1.0, None, 0.01),
        (0.0, [0.05, *(0.01 * j for j in range(-4, 5))], 0.0),
        (0.3, [-0.2, *(0.02 * j for j in range(-4, 5))], 0.05),
    ],
)
def test_fedprox_and_scaffold_terms_match_the_plain_algorithm(
    proximal_mu: float, correction: list[float] | None, l2: float
) -> None:
    data = make_dataset(700, 9, seed=3)
    ts = make_training_set(data, batch_size=64, seed=5)
    start = [0.3, *(0.1 * j for j in range(-4, 5))]
    kw = {"epochs": 3, "lr": 0.5, "l2": l2, "seed": 9, "proximal_mu": proximal_mu}
    params, _ = train(start, ts, correction=correction, **kw)  # type: ignore[arg-type]
    expected, _, _ = naive_train(start, ts, correction=correction, **kw)  # type: ignore[arg-type]
    assert params == pytest.approx(expected, abs=1e-10)
    plain, _ = train(start, ts, epochs=3, lr=0.5, l2=l2, seed=9)
    assert max(abs(a - b) for a, b in zip(params, plain, strict=True)) > 1e-3  # the terms act


def _batch_loss(params: list[float], rows: tuple[tuple[float, ...], ...], labels: bytes) -> float:
    """The mean log loss of one minibatch, computed the plain way."""
    total = 0.0
    for row, label in zip(rows, labels, strict=True):
        z = params[0] + sum(w * x for w, x in zip(params[1:], row, strict=True))
        total += math.log1p(math.exp(-z)) + (z if label == 0 else 0.0)
    return total / len(rows)


def test_fedprox_step_follows_the_gradient_of_the_proximal_objective() -> None:
    """Two minibatches, one epoch: the second step starts away from the global model
    theta_0, so it must follow the numerical gradient of
    F(theta) = loss(theta) + mu/2 |theta - theta_0|^2, bias included."""
    data = make_dataset(40, 3, seed=4, positive_rate=0.5)
    ts = make_training_set(data, batch_size=20, seed=1)
    start, mu, lr = [0.2, -0.1, 0.3, 0.05], 2.0, 0.4
    order = next(iter(epoch_orders(len(ts.batches), 1, 7)))
    first, second = (ts.batches[k] for k in order)
    after_one, _ = train(start, make_training_set_of(first), epochs=1, lr=lr, seed=7)
    # The first step: the proximal term is 0 at theta_0, so it is plain SGD.
    after_two, _ = train(start, ts, epochs=1, lr=lr, seed=7, proximal_mu=mu)

    def objective(theta: list[float]) -> float:
        prox = sum((t - s) ** 2 for t, s in zip(theta, start, strict=True))
        return _batch_loss(theta, second.rows, second.labels) + mu / 2 * prox

    h = 1e-6
    gradient = []
    for j in range(len(start)):
        up, down = list(after_one), list(after_one)
        up[j] += h
        down[j] -= h
        gradient.append((objective(up) - objective(down)) / (2 * h))
    expected = [t - lr * g for t, g in zip(after_one, gradient, strict=True)]
    assert after_two == pytest.approx(expected, abs=1e-7)


def make_training_set_of(batch: object) -> TrainingSet:
    """A training set holding exactly `batch`, as one minibatch."""
    rows, labels = batch.rows, batch.labels  # type: ignore[attr-defined]
    x = array("d", [v for row in rows for v in row])
    return make_training_set(
        Dataset("one batch", ("f0", "f1", "f2"), "y", x, bytes(labels)), batch_size=len(rows)
    )


def test_training_is_deterministic_per_seed_and_leaves_its_input_alone() -> None:
    data = make_dataset(500, 5, seed=2)
    start = zeros(5)
    a, _ = train(start, make_training_set(data, seed=1, batch_size=32), lr=0.2, seed=3)
    b, _ = train(start, make_training_set(data, seed=1, batch_size=32), lr=0.2, seed=3)
    c, _ = train(start, make_training_set(data, seed=1, batch_size=32), lr=0.2, seed=4)
    d, _ = train(start, make_training_set(data, seed=2, batch_size=32), lr=0.2, seed=3)
    assert a == b
    assert a != c
    assert a != d
    assert start == [0.0] * 6


def test_training_learns_a_separable_signal() -> None:
    data = make_dataset(3000, 6, seed=3, positive_rate=0.1, shift=2.0)
    test = make_dataset(1000, 6, seed=4, positive_rate=0.1, shift=2.0)
    ts = make_training_set(data, batch_size=64)
    params, first = train(zeros(6), ts, epochs=1, lr=0.5)
    params, later = train(params, ts, epochs=3, lr=0.5)
    assert later.final_loss < first.final_loss
    assert roc_auc(test.y, predict_proba(params, test)) > 0.95


def test_training_set_holds_every_row_once_with_consistent_precomputation() -> None:
    data = make_dataset(1000, 4, seed=5)
    ts = make_training_set(data, batch_size=300, class_weight="balanced", seed=8)
    assert [len(b.rows) for b in ts.batches] == [300, 300, 300, 100]
    rows = sorted(row for b in ts.batches for row in b.rows)
    assert rows == sorted(tuple(r) for r in data.rows())
    n_pos = data.n_positives
    assert ts.class_weights == pytest.approx((1000 / (2 * (1000 - n_pos)), 1000 / (2 * n_pos)))
    for b in ts.batches:
        assert b.columns == tuple(zip(*b.rows, strict=True))
        assert b.positives == tuple(i for i, y in enumerate(b.labels) if y)
        assert b.weights == tuple(ts.class_weights[y] for y in b.labels)  # type: ignore[index]
        for row, q in zip(b.rows, b.quarter_norms, strict=True):
            assert q == pytest.approx(sum(v * v for v in row) / 4)


def test_layout_leaves_the_collector_and_the_features_array_as_it_found_them() -> None:
    data = make_dataset(100, 3, seed=1)
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            make_training_set(data, batch_size=16)
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    data.x.append(0.0)  # a view of the array left alive would refuse this (BufferError)
    data.x.pop()


def test_a_large_layout_is_out_of_the_collectors_sight_and_still_freed() -> None:
    data = make_dataset(40_000, 25, seed=2)  # a million floats
    before = gc.get_freeze_count()
    ts = make_training_set(data, batch_size=512)
    # Every row tuple (and the columns, the batches) frozen: no collection visits them.
    frozen = gc.get_freeze_count()
    assert frozen >= before + data.n_rows
    del ts
    # Reference counting frees a frozen layout: building one per run keeps nothing.
    assert gc.get_freeze_count() <= frozen - data.n_rows


def test_a_small_layout_freezes_nothing() -> None:
    # A full collection would cost more than the collector's visits it saves.
    data = make_dataset(1000, 3, seed=2)
    before = gc.get_freeze_count()
    ts = make_training_set(data, batch_size=64)
    assert gc.get_freeze_count() == before
    assert len(ts.batches) == 16


def test_epoch_orders_are_permutations_and_seeded() -> None:
    orders = list(epoch_orders(10, 3, seed=1))
    assert len(orders) == 3
    assert all(sorted(o) == list(range(10)) for o in orders)
    assert orders[0] != orders[1]
    assert orders == list(epoch_orders(10, 3, seed=1))


def test_predict_proba_is_the_sigmoid_of_the_linear_score() -> None:
    data = make_dataset(20, 3, seed=6)
    params = [0.5, -1.0, 2.0, 0.25]
    expected = [
        sigmoid(params[0] + sum(w * v for w, v in zip(params[1:], row, strict=True)))
        for row in data.rows()
    ]
    assert predict_proba(params, data) == pytest.approx(expected, rel=1e-14)


def test_progress_reports_every_batch_up_to_the_total() -> None:
    seen: list[tuple[int, int]] = []
    ts = make_training_set(make_dataset(100, 2), batch_size=30)
    train(zeros(2), ts, epochs=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 8) for k in range(1, 9)]


def test_divergence_is_a_data_error_not_nan_parameters() -> None:
    x = array("d", [1e150, -1e150] * 10)
    data = Dataset("huge", ("a", "b"), "y", x, bytes([0, 1] * 5))
    with pytest.raises(DataError, match="diverged"):
        train(zeros(2), make_training_set(data, batch_size=2), epochs=1, lr=1e10)


def test_the_loss_of_rows_all_predicted_with_certainty_is_zero_not_below() -> None:
    """One class and unscaled rows: every row soon scores 0 exactly, the per-row losses
    are all 0, and their sums cancel to a few ulps that may fall below 0."""
    x = array("d", [50.0 + (k * 7919 % 4950) for k in range(600 * 3)])
    data = Dataset("one class, raw amounts", ("a", "b", "c"), "y", x, bytes(600))
    _, stats = train(zeros(3), make_training_set(data), epochs=3)
    assert stats.final_loss == 0.0 and stats.mean_loss > 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": [0.0, 0.0]}, "params has 2 values"),
        ({"params": [0.0, math.nan, 0.0]}, "finite"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"l2": -1.0}, "l2"),
        ({"proximal_mu": -0.5}, "proximal_mu"),
        ({"proximal_mu": math.nan}, "proximal_mu"),
        ({"correction": [0.0, 0.0]}, "params has 2 values"),
        ({"correction": [0.0, math.inf, 0.0]}, "finite"),
    ],
)
def test_train_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    ts = make_training_set(make_dataset(10, 2), batch_size=4)
    args: dict[str, object] = {"params": zeros(2), **kwargs}
    params = args.pop("params")
    with pytest.raises(ValueError, match=message):
        train(params, ts, **args)  # type: ignore[arg-type]


def test_training_set_rejects_bad_arguments() -> None:
    data = make_dataset(10, 2)
    with pytest.raises(ValueError, match="batch_size"):
        make_training_set(data, batch_size=0)
    with pytest.raises(ValueError, match="class_weight"):
        make_training_set(data, class_weight="auto")  # type: ignore[arg-type]
    one_class = Dataset("m", ("a",), "y", array("d", [1.0, 2.0]), b"\x00\x00")
    with pytest.raises(ValueError, match="both classes"):
        make_training_set(one_class, class_weight="balanced")
    with pytest.raises(ValueError, match="params has"):
        predict_proba([0.0], data)
    with pytest.raises(ValueError, match="n_features"):
        zeros(0)
