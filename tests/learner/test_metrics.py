"""Metrics against hand-computed cases, brute-force oracles and invariances."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fedd.learner.metrics import Confusion, confusion, evaluate, log_loss, pr_auc, roc_auc

FAST = settings(max_examples=80, deadline=None)


def test_roc_auc_hand_cases() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == 0.875  # one tied pair counts 1/2
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([0, 0, 1], [0.1, 0.2, 0.3]) == 1.0
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.3]) == 0.0
    assert roc_auc(b"\x00\x01", [0.2, 0.7]) == 1.0  # labels as bytes, as datasets hold them


def test_pr_auc_hand_cases() -> None:
    # Sorted high to low: 1, 0, 1, 0 -> 0.5 * 1 + 0.5 * 2/3.
    assert pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    # A tie group {1, 0} at the top counts as one threshold: 0.5 * 1/2 + 0.5 * 2/3.
    assert pr_auc([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.1]) == pytest.approx(7 / 12)
    # All scores equal: one threshold, precision = positive rate.
    assert pr_auc([1, 0, 0, 0], [0.3, 0.3, 0.3, 0.3]) == 0.25
    assert pr_auc([0, 1, 1], [0.1, 0.8, 0.9]) == 1.0


def test_confusion_and_ratios_at_a_threshold() -> None:
    counts = confusion([1, 1, 0, 0, 1], [0.9, 0.5, 0.5, 0.1, 0.2])
    assert counts == Confusion(tp=2, fp=1, tn=1, fn=1)
    assert counts.precision == pytest.approx(2 / 3)
    assert counts.recall == pytest.approx(2 / 3)
    assert counts.f1 == pytest.approx(2 / 3)
    assert confusion([1, 0], [0.9, 0.1], threshold=0.95) == Confusion(tp=0, fp=0, tn=1, fn=1)
    nothing = Confusion(tp=0, fp=0, tn=5, fn=2)
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)


def test_log_loss_hand_case_and_clipping() -> None:
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert log_loss([1, 0], [0.8, 0.3]) == pytest.approx(expected)
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-15), rel=1e-4)
    assert 0.0 < log_loss([1, 0], [1.0, 0.0]) < 1e-14  # clipped away from 0 too


def test_evaluate_bundles_everything() -> None:
    m = evaluate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (m.roc_auc, m.rows, m.positives, m.threshold) == (0.75, 4, 2, 0.5)
    assert m.pr_auc == pytest.approx(5 / 6)
    assert (m.precision, m.recall, m.f1) == (1.0, 0.5, pytest.approx(2 / 3))
    assert m.confusion == Confusion(tp=1, fp=0, tn=2, fn=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: roc_auc([1, 1], [0.1, 0.2]), "both classes"),
        (lambda: roc_auc([0, 0], [0.1, 0.2]), "both classes"),
        (lambda: pr_auc([0, 0], [0.1, 0.2]), "positive"),
        (lambda: evaluate([1, 1, 1], [0.1, 0.2, 0.3]), "both classes"),
        (lambda: roc_auc([0, 1], [0.1]), "2 labels but 1 scores"),
        (lambda: roc_auc([], []), "no rows"),
        (lambda: log_loss([], []), "no rows"),
        (lambda: confusion([0, 2], [0.1, 0.2]), "0 or 1"),
        (lambda: log_loss([0, 1], [0.1, 0.2], eps=0.0), "eps"),
    ],
)
def test_bad_arguments_raise_value_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def _pairwise_auc(labels: list[int], scores: list[float]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _ap_without_ties(labels: list[int], scores: list[float]) -> float:
    ranked = sorted(zip(scores, labels, strict=True), reverse=True)
    hits, total = 0, 0.0
    for k, (_, y) in enumerate(ranked, 1):
        if y:
            hits += 1
            total += hits / k
    return total / hits


labelled = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(-30, 30), min_size=n, max_size=n),
    )
)
labelled_unique = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(-1000, 1000), min_size=n, max_size=n, unique=True),
    )
)


@FAST
@given(labelled)
def test_roc_auc_equals_the_pairwise_count(case: tuple[list[int], list[int]]) -> None:
    labels, ints = case
    assume(0 < sum(labels) < len(labels))
    scores = [float(s) for s in ints]
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores))


@FAST
@given(labelled_unique)
def test_pr_auc_equals_mean_precision_at_each_positive(case: tuple[list[int], list[int]]) -> None:
    labels, ints = case
    assume(sum(labels) > 0)
    scores = [float(s) for s in ints]
    assert pr_auc(labels, scores) == pytest.approx(_ap_without_ties(labels, scores))


@FAST
@given(labelled, st.sampled_from(["exp", "cube", "affine"]))
def test_ranking_metrics_ignore_strictly_increasing_transforms(
    case: tuple[list[int], list[int]], transform: str
) -> None:
    labels, ints = case
    assume(0 < sum(labels) < len(labels))
    scores = [float(s) for s in ints]
    # Each transform is strictly increasing and exact enough on these integers
    # to keep distinct scores distinct.
    f = {"exp": lambda v: math.exp(v / 8), "cube": lambda v: v**3, "affine": lambda v: 2 * v - 7}
    moved = [f[transform](s) for s in scores]
    assert roc_auc(labels, moved) == roc_auc(labels, scores)
    assert pr_auc(labels, moved) == pr_auc(labels, scores)


@FAST
@given(labelled_unique)
def test_roc_auc_of_reversed_scores_is_one_minus(case: tuple[list[int], list[int]]) -> None:
    labels, ints = case
    assume(0 < sum(labels) < len(labels))
    scores = [s / 1000 for s in ints]
    flipped = [1.0 - s for s in scores]
    assert roc_auc(labels, flipped) == pytest.approx(1.0 - roc_auc(labels, scores))
