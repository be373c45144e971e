"""The learner's federated pieces: holdout split, exact moments, binned metrics."""

from __future__ import annotations

import itertools
import math
import random
from array import array
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.binned import (
    MAX_BINS,
    ScoreCounts,
    binned_metrics,
    check_edges,
    initial_edges,
    refine,
    score_rows,
)
from fedd.learner.dataset import Dataset
from fedd.learner.holdout import concat, split_holdout
from fedd.learner.metrics import evaluate, log_loss, pr_auc, roc_auc
from fedd.learner.model import predict_proba
from fedd.learner.moments import Moments, local_moments, statistics
from fedd.learner.prepare import column_stats
from fedd.learner.scaling import ZERO_VARIANCE_NOTE, standardize, unscaled_columns
from tests.learner.helpers import make_dataset


def dataset(columns: list[list[float]], labels: list[int], source: str = "m") -> Dataset:
    x = array("d", [v for row in zip(*columns, strict=True) for v in row])
    names = tuple(f"f{j}" for j in range(len(columns)))
    return Dataset(source, names, "y", x, bytes(labels))


def add(parts: list[Moments]) -> Moments:
    return Moments(
        sum(p.rows for p in parts),
        sum(p.positives for p in parts),
        tuple(map(sum, zip(*(p.sums for p in parts), strict=True))),
        tuple(map(sum, zip(*(p.squares for p in parts), strict=True))),
    )


def exact_stats(values: list[float]) -> tuple[Fraction, Fraction]:
    """Mean and population variance of the floats, exactly."""
    xs = [Fraction(v) for v in values]
    mean = sum(xs, Fraction(0)) / len(xs)
    return mean, sum(((x - mean) ** 2 for x in xs), Fraction(0)) / len(xs)


# -- holdout -------------------------------------------------------------------


def test_the_holdout_is_stratified_seeded_and_every_row_lands_once() -> None:
    data = make_dataset(1000, 3, seed=1, positive_rate=0.1)
    split = split_holdout(data, 0.2, seed=7)
    assert split.holdout is not None
    assert split.train.n_rows + split.holdout.n_rows == 1000
    assert split.holdout.n_positives == round(data.n_positives * 0.2)
    again = split_holdout(data, 0.2, seed=7)
    assert again.holdout is not None and again.holdout.x == split.holdout.x
    other = split_holdout(data, 0.2, seed=8)
    assert other.holdout is not None and other.holdout.x != split.holdout.x
    rows = sorted(map(tuple, (*split.train.rows(), *split.holdout.rows())))
    assert rows == sorted(map(tuple, data.rows()))


def test_a_class_with_one_row_stays_in_training_and_zero_holds_nothing_out() -> None:
    data = dataset([[1.0, 2.0, 3.0, 4.0]], [0, 0, 0, 1])
    split = split_holdout(data, 0.5)
    assert split.holdout is not None and split.holdout.y == bytes([0, 0])
    assert split.train.n_positives == 1
    assert split_holdout(data, 0.0).holdout is None
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_holdout(data, 1.0)


def test_concat_keeps_rows_in_order_and_refuses_other_columns() -> None:
    a = dataset([[1.0, 2.0]], [0, 1])
    b = dataset([[3.0]], [1])
    both = concat([a, b], "ab")
    assert list(both.x) == [1.0, 2.0, 3.0] and both.y == bytes([0, 1, 1])
    with pytest.raises(ValueError, match="different feature"):
        concat([a, dataset([[1.0], [2.0]], [0])], "x")


# -- moments -------------------------------------------------------------------

finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(finite, min_size=2, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_summed_moments_give_the_pooled_mean_and_std_within_2_to_the_minus_64(
    values: list[float], cuts: list[int]
) -> None:
    bounds = sorted({0, len(values), *(c for c in cuts if c < len(values))})
    parts = [
        local_moments(dataset([values[a:b]], [0] * (b - a))) for a, b in itertools.pairwise(bounds)
    ]
    (stat,) = statistics(add(parts), ["f0"])
    mean, variance = exact_stats(values)
    # Fixed point moves each value by at most 2^-65; then one float rounding each.
    assert abs(Fraction(stat.mean) - mean) <= Fraction(1, 2**64) + abs(mean) * 2**-52
    std = math.sqrt(variance)
    if stat.note:  # no variance left in fixed point: the values differ by less than 2^-64
        assert (stat.std, stat.note) == (1.0, ZERO_VARIANCE_NOTE) and std <= 2**-64
    else:
        assert abs(stat.std - std) <= 2**-64 + std * 2**-51


def test_moments_of_balances_near_1e7_over_many_rows_stay_exact() -> None:
    """The sum of squares (about 1e20) is far beyond one 64-bit lane."""
    rng = random.Random(3)
    values = [round(1e7 + rng.gauss(0, 2e6), 2) for _ in range(300_000)]
    moments = local_moments(dataset([values], [0] * len(values)))
    assert sum(v * v for v in values) > 2**64
    (stat,) = statistics(moments, ["balance"])
    mean, variance = exact_stats(values)
    std = math.sqrt(variance)
    assert abs(stat.mean - float(mean)) <= 1e-9 * std
    assert abs(stat.std - std) <= 1e-9 * std


def test_statistics_refuse_sums_no_rows_can_give() -> None:
    with pytest.raises(ValueError, match="negative variance"):
        statistics(Moments(2, 0, (2**64,), (0,)), ["f"])
    with pytest.raises(ValueError, match="no rows"):
        statistics(Moments(0, 0, (0,), (0,)), ["f"])


def test_standardize_and_the_unscaled_check() -> None:
    raw = dataset([[100.0, 200.0, 300.0], [0.0, 1.0, 2.0]], [0, 1, 0])
    assert unscaled_columns(raw) == ["f0 (mean 200, std 81.65)"]
    stats = statistics(local_moments(raw), raw.features)
    scaled = standardize(raw, stats)
    assert unscaled_columns(scaled) == []
    assert [round(v, 12) for v in scaled.x[0::2]] == [-1.224744871392, 0.0, 1.224744871392]
    with pytest.raises(ValueError, match="other feature"):
        standardize(raw, stats[:1])


def test_federated_statistics_match_prepare_on_the_same_rows() -> None:
    data = make_dataset(500, 4, seed=2)
    pooled = column_stats(data, range(data.n_rows))
    federated = statistics(local_moments(data), data.features)
    for a, b in zip(pooled, federated, strict=True):
        assert abs(a.mean - b.mean) <= 1e-12 and abs(a.std - b.std) <= 1e-12


# -- binned metrics --------------------------------------------------------------


def scored(n: int, seed: int, separation: float) -> tuple[Dataset, list[float]]:
    data = make_dataset(n, 3, seed=seed, positive_rate=0.15, shift=separation)
    return data, [0.1, 0.8, -0.4, 0.3]


@pytest.mark.parametrize("separation", [0.3, 1.5, 4.0])
def test_exact_metrics_lie_within_the_stated_bounds(separation: float) -> None:
    data, params = scored(2000, 5, separation)
    edges = initial_edges(params)
    check_edges(edges)
    halves = [data.n_rows // 3, 2 * data.n_rows // 3]
    parts = []
    for a, b in zip([0, *halves], [*halves, data.n_rows], strict=True):
        part = Dataset("p", data.features, "y", data.x[a * 3 : b * 3], data.y[a:b])
        parts.append(score_rows(params, part, edges))
    total = ScoreCounts(
        tuple(map(sum, zip(*(p.positives for p in parts), strict=True))),
        tuple(map(sum, zip(*(p.negatives for p in parts), strict=True))),
        sum(p.tp for p in parts),
        sum(p.fp for p in parts),
        math.fsum(p.loss for p in parts),
        sum(p.peers for p in parts),
    )
    m = binned_metrics(total, edges)
    labels, probs = list(data.y), predict_proba(params, data)
    exact = evaluate(labels, probs)
    assert abs(m.roc_auc - exact.roc_auc) <= m.roc_bound + 1e-12
    assert abs(m.pr_auc - exact.pr_auc) <= m.pr_bound + 1e-12
    assert (m.precision, m.recall, m.f1) == (exact.precision, exact.recall, exact.f1)
    assert math.isclose(m.logloss, log_loss(labels, probs), rel_tol=1e-12)
    assert (m.rows, m.positives, m.peers) == (2000, data.n_positives, 3)


def test_refining_brings_both_bounds_below_a_thousandth() -> None:
    data, params = scored(5000, 9, 1.0)
    params = [p * 1e-4 for p in params]  # an early model: every score near 0.5
    edges = initial_edges(params)
    passes = []
    for _ in range(4):
        m = binned_metrics(score_rows(params, data, edges), edges)
        passes.append((m.roc_bound, m.pr_bound))
        if max(m.roc_bound, m.pr_bound) < 1e-3:
            break
        edges = refine(edges, score_rows(params, data, edges))
        check_edges(edges)
    labels, probs = list(data.y), predict_proba(params, data)
    assert max(passes[-1]) < 1e-3, passes
    assert abs(m.roc_auc - roc_auc(labels, probs)) <= m.roc_bound + 1e-12
    assert abs(m.pr_auc - pr_auc(labels, probs)) <= m.pr_bound + 1e-12
    assert len(edges) < MAX_BINS


def test_edges_are_checked() -> None:
    for bad, message in [
        ([0.0, 0.0], "increasing"),
        ([math.nan], "finite"),
        ([float(i) for i in range(MAX_BINS)], "at most"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_edges(bad)
