"""Intervals for scores on a finite test set, and the weight of one transaction."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.metrics import Confusion, confusion, roc_auc
from fedd.learner.uncertainty import (
    Interval,
    _binomial,
    _Side,
    auc_interval,
    f1_interval,
    f1_step,
    paired_intervals,
)


def test_one_transaction_moves_f1_by_the_catch_of_one_more_fraud() -> None:
    # 19 positives, 10 caught, 5 false alarms: F1 20/34; one more catch: 22/35.
    assert f1_step(Confusion(10, 5, 5000, 9)) == pytest.approx(22 / 35 - 20 / 34)
    # Every fraud caught: what missing one costs.
    assert f1_step(Confusion(19, 0, 5000, 0)) == pytest.approx(1.0 - 36 / 37)
    # Nothing flagged: the first catch takes F1 from 0 to 2/(P+1).
    assert f1_step(Confusion(0, 0, 5000, 19)) == pytest.approx(2 / 20)
    assert f1_step(Confusion(0, 3, 5000, 0)) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=60),
    data=st.data(),
)
def test_a_resample_scores_as_its_rows_repeated(labels: list[int], data: st.DataObject) -> None:
    """The weighted ROC-AUC and F1 of a resample are those of the rows it drew, each
    repeated as often as drawn, as learner.metrics computes them (ties included)."""
    n = len(labels)
    scores = data.draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7]), min_size=n, max_size=n))
    drawn = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3 * n))
    counts = Counter(drawn)
    rows = sorted(counts.elements())
    ys, ss = [labels[i] for i in rows], [scores[i] for i in rows]
    got = _Side(labels, scores, 0.5).scores(counts)
    if 0 < sum(ys) < len(ys):
        assert got is not None
        assert got[0] == pytest.approx(roc_auc(ys, ss), abs=1e-12)
        assert got[1] == pytest.approx(confusion(ys, ss, 0.5).f1, abs=1e-12)
    else:
        assert got is None


def test_paired_intervals_hold_the_difference_and_pairing_narrows_them() -> None:
    rng = random.Random(3)
    labels = [int(rng.random() < 0.05) for _ in range(3000)]
    first = [rng.random() * 0.6 + 0.4 * y * rng.random() for y in labels]
    # The second model is the first plus a little noise: their errors go together.
    second = [min(1.0, max(0.0, s + rng.gauss(0, 0.02))) for s in first]
    got = paired_intervals(labels, first, second, 0.5, seed=1)
    roc, f1 = got["roc_auc"], got["f1"]
    assert roc is not None and f1 is not None
    difference = roc_auc(labels, second) - roc_auc(labels, first)
    assert roc.low <= difference <= roc.high
    own = auc_interval(roc_auc(labels, first), sum(labels), len(labels) - sum(labels))
    assert roc.high - roc.low < (own.high - own.low) / 3
    assert paired_intervals(labels, first, second, 0.5, seed=1) == got  # seeded
    same = paired_intervals(labels, first, first, 0.5)
    assert same == {"roc_auc": Interval(0.0, 0.0), "f1": Interval(0.0, 0.0)}


def test_resamples_without_a_class_are_skipped() -> None:
    labels = [1] + [0] * 999  # a resample misses the one positive about 37% of the time
    first, second = [0.9] + [0.1] * 999, [0.6] + [0.1] * 998 + [0.7]
    got = paired_intervals(labels, first, second, 0.5)
    # Either the positive is drawn and outranks every negative drawn but the last row, or
    # the resample is skipped: the difference is 0, or the last row's share of negatives.
    assert got["roc_auc"] is not None and -0.01 < got["roc_auc"].low <= got["roc_auc"].high <= 0


def test_paired_intervals_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="same, non-zero length"):
        paired_intervals([0, 1], [0.1], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        paired_intervals([0, 2], [0.1, 0.2], [0.1, 0.2], 0.5)


def test_each_side_alone_gets_an_interval_around_its_score() -> None:
    # Hanley and McNeil: Q1 = A/(2-A), Q2 = 2A^2/(1+A), and for A = 0.9, 20 positives and
    # 1980 negatives a standard error of 0.0462, so a 95% interval 0.181 wide.
    auc = auc_interval(0.9, 20, 1980)
    assert auc.low < 0.9 < auc.high and auc.high - auc.low == pytest.approx(0.1812, abs=1e-4)
    assert auc_interval(1.0, 5, 5) == Interval(1.0, 1.0)
    counts = Confusion(12, 4, 176, 8)
    f1 = f1_interval(counts, seed=2)
    assert f1.low < counts.f1 < f1.high
    assert f1_interval(counts, seed=2) == f1
    assert f1_interval(Confusion(0, 3, 180, 20)) == Interval(0.0, 0.0)
    with pytest.raises(ValueError, match="positives and negatives"):
        auc_interval(0.5, 0, 10)


@pytest.mark.parametrize(("n", "p"), [(1000, 0.004), (1000, 0.3), (10**6, 0.2), (50, 0.9)])
def test_binomial_draws_have_the_binomial_mean(n: int, p: float) -> None:
    rng = random.Random(7)
    draws = [_binomial(n, p, rng) for _ in range(4000)]
    assert all(0 <= k <= n for k in draws)
    mean = sum(draws) / len(draws)
    assert mean == pytest.approx(n * p, rel=0.05, abs=0.2)
